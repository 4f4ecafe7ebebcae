"""prepared_sources -> track_annotations -> track_captions -> lora_training_set on the demo sources."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from music_assets.defs.partitions import prepared_source_partitions
from music_assets.defs.sources import assets as sources
from music_assets.defs.training_sets import assets as ts
from music_assets.paths import REPO_ROOT
from music_assets_tests.publish.hub_double import RecordingHfApi

DEMO_ROOT = REPO_ROOT / "data" / "raw_audio"
# What the demo recordings are (scripts/make_demo_audio.py): BPM, key; the jazz sidecar names its style.
TRUTH = {
    "funk_groove_96bpm": (96.0, "E minor"),
    "ballad_strings": (68.0, "F major"),
    "jazz_trio_take2": (132.0, "G major"),
}
_API: list[RecordingHfApi] = []


class DoubleHub(ts.HuggingFaceHub):
    """The Hub resource with the publish tests' recording double in place of HfApi."""

    def make_api(self, token: str) -> RecordingHfApi:
        _API[0].token = token
        return _API[0]


ASSETS = [ts.track_annotations, ts.style_presets, ts.track_captions, ts.lora_training_set, ts.training_set_hub]


def _range_tags(keys: list[str]) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}


@pytest.fixture
def demo_root(tmp_path: Path) -> Path:
    """A copy of the demo recordings (tests may add sidecars)."""
    root = tmp_path / "raw_audio"
    shutil.copytree(DEMO_ROOT, root)
    return root


def _prepare(root: Path, instance) -> list[str]:
    config = {"ops": {"audio_catalog": {"config": {"roots": [str(root)]}}}}
    assert dg.materialize(
        [sources.audio_catalog, sources.selected_sources],
        instance=instance,
        run_config=config,
        resources={"audio_roots": sources.AudioRoots()},
    )
    keys = prepared_source_partitions.get_partition_keys(dynamic_partitions_store=instance)
    assert dg.materialize([sources.prepared_sources], instance=instance, tags=_range_tags(keys)).success
    return keys


def _names(data_dir: Path) -> dict[str, str]:
    rows = pq.read_table(data_dir / "catalog" / "selected_sources.parquet").to_pylist()
    return {r["source_id"]: Path(r["rel_path"]).stem for r in rows if r["selected"]}


def test_demo_sources_to_training_set(data_dir: Path, instance, demo_root: Path, monkeypatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    keys = _prepare(demo_root, instance)
    names = _names(data_dir)
    parts = dg.materialize(ASSETS[:3], instance=instance, tags=_range_tags(keys))
    assert parts.success
    result = dg.materialize(
        [ts.lora_training_set, ts.training_set_hub],
        instance=instance,
        resources={"training_set_hf_hub": ts.HuggingFaceHub()},
    )
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {s.name for s in ts.SET_CHECKS}
    for name, e in checks.items():
        assert e.passed, (name, e.description)

    # measured BPM and key of the demo recordings, within the bench's tolerance
    for key in keys:
        ann = json.loads((data_dir / "training_sets" / "annotations" / f"{key}.json").read_text())
        bpm, tonality = TRUTH[names[key]]
        assert abs(ann["bpm"] - bpm) <= 0.02 * bpm and ann["key"] == tonality, ann
        assert ann["annotation_source"]["bpm"] == "measured"
    jazz = next(k for k in keys if names[k] == "jazz_trio_take2")
    ann = json.loads((data_dir / "training_sets" / "annotations" / f"{jazz}.json").read_text())
    assert ann["annotation_source"]["timesignature"] == "sidecar" and ann["timesignature_confidence"] == 1.0
    cap = json.loads((data_dir / "training_sets" / "captions" / f"{jazz}.json").read_text())
    assert (cap["style"], cap["style_source"]) == ("jazz-trio", "sidecar")

    folder = data_dir / "training_sets" / "lofi"
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["tracks"], summary["train"], summary["validation"]) == (3, 2, 1)
    assert sum(summary["per_category"].values()) == 3
    # audio is hard-linked from prepared_sources, not copied
    for t in json.loads((folder / "tracks.json").read_text()):
        linked = folder / "ace_step_v1" / t["split"] / f"{t['stem']}.flac"
        prepared = data_dir / "sources" / "prepared" / f"{t['source_id']}.flac"
        assert os.path.samefile(linked, prepared)
        assert os.path.samefile(folder / "ace_step_v15" / t["split"] / f"{t['stem']}.flac", prepared)
    meta = result.asset_materializations_for_node("lora_training_set")[0].metadata
    assert meta["dataset_hash"].value == summary["dataset_hash"]
    assert isinstance(meta["style_distribution"], dg.TableMetadataValue)
    hub = result.asset_materializations_for_node("training_set_hub")[0].metadata
    assert hub["mode"].value == "dry run" and hub["files_to_upload"].value > 0

    # a second build of the same inputs gives the same hash
    again = dg.materialize([ts.lora_training_set], instance=instance)
    meta2 = again.asset_materializations_for_node("lora_training_set")[0].metadata
    assert meta2["dataset_hash"].value == summary["dataset_hash"]

    # with a token and a repository, the Hub client pushes the whole set
    monkeypatch.setenv("HF_TOKEN", "hf_FAKE_token_for_training_set_tests")
    _API[:] = [RecordingHfApi()]
    pushed = dg.materialize(
        [ts.training_set_hub], instance=instance, resources={"training_set_hf_hub": DoubleHub(repo_id="me/lofi-set")}
    )
    assert pushed.asset_materializations_for_node("training_set_hub")[0].metadata["mode"].value == "uploaded"
    remote = set(_API[0].repos["me/lofi-set"]) - {".gitattributes"}
    assert remote == {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_bad_sidecars_give_reason_rows_not_a_crash(data_dir: Path, instance, demo_root: Path) -> None:
    (demo_root / "tracks" / "jazz_trio_take2.flac.json").write_text(json.dumps({"bpm": "fast", "style": "polka"}))
    (demo_root / "bounces" / "funk_groove_96bpm.mp3.json").write_text(json.dumps({"lyrics": "missing.txt"}))
    (demo_root / "masters" / "ballad_strings.mp3.json").write_text(json.dumps({"lyrics": "../../../etc/passwd"}))
    keys = _prepare(demo_root, instance)
    names = _names(data_dir)
    assert dg.materialize(ASSETS[:3], instance=instance, tags=_range_tags(keys)).success
    by_name = {names[k]: k for k in keys}
    ann = json.loads((data_dir / "training_sets" / "annotations" / f"{by_name['jazz_trio_take2']}.json").read_text())
    assert ann["annotation_source"]["bpm"] == "measured"  # the bad BPM is not used...
    assert any(
        "jazz_trio_take2.flac.json: bpm: bpm 'fast' is not a number" in p for p in ann["problems"]
    )  # ...and said
    captions = {
        n: json.loads((data_dir / "training_sets" / "captions" / f"{k}.json").read_text()) for n, k in by_name.items()
    }
    assert "style 'polka'" in captions["jazz_trio_take2"]["error"]
    assert (
        "missing.txt" in captions["funk_groove_96bpm"]["error"]
        and "does not exist" in captions["funk_groove_96bpm"]["error"]
    )
    assert "outside" in captions["ballad_strings"]["error"]
    # with no usable track the set fails with the reasons, naming the files
    result = dg.materialize([ts.lora_training_set], instance=instance, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "at least 2 tracks" in str(failure) and "style 'polka'" in str(failure) and "missing.txt" in str(failure)
