"""Deferred shard storage: plans instead of sample shards, built byte-identical at upload, a group at a time."""

from __future__ import annotations

import os
import re
import shutil
from collections import namedtuple
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from music_assets.publish import checks, layout
from music_assets.publish import staging as staging_mod
from music_assets.publish.card import parse_front_matter
from music_assets.publish.hub import HubClient, HubError, plan_upload
from music_assets.publish.staging import StagingError, StagingSettings, build_deferred_shard, choose_shard_storage
from music_assets_tests.publish.conftest import DEFERRED, EMBEDDED, build_staging, copy_tree, link_tree
from music_assets_tests.publish.hub_double import Failure, RecordingHfApi

REPO = "someone/rudiments"


def _sample_shards(staging: Path) -> list[str]:
    return sorted(p.relative_to(staging).as_posix() for p in (staging / layout.DATA).rglob("*.parquet"))


def _du(folder: Path) -> int:
    """Bytes the folder's files occupy (hard-linked files counted once)."""
    seen, total = set(), 0
    for p in folder.rglob("*"):
        st = p.lstat()
        if p.is_file() and (st.st_ino, st.st_dev) not in seen:
            seen.add((st.st_ino, st.st_dev))
            total += st.st_size
    return total


def test_deferred_staging_holds_plans_not_shards_and_passes_every_gate(staged_deferred, staged_embedded) -> None:
    staging = staged_deferred.staging
    assert staged_deferred.data.shard_storage == "deferred"
    assert _sample_shards(staging) == []  # no media bytes copied into the staging folder
    assert layout.deferred_shards(staging) == _sample_shards(staged_embedded.staging)
    assert not any(rel.startswith(f"{layout.DATA}/") for rel in layout.list_files(staging))  # never uploaded as is
    # the plans hold no media bytes: a fraction of the shards even at this size, where their schema dominates
    for rel in layout.deferred_shards(staging):
        schema = pq.read_schema(layout.deferred_path(staging, rel))
        assert not any(pa.types.is_binary(f.type) or pa.types.is_struct(f.type) for f in schema), rel
    assert _du(staging / layout.DEFERRED) < _du(staged_embedded.staging / layout.DATA) / 4

    # The card describes the same dataset: configs, files and row counts.
    deferred_card = parse_front_matter((staging / layout.CARD).read_text())
    local_card = parse_front_matter((staged_embedded.staging / layout.CARD).read_text())
    assert deferred_card["configs"] == local_card["configs"]

    def examples(card):
        return {(i["config_name"], s["name"]): s["num_examples"] for i in card["dataset_info"] for s in i["splits"]}

    assert examples(deferred_card) == examples(local_card)

    for name, check in checks.ALL_CHECKS.items():
        outcome = check(staging)
        assert outcome.passed, (name, outcome.description, outcome.metadata)
    loaded = checks.loads_with_datasets(staging)
    assert loaded.metadata["deferred_shards"] == len(layout.deferred_shards(staging))


def test_a_deferred_shard_builds_to_the_bytes_local_storage_writes(staged_deferred, staged_embedded, tmp_path) -> None:
    for rel in layout.deferred_shards(staged_deferred.staging):
        built = build_deferred_shard(staged_deferred.staging, rel, dest=tmp_path / rel)
        assert built.path.read_bytes() == (staged_embedded.staging / rel).read_bytes(), rel
        assert built.size == (staged_embedded.staging / rel).stat().st_size


def test_a_source_changed_since_staging_is_refused_and_fails_the_gate(labelled, tmp_path) -> None:
    root = copy_tree(labelled.root, tmp_path / "data")
    staged = build_staging(root, root / "hf_staging", DEFERRED)
    first = layout.deferred_shards(staged.staging)[0]
    source = pq.read_table(layout.deferred_path(staged.staging, first), columns=["_audio_source"])[0][0].as_py()
    (root / source).write_bytes((root / source).read_bytes() + b"\0")
    message = rf"changed since hf_staging: {re.escape(str(root / source))} changed .*materialize hf_staging again"
    with pytest.raises(StagingError, match=message):
        build_deferred_shard(staged.staging, first)
    outcome = checks.paths_exist(staged.staging)
    assert not outcome.passed and source in outcome.metadata["first_problems"]
    assert not (staged.staging / first).exists()  # nothing half-built left where a reader would take it for whole


def test_the_load_gate_decodes_what_the_upload_would_build(labelled, tmp_path) -> None:
    """A source with the planned size and time but bytes that are not FLAC: only decoding can tell."""
    root = copy_tree(labelled.root, tmp_path / "data")
    staged = build_staging(root, root / "hf_staging", DEFERRED)
    first = layout.deferred_shards(staged.staging)[0]
    src = root / pq.read_table(layout.deferred_path(staged.staging, first), columns=["_audio_source"])[0][0].as_py()
    st = src.stat()
    src.write_bytes(b"\x00" * st.st_size)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert checks.paths_exist(staged.staging).passed  # the plan's bookkeeping cannot see it
    outcome = checks.loads_with_datasets(staged.staging)
    assert not outcome.passed and "decod" in outcome.description


