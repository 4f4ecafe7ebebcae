"""The publish group in Dagster: staging gates, dry runs, a resumed upload, and a token that never leaks."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from music_assets.defs.publish import assets as publish
from music_assets.defs.publish.assets import HuggingFaceHub, hf_dataset, hf_staging, staging_checks
from music_assets.publish import layout
from music_assets.rudiments.constants import SPLITS
from music_assets_tests.publish.conftest import link_tree
from music_assets_tests.publish.hub_double import Failure, RecordingHfApi
from music_assets_tests.publish.labelled_dataset import build

REPO = "someone/rudiments"
TOKEN = "hf_FAKE_token_for_tests_5d41402abc4b2a76b9719d911017c592"
_DOUBLE: dict[str, RecordingHfApi] = {}


class DoubleHub(HuggingFaceHub):
    """The resource with the recording double in place of HfApi."""

    def make_api(self, token: str) -> RecordingHfApi:
        api = _DOUBLE["api"]
        api.token = token
        return api


ALL_CHECKS = (
    "staging_paths_exist",
    "card_split_sizes_match",
    "no_profile_in_two_splits",
    "card_front_matter_valid",
    "datasets_loads_offline",
)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory):
    return build(tmp_path_factory.mktemp("labelled") / "data")


@pytest.fixture(scope="module")
def first_run(labelled, tmp_path_factory: pytest.TempPathFactory):
    """hf_staging, its checks and hf_dataset materialized once, without a token (shared by the tests below)."""
    data = link_tree(labelled.root, tmp_path_factory.mktemp("first_run") / "data")
    with pytest.MonkeyPatch.context() as mp, dg.DagsterInstance.ephemeral() as instance:
        mp.setenv("MUSIC_ASSETS_DATA_DIR", str(data))
        mp.delenv("HF_TOKEN", raising=False)
        result = dg.materialize(
            [hf_staging, hf_dataset, *staging_checks],
            instance=instance,
            resources={"hf_hub": HuggingFaceHub(repo_id=REPO)},
        )
    return data, result


@pytest.fixture
def inputs(data_dir: Path, labelled) -> Path:
    """The data dir holding the labelled dataset (what rudiment_labels writes)."""
    return link_tree(labelled.root, data_dir)


@pytest.fixture
def staged(inputs: Path, first_run) -> Path:
    """The data dir with the staging folder an earlier run left for the same inputs."""
    link_tree(first_run[0] / "hf_staging", inputs / "hf_staging")
    link_tree(first_run[0] / "manifests" / "hf_staging", inputs / "manifests" / "hf_staging")  # what it recorded
    return inputs


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    (mat,) = list(result.asset_materializations_for_node(key))
    return {k: v.value for k, v in mat.metadata.items()}


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_definitions() -> None:
    defs = publish.defs
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} >= {"hf_staging", "hf_dataset"}
    assert graph.get(dg.AssetKey("hf_staging")).group_name == "publish"
    assert set(graph.get(dg.AssetKey("hf_staging")).parent_keys) == {dg.AssetKey("rudiment_labels")}
    assert set(graph.get(dg.AssetKey("hf_dataset")).parent_keys) == {dg.AssetKey("hf_staging")}
    specs = [spec for c in staging_checks for spec in c.check_specs]
    assert len(specs) == 5 and all(s.blocking for s in specs)
    policy = hf_dataset.op.retry_policy
    assert policy.max_retries == 3 and policy.backoff == dg.Backoff.EXPONENTIAL


def test_staging_passes_its_gates_and_dry_run_without_a_token(first_run) -> None:
    data, result = first_run
    assert result.success
    assert _checks(result) == dict.fromkeys(ALL_CHECKS, True)
    staging = _metadata(result, "hf_staging")
    assert staging["mode"] == "files" and staging["samples"] == 18 and staging["media_linked"] == 36
    assert staging["undocumented_columns"] == "(none)"
    assert staging["configs"] == "default, roll, diddle, flam, strokes, measures"
    assert staging["samples_per_family"] == str({"roll": 6, "diddle": 6, "flam": 6})
    # the UI's Columns tab: the published table's columns, typed and with the card's meanings
    columns = {c.name: c for c in staging["dagster/column_schema"].columns}
    assert columns["audio"].type.startswith("struct") and columns["sample_id"].description
    assert {r.data["split"]: r.data["samples"] for r in staging["splits"].records} == dict.fromkeys(SPLITS, 6)
    plan = _metadata(result, "hf_dataset")
    files = layout.list_files(data / "hf_staging")
    assert plan["mode"] == "dry run" and plan["reason"] == "no token in $HF_TOKEN"
    assert plan["files"] == plan["files_to_upload"] == len(files) and plan["bytes"] == sum(files.values())
    assert plan["commits"] == 6 and "| audio | 18 |" in plan["plan"]


def test_a_failing_gate_stops_the_upload(staged: Path, instance, monkeypatch) -> None:
    # an upstream audio file that does not decode: staging still builds, the datasets gate must stop hf_dataset
    # the first validation row a user's load_dataset returns (files in name order)
    shard = sorted((staged / "hf_staging/data").glob("*/validation-*.parquet"))[0]
    first = pq.read_table(shard).slice(0, 1).to_pylist()[0]
    source = staged / "rudiments/audio" / first["rudiment_slug"] / f"{first['sample_id']}.flac"
    source.unlink()  # a new file, so the shared fixture's link stays intact
    source.write_bytes(b"fLaC" + b"\0" * 64)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    result = dg.materialize(
        [hf_staging, hf_dataset, *staging_checks],
        instance=instance,
        resources={"hf_hub": HuggingFaceHub(repo_id=REPO)},
        raise_on_error=False,
    )
    checks = _checks(result)
    assert checks["datasets_loads_offline"] is False and checks["staging_paths_exist"] is True
    assert _metadata(result, "hf_staging")["media_linked"] == 1
    assert not result.asset_materializations_for_node("hf_dataset")


def test_dry_run_with_a_token_plans_against_the_remote(staged: Path, instance, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    api = _DOUBLE["api"] = RecordingHfApi()
    api.create_repo(REPO, repo_type="dataset", private=True)
    api.repos[REPO]["README.md"] = (staged / "hf_staging/README.md").read_bytes()
    result = dg.materialize(
        [hf_dataset],
        instance=instance,
        resources={"hf_hub": DoubleHub(repo_id=REPO)},
        run_config={"ops": {"hf_dataset": {"config": {"dry_run": True}}}},
    )
    plan = _metadata(result, "hf_dataset")
    assert (
        plan["mode"] == "dry run" and plan["reason"] == "dry_run is set" and plan["remote_state"] == "read from the Hub"
    )
    assert plan["files_unchanged"] == 1 and plan["files_to_upload"] == plan["files"] - 1
    assert api.calls_named("upload_folder") == []


def _everything_recorded(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> str:
    run = instance.get_run_by_id(result.run_id)
    logs = instance.all_logs(result.run_id)
    return "\n".join([dg.serialize_value(run.run_config), *(dg.serialize_value(e) for e in logs)])


def test_interrupted_upload_is_retried_resumed_and_verified_without_leaking_the_token(
    staged: Path, instance, monkeypatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    api = _DOUBLE["api"] = RecordingHfApi(
        failure=Failure(after_files=25, message=f"502 Bad Gateway (request had Authorization: Bearer {TOKEN})")
    )
    result = dg.materialize([hf_dataset], instance=instance, resources={"hf_hub": DoubleHub(repo_id=REPO)})
    assert result.success
    events = [e.event_type for e in result.all_events]
    assert events.count(dg.DagsterEventType.STEP_UP_FOR_RETRY) == 1
    failed_attempt = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY][0]
    assert "[REDACTED]" in str(failed_attempt.event_specific_data.error)

    local = layout.list_files(staged / "hf_staging")
    before_failure = set(api.committed[:25])
    resent = [p for batch in api.uploads[api.failed_upload + 1 :] for p in batch]
    assert sorted(resent) == sorted(set(local) - before_failure)  # the retry sends only what is missing
    assert {p: len(b) for p, b in api.repos[REPO].items() if p != ".gitattributes"} == local

    meta = _metadata(result, "hf_dataset")
    assert meta["mode"] == "uploaded" and meta["files_unchanged"] == 25
    assert meta["verification"] == f"remote holds exactly the {len(local)} staged files"
    assert api.private[REPO] is True
    assert TOKEN not in _everything_recorded(instance, result)


def test_a_rejected_token_fails_at_once_and_is_redacted(staged: Path, instance, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    _DOUBLE["api"] = RecordingHfApi(failure=Failure(after_files=0, status=401, message=f"Invalid token {TOKEN}"))
    result = dg.materialize(
        [hf_dataset], instance=instance, resources={"hf_hub": DoubleHub(repo_id=REPO)}, raise_on_error=False
    )
    assert not result.success
    events = [e.event_type for e in result.all_events]
    assert dg.DagsterEventType.STEP_UP_FOR_RETRY not in events
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert "Invalid token [REDACTED]" in str(failure.event_specific_data.error)
    assert TOKEN not in _everything_recorded(instance, result)


def test_a_token_without_a_configured_repository_only_plans(staged: Path, instance, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    api = _DOUBLE["api"] = RecordingHfApi()
    result = dg.materialize([hf_dataset], instance=instance, resources={"hf_hub": DoubleHub()})
    meta = _metadata(result, "hf_dataset")
    assert meta["mode"] == "dry run" and meta["reason"].startswith("no repository: set $MUSIC_ASSETS_HF_REPO")
    assert api.calls == []


def test_the_repository_comes_from_the_environment_with_no_run_config(staged: Path, instance, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("MUSIC_ASSETS_HF_REPO", REPO)
    api = _DOUBLE["api"] = RecordingHfApi()
    assert publish.defs.resources["hf_hub"].repo_id == ""  # the code location configures no repository
    result = dg.materialize([hf_dataset], instance=instance, resources={"hf_hub": DoubleHub()})
    meta = _metadata(result, "hf_dataset")
    assert meta["mode"] == "uploaded" and meta["repo_id"] == REPO, meta
    assert set(api.repos) == {REPO} and api.calls_named("upload_folder")
    assert instance.get_run_by_id(result.run_id).run_config == {}
    assert TOKEN not in _everything_recorded(instance, result)


def test_a_card_written_for_another_repository_is_not_pushed(staged: Path, instance, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    api = _DOUBLE["api"] = RecordingHfApi()
    result = dg.materialize(
        [hf_dataset], instance=instance, resources={"hf_hub": DoubleHub(repo_id="someone/else")}, raise_on_error=False
    )
    assert not result.success and api.calls == []
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert "was written for another repository than someone/else" in str(failure.event_specific_data.error)


def test_hf_dataset_needs_a_staging_folder(inputs: Path, instance, monkeypatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    result = dg.materialize(
        [hf_dataset], instance=instance, resources={"hf_hub": HuggingFaceHub(repo_id=REPO)}, raise_on_error=False
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert "materialize hf_staging first" in str(failure.event_specific_data.error)


def test_deferred_shard_storage_stages_plans_and_uploads_each_shard_built_then_deleted(
    inputs: Path, instance, monkeypatch
) -> None:
    """The dataset too large to hold twice: hf_staging plans the shards, its gates pass, hf_dataset builds,
    uploads and deletes them a group at a time."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    api = _DOUBLE["api"] = RecordingHfApi()
    result = dg.materialize(
        [hf_staging, hf_dataset, *staging_checks],
        instance=instance,
        resources={"hf_hub": DoubleHub(repo_id=REPO)},
        run_config={
            "ops": {
                "hf_staging": {"config": {"file_budget": 0, "shard_size_mb": 0.05, "shard_storage": "deferred"}},
                "hf_dataset": {"config": {"deferred_batch_mb": 0.4}},
            }
        },
    )
    assert result.success
    assert _checks(result) == dict.fromkeys(ALL_CHECKS, True)
    staged = _metadata(result, "hf_staging")
    assert staged["shard_storage"] == "deferred"
    staging = inputs / "hf_staging"
    deferred = layout.deferred_shards(staging)
    assert deferred and not list((staging / layout.DATA).rglob("*.parquet"))  # none on disk, before or after

    pushed = _metadata(result, "hf_dataset")
    assert pushed["mode"] == "uploaded" and pushed["deferred_shards"] == len(deferred)
    assert pushed["commits_made"] > 4  # the shards went up in several groups
    remote = api.repos[REPO]
    for rel in deferred:
        table = pq.read_table(pa.BufferReader(remote[rel]))
        assert table.num_rows == pq.read_metadata(layout.deferred_path(staging, rel)).num_rows
        assert all(cell["bytes"] for cell in table["audio"].to_pylist())
