"""The Hub client against a recording HfApi double: plan, resume after a failure, stale files, verification."""

from __future__ import annotations

import inspect

import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi

from music_assets.publish import layout
from music_assets.publish.hub import HubClient, HubError, plan_upload, redact
from music_assets_tests.publish.conftest import build_staging, link_tree
from music_assets_tests.publish.hub_double import Failure, RecordingHfApi

REPO = "someone/rudiments"
TOKEN = "hf_test_token_that_must_not_leak_0123456789"


def _client(api: RecordingHfApi) -> HubClient:
    return HubClient(api, REPO, TOKEN, private=True)


def test_plan_without_remote_state_uploads_everything_media_first_card_last(staged_files) -> None:
    plan = plan_upload(REPO, staged_files.staging, None)
    local = layout.list_files(staged_files.staging)
    assert not plan.remote_known
    assert plan.upload == sorted(local) and plan.unchanged == [] and plan.delete == []
    assert [b.name for b in plan.batches] == ["midi", "audio", "auxiliary", "data", "plots", "card"]
    assert plan.batches[1].allow_patterns == ["audio/*"] and plan.batches[-1].allow_patterns == ["README.md"]
    summary = plan.summary()
    assert summary["files"] == len(local) == summary["files_to_upload"]
    assert summary["bytes"] == sum(local.values())
    assert summary["commits"] == 6


def test_publish_creates_a_private_repo_uploads_and_verifies(staged_files) -> None:
    api = RecordingHfApi()
    result = _client(api).publish(staged_files.staging, "first")
    assert api.calls_named("create_repo") == [
        {"repo_id": REPO, "repo_type": "dataset", "private": True, "exist_ok": True}
    ]
    local = layout.list_files(staged_files.staging)
    assert {p: len(b) for p, b in api.repos[REPO].items() if p != ".gitattributes"} == local
    assert result.verification.ok and result.verification.remote_files == len(local)
    assert len(result.commits) == 6
    assert api.calls_named("upload_folder")[-1]["allow_patterns"] == ["README.md"]  # the card goes last

    # nothing changed: the second publish uploads nothing
    again = _client(api).publish(staged_files.staging, "second")
    assert again.plan.upload == [] and len(again.plan.unchanged) == len(local)
    assert len(api.calls_named("upload_folder")) == 6


def test_failure_part_way_then_resume_uploads_only_what_is_missing(staged_files) -> None:
    api = RecordingHfApi(failure=Failure(after_files=20))
    with pytest.raises(HubError, match="uploading audio failed.*Internal Server Error") as err:
        _client(api).publish(staged_files.staging, "interrupted")
    assert err.value.retryable
    committed = {p for p in api.repos[REPO] if p != ".gitattributes"}
    assert len(committed) == 20
    local = layout.list_files(staged_files.staging)

    result = _client(api).publish(staged_files.staging, "resumed")
    resent = [p for batch in api.uploads[api.failed_upload + 1 :] for p in batch]
    assert sorted(resent) == sorted(set(local) - committed)  # exactly the missing files, each once
    assert sorted(result.plan.unchanged) == sorted(committed)
    assert result.verification.ok


def test_a_changed_file_is_reuploaded_and_stale_remote_files_deleted(staged_files, copy_staging) -> None:
    api = RecordingHfApi()
    _client(api).publish(staged_files.staging, "first")
    s = copy_staging(staged_files)
    card = s / "README.md"
    card.write_text(card.read_text() + "\nA new paragraph.\n")  # same path, different content
    api.repos[REPO]["data/train-00000-of-00002.parquet"] = b"an old shard"
    n = len(api.uploads)
    result = _client(api).publish(s, "update")
    assert api.uploads[n:] == [["README.md"]]
    assert api.calls_named("delete_files")[-1]["delete_patterns"] == ["data/train-00000-of-00002.parquet"]
    assert "data/train-00000-of-00002.parquet" not in api.repos[REPO]
    assert result.verification.ok


STROKES = "auxiliary/strokes/train-00000-of-00001.parquet"