def test_auto_storage_is_local_while_the_shards_take_at_most_half_the_free_disk(labelled, tmp_path, monkeypatch):
    assert choose_shard_storage("auto", 50, 100)[0] == "local"
    storage, why = choose_shard_storage("auto", 51, 100)
    assert storage == "deferred" and "more than half" in why
    assert choose_shard_storage("local", 10**15, 1)[0] == "local"
    assert choose_shard_storage("deferred", 1, 10**15)[0] == "deferred"

    root = link_tree(labelled.root, tmp_path / "data")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10**9, 10**9, 10**5))  # 100 kB free
    staged = build_staging(root, root / "hf_staging", EMBEDDED)
    assert staged.data.shard_storage == "deferred" and _sample_shards(staged.staging) == []
    with pytest.raises(StagingError, match="shard_storage must be one of"):
        staging_mod.stage(root, root / "hf_staging", StagingSettings(shard_storage="cloud"))


def test_switching_storage_either_way_leaves_exactly_one_form(staged_embedded, tmp_path) -> None:
    root = link_tree(staged_embedded.root, tmp_path / "data")
    shutil.rmtree(root / "hf_staging")
    link_tree(staged_embedded.staging, root / "hf_staging")
    staging = root / "hf_staging"
    shards = _sample_shards(staging)
    to_deferred = build_staging(root, staging, DEFERRED)
    assert _sample_shards(staging) == [] and layout.deferred_shards(staging) == shards
    assert sorted(to_deferred.removed) == shards
    build_staging(root, staging, EMBEDDED)
    assert _sample_shards(staging) == shards and not (staging / layout.DEFERRED).exists()
    for rel in shards:  # unchanged inputs: the same bytes as before the round trip
        assert (staging / rel).read_bytes() == (staged_embedded.staging / rel).read_bytes()


class SpyApi(RecordingHfApi):
    """Also records which sample shards were on disk in staging at each upload."""

    def upload_folder(self, **kwargs):
        root = Path(kwargs["folder_path"])
        self.on_disk = getattr(self, "on_disk", [])
        self.on_disk.append(_sample_shards(root))
        return super().upload_folder(**kwargs)


def _publish_copy(staged, tmp_path) -> Path:
    """A private copy of the deferred staging (its plans point at the same, read-only, sources)."""
    data = link_tree(staged.root, tmp_path / "data")
    return data / "hf_staging"


def test_publish_builds_a_group_at_a_time_and_the_hub_gets_the_local_bytes(
    staged_deferred, staged_embedded, tmp_path, monkeypatch
) -> None:
    staging = _publish_copy(staged_deferred, tmp_path)
    deferred = layout.deferred_shards(staging)
    sizes = [int(staging_mod.plan_info(layout.deferred_path(staging, r))["estimated_bytes"]) for r in deferred]
    budget = 2 * max(sizes)  # two shards per group at most
    plan = plan_upload(REPO, staging, None, build_batch_bytes=budget)
    data = next(b for b in plan.batches if b.name == layout.DATA)
    assert data.files == deferred and data.commits >= len(deferred) // 2

    api = SpyApi()
    result = HubClient(api, REPO, "tok").publish(staging, "first", build_batch_bytes=budget)
    assert result.verification.ok
    assert max(len(on) for on in api.on_disk) <= 2  # never more than one group built
    assert _sample_shards(staging) == []  # and none left behind
    for rel in deferred:
        assert api.repos[REPO][rel] == (staged_embedded.staging / rel).read_bytes(), rel
    assert set(staging_mod.read_built_record(staging)) == set(deferred)

    built = []
    monkeypatch.setattr(staging_mod, "build_deferred_shard", lambda *a, **k: built.append(a) or None)
    again = HubClient(api, REPO, "tok").publish(staging, "second", build_batch_bytes=budget)
    assert again.plan.upload == [] and built == []  # the record and the Hub's hashes agree: nothing rebuilt


def test_an_interrupted_deferred_upload_resumes_with_only_the_missing_shards(staged_deferred, tmp_path) -> None:
    staging = _publish_copy(staged_deferred, tmp_path)
    deferred = layout.deferred_shards(staging)
    api = SpyApi(failure=Failure(after_files=6 + 5))  # the 6 auxiliary files, then 5 shards
    with pytest.raises(HubError, match="uploading data"):
        HubClient(api, REPO, "tok").publish(staging, "interrupted", build_batch_bytes=1)  # one shard per group
    assert _sample_shards(staging) == []  # the group that failed was deleted too
    sent = {p for p in api.repos[REPO] if p in deferred}
    assert len(sent) == 5
    n = len(api.uploads)
    result = HubClient(api, REPO, "tok").publish(staging, "resumed", build_batch_bytes=1)
    resent = [p for batch in api.uploads[n:] for p in batch if p in deferred]
    assert sorted(resent) == sorted(set(deferred) - sent)
    assert result.verification.ok