def test_restaged_data_uploads_only_the_changed_files(tmp_path, labelled, staged_files) -> None:
    api = RecordingHfApi()
    root = link_tree(labelled.root, tmp_path / "data")
    link_tree(staged_files.staging, root / "hf_staging")
    _client(api).publish(root / "hf_staging", "first")
    # one sample re-rendered upstream: its browsable file, the shard embedding it and the card change
    row = pq.read_table(root / "hf_staging/data/diddle/validation-00000-of-00001.parquet").slice(0, 1).to_pylist()[0]
    flac = root / "rudiments/audio" / row["rudiment_slug"] / row["audio"]["path"]
    data = flac.read_bytes()
    flac.unlink()
    flac.write_bytes(data + b"\0")
    build_staging(root, root / "hf_staging")
    n = len(api.uploads)
    result = _client(api).publish(root / "hf_staging", "update")
    changed = [f"audio/{row['rudiment_slug']}/{row['audio']['path']}", "data/diddle/validation-00000-of-00001.parquet"]
    assert result.plan.upload == sorted([*changed, "README.md"])
    assert sorted(p for batch in api.uploads[n:] for p in batch) == sorted([*changed, "README.md"])
    assert result.verification.ok and api.repos[REPO][changed[0]] == data + b"\0"


class CorruptingHfApi(RecordingHfApi):
    """Accepts uploads but stores one file truncated, as a broken transfer would."""

    def upload_folder(self, **kwargs):
        info = super().upload_folder(**kwargs)
        repo = self.repos[kwargs["repo_id"]]
        if STROKES in repo:
            repo[STROKES] = repo[STROKES][:-1]
        return info


def test_verification_fails_when_the_remote_differs(staged_files) -> None:
    api = CorruptingHfApi()
    with pytest.raises(
        HubError, match=r"remote differs from staging: 1 different \(auxiliary/strokes/train-00000-of-00001.parquet\)"
    ):
        _client(api).publish(staged_files.staging, "corrupted")


def test_errors_never_carry_the_token(staged_files) -> None:
    api = RecordingHfApi(failure=Failure(after_files=0, status=401, message=f"401 Unauthorized: bad token {TOKEN}"))
    with pytest.raises(HubError) as err:
        _client(api).publish(staged_files.staging, "x")
    assert TOKEN not in str(err.value) and "[REDACTED]" in str(err.value)
    assert not err.value.retryable
    assert err.value.__cause__ is None and err.value.__context__ is None
    assert redact(f"a {TOKEN} b", TOKEN) == "a [REDACTED] b" and redact("x", None) == "x"


def test_dry_run_plan_against_a_partial_remote(staged_files) -> None:
    api = RecordingHfApi()
    api.create_repo(REPO, repo_type="dataset", private=True)
    assert _client(RecordingHfApi()).plan(staged_files.staging).upload == sorted(
        layout.list_files(staged_files.staging)
    )
    api.repos[REPO]["README.md"] = (staged_files.staging / "README.md").read_bytes()
    plan = _client(api).plan(staged_files.staging)
    assert plan.remote_known and plan.unchanged == ["README.md"] and "README.md" not in plan.upload
    assert [b.name for b in plan.batches][-1] == "plots"
    assert api.calls_named("upload_folder") == []


class SignatureChecked:
    """Forwards to the double after checking that the real HfApi method accepts the same arguments."""

    def __init__(self, inner: RecordingHfApi):
        self.inner = inner

    def __getattr__(self, name: str):
        real = inspect.signature(getattr(HfApi, name))

        def call(*args, **kwargs):
            real.bind(HfApi(), *args, **kwargs)  # TypeError if the real client would refuse them
            return getattr(self.inner, name)(*args, **kwargs)

        return call


def test_every_call_fits_the_real_hfapi(staged_files, copy_staging) -> None:
    inner = RecordingHfApi()
    HubClient(SignatureChecked(inner), REPO, TOKEN).publish(staged_files.staging, "first")
    inner.repos[REPO]["stale.txt"] = b"x"
    HubClient(SignatureChecked(inner), REPO, TOKEN).publish(staged_files.staging, "second")
    assert {name for name, _ in inner.calls} == {"create_repo", "list_repo_tree", "upload_folder", "delete_files"}


def test_leftover_partial_files_are_neither_uploaded_nor_compared(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    (s / "data" / ".train-00000-of-00001.parquet.99-abcd.partial").write_bytes(b"half a file")
    api = RecordingHfApi()
    result = _client(api).publish(s, "first")
    assert result.verification.ok
    assert not any(p.endswith(".partial") for batch in api.uploads for p in batch)
