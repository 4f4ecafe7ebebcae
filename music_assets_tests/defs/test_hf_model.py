"""hf_model in Dagster, on the tiny models: the dry run, a push to the Hub double, refusals, a token that
never leaks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pretty_midi
import pytest

from music_assets.defs.models.hf_model import MODEL_REPO_ENV, hf_model, hf_model_checks
from music_assets.defs.publish.assets import HuggingFaceHub
from music_assets.io import sha256_file
from music_assets.ml.onnx_generate import main as onnx_generate
from music_assets.paths import REPO_ROOT
from music_assets.publish import layout
from music_assets.publish.model_staging import staged_models_run
from music_assets_tests.ml.tiny_models import GOOD_SAMPLING
from music_assets_tests.publish.conftest import link_tree
from music_assets_tests.publish.hub_double import RecordingHfApi
from music_assets_tests.publish.model_repo_inputs import (
    TIER,
    model_shas,
    rewrite_json,
    tiny_model_data,
    write_evaluations,
)

REPO = "someone/drum-models"
DATASET = "someone/rudiments"
TOKEN = "hf_FAKE_model_token_for_tests_9e107d9d372bb6826bd81d3542a419d6"
CONFIG = {"ops": {"hf_model": {"config": {"tiers": [TIER]}}}}
CHECKS = ("hf_model_files_match_sources", "hf_model_card_matches_evaluation", "hf_model_staged_models_run")
_DOUBLE: dict[str, RecordingHfApi] = {}


class DoubleHub(HuggingFaceHub):
    """The resource with the recording double in place of HfApi."""

    def make_api(self, token: str) -> RecordingHfApi:
        api = _DOUBLE["api"]
        api.token = token
        return api


@pytest.fixture
def data(data_dir: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> Path:
    """A data dir holding the tiny models of one tier, every precision, and their evaluation (hard links:
    tests replace files, never change them in place)."""
    link_tree(tiny_model_data(tmp_path_factory), data_dir)
    monkeypatch.setenv(MODEL_REPO_ENV, REPO)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return data_dir


def _materialize(instance, hub: HuggingFaceHub, config: dict = CONFIG, checks: bool = True):
    return dg.materialize(
        [hf_model, *(hf_model_checks if checks else [])],
        instance=instance,
        resources={"hf_hub": hub},
        run_config=config,
        raise_on_error=False,
    )


def _metadata(result) -> dict:
    (mat,) = result.asset_materializations_for_node("hf_model")
    return {k: v.value for k, v in mat.metadata.items()}


def _failure(result) -> str:
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    return str(failure.event_specific_data.error)


def test_wiring() -> None:
    from music_assets.definitions import defs
    from music_assets.ops.demo import plan_stages

    graph = defs.resolve_asset_graph()
    node = graph.get(hf_model.key)
    assert node.group_name == "models"
    assert {k.to_user_string() for k in node.parent_keys} == {
        "base_model",
        "lora_adapters",
        "onnx_models",
        "quantized_models",
        "model_evaluation",
    }
    specs = [s for c in hf_model_checks for s in c.check_specs]
    assert {s.name for s in specs} == set(CHECKS) and all(s.blocking for s in specs)
    assert hf_model.op.retry_policy.max_retries == 3
    assert any(hf_model.key in s.keys for s in plan_stages(defs))  # staged (a dry run) by `make run`


def test_dry_run_without_a_token_stages_a_repository_that_passes_its_checks(data: Path, instance) -> None:
    result = _materialize(instance, HuggingFaceHub(repo_id=DATASET))
    assert result.success
    assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == dict.fromkeys(CHECKS, True)
    meta = _metadata(result)
    staging = data / "hf_model_staging"
    files = layout.list_files(staging)
    assert meta["mode"] == "dry run" and meta["reason"] == "no token in $HF_TOKEN" and meta["repo_id"] == REPO
    assert meta["files"] == meta["files_to_upload"] == len(files) == 20 and meta["bytes"] == sum(files.values())
    assert meta["files_linked"] == 18 and meta["files_copied"] == 0
    plan = meta["plan"]
    assert plan.index("| base |") < plan.index("| adapters |") < plan.index("| onnx |") < plan.index("| card |")
    card = (staging / "README.md").read_text()
    assert "**Not every quality gate passes: 1 of the 4 models fail at least one gate**" in card
    assert f"| {TIER}/int4 | `conditioning_accuracy` |" in card
    assert f"datasets:\n- {DATASET}\n" in card and "library_name: onnx" in card
    assert "advanced/int4" in meta["models_failing_a_gate"]

    # the folder a user downloads runs with the command the card gives
    out = data / "take.mid"
    args = ["--model", str(staging / "onnx" / TIER / "int8"), "--rudiment", "flam", "--out", str(out)]
    sampling = ["--temperature", str(GOOD_SAMPLING["temperature"]), "--top-k", str(GOOD_SAMPLING["top_k"])]
    assert onnx_generate([*args, *sampling, "--bars", "1"]) == 0
    assert pretty_midi.PrettyMIDI(str(out)).instruments[0].notes

    # a folder holding another variant than its name says is caught by the run check
    rewrite_json(staging / "onnx" / TIER / "int8" / "model.json", precision="int4")
    outcome = staged_models_run(staging)
    assert not outcome.passed and f"onnx/{TIER}/int8: model.json says {TIER}/int4" in outcome.description


def _everything_recorded(instance: dg.DagsterInstance, result) -> str:
    run = instance.get_run_by_id(result.run_id)
    logs = instance.all_logs(result.run_id)
    return "\n".join([dg.serialize_value(run.run_config), *(dg.serialize_value(e) for e in logs)])


def test_push_with_a_token_uploads_a_model_repository_card_last_and_never_leaks_the_token(
    data: Path, instance, monkeypatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    api = _DOUBLE["api"] = RecordingHfApi()
    result = _materialize(instance, DoubleHub(repo_id=DATASET))
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    meta = _metadata(result)
    staging = data / "hf_model_staging"
    local = layout.list_files(staging)
    assert meta["mode"] == "uploaded" and meta["url"] == f"https://huggingface.co/{REPO}"
    assert meta["verification"] == f"remote holds exactly the {len(local)} staged files"
    assert {p: len(b) for p, b in api.repos[REPO].items() if p != ".gitattributes"} == local
    assert {c["repo_type"] for n, c in api.calls if "repo_type" in c} == {"model"}
    assert api.private[REPO] is True
    assert api.uploads[-1] == ["README.md", "manifest.json"]  # the card goes up last
    remote_int4 = api.repos[REPO][f"onnx/{TIER}/int4/model.onnx"]
    assert remote_int4 == (data / "models/quantized" / TIER / "int4/model.onnx").read_bytes()

    # the token is nowhere: run config, event log, metadata, files
    assert TOKEN not in _everything_recorded(instance, result)
    assert not [p for p in data.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]

    # a second push finds everything on the Hub
    uploads = len(api.uploads)
    again = _metadata(_materialize(instance, DoubleHub(repo_id=DATASET), checks=False))
    assert again["mode"] == "uploaded" and again["files_unchanged"] == len(local) and again["files_to_upload"] == 0
    assert len(api.uploads) == uploads


def test_a_missing_evaluation_fails_naming_the_file_and_keeps_the_previous_staging(data: Path, instance) -> None:
    assert _materialize(instance, HuggingFaceHub(repo_id=DATASET), checks=False).success
    card = data / "hf_model_staging" / "README.md"
    before = sha256_file(card)
    missing = data / "models" / "evaluation" / TIER / "int8.json"
    missing.unlink()
    result = _materialize(instance, HuggingFaceHub(repo_id=DATASET))
    assert not result.success
    assert f"{missing}: not found" in _failure(result) and "materialize model_evaluation" in _failure(result)
    events = [e.event_type for e in result.all_events]
    assert dg.DagsterEventType.STEP_UP_FOR_RETRY not in events  # retrying cannot fix it
    assert sha256_file(card) == before


def test_a_stale_evaluation_fails_naming_the_file(data: Path, instance) -> None:
    stale = data / "models" / "evaluation" / TIER / "fp16.json"
    rewrite_json(stale, model_sha256="3" * 64)
    result = _materialize(instance, HuggingFaceHub(repo_id=DATASET))
    assert not result.success
    message = _failure(result)
    assert f"{stale}: evaluated a model file with sha256 {'3' * 64}" in message and "stale evaluation" in message
    assert not (data / "hf_model_staging").exists()


def test_a_staged_repository_that_fails_a_check_is_not_pushed(data: Path, instance, monkeypatch) -> None:
    """A variant whose records are all consistent but whose file is no model: staging accepts it, the
    run check catches it before anything reaches the Hub."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    api = _DOUBLE["api"] = RecordingHfApi()
    variant = data / "models" / "quantized" / TIER / "int4"
    (variant / "model.onnx").unlink()
    (variant / "model.onnx").write_bytes(b"not an onnx graph")
    sha = sha256_file(variant / "model.onnx")
    rewrite_json(variant / "model.json", sha256=sha)
    write_evaluations(data / "models", model_shas(data / "models", (TIER,)))  # evaluated: consistent records
    result = _materialize(instance, DoubleHub(repo_id=DATASET), checks=False)
    assert not result.success
    message = _failure(result)
    assert "not pushed" in message and "hf_model_staged_models_run" in message and f"onnx/{TIER}/int4" in message
    assert api.calls == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"tiers": ["grandmaster"]}, "tiers ['grandmaster']"),
        ({"tiers": [TIER], "precisions": ["fp32", "bf16"]}, "precisions ['fp32', 'bf16']"),
        ({"tiers": [TIER], "repo_id": "not a repo id"}, "repo_id 'not a repo id'"),
    ],
)
def test_bad_settings_are_refused_before_any_file_is_touched(data: Path, instance, config, message) -> None:
    result = _materialize(instance, HuggingFaceHub(repo_id=DATASET), {"ops": {"hf_model": {"config": config}}})
    assert not result.success and message in _failure(result)
    assert not (data / "hf_model_staging").exists()


def test_without_a_repository_or_a_dataset_link_it_only_plans(data: Path, instance, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    api = _DOUBLE["api"] = RecordingHfApi()
    meta = _metadata(_materialize(instance, DoubleHub(), checks=False))
    assert meta["mode"] == "dry run" and meta["reason"].startswith("no dataset repository to link")
    assert meta["remote_state"] == "read from the Hub" and [n for n, _ in api.calls] == ["list_repo_tree"]
    api.calls.clear()
    monkeypatch.delenv(MODEL_REPO_ENV)
    meta = _metadata(_materialize(instance, DoubleHub(repo_id=DATASET), checks=False))
    assert meta["reason"] == f"no repository: set ${MODEL_REPO_ENV} (or hf_model's repo_id)"
    assert meta["repo_id"] == "(not configured)" and api.calls == []
    manifest = json.loads((data / "hf_model_staging" / "manifest.json").read_text())
    assert (
        manifest["repo_id"] is None
        and 'snapshot_download("<owner>/<model>"' in (data / "hf_model_staging" / "README.md").read_text()
    )


def test_the_readme_command_stages_and_plans_from_the_cli(data: Path, dagster_home: Path) -> None:
    """`dagster asset materialize --select hf_model` on the code location, as the README gives it (no token)."""
    config = {
        "resources": {"hf_hub": {"config": {"repo_id": DATASET}}},
        "ops": {"hf_model": {"config": {"tiers": [TIER], "precisions": ["fp32", "int8"]}}},
    }
    dagster = Path(sys.executable).with_name("dagster")
    cmd = [str(dagster), "asset", "materialize", "-m", "music_assets.definitions", "--select", "hf_model"]
    proc = subprocess.run(
        [*cmd, "--config-json", json.dumps(config)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "dry run (no token in $HF_TOKEN)" in output and "RUN_SUCCESS" in output
    for check in CHECKS:
        assert f"Asset check '{check}' on 'hf_model' passed" in output
    manifest = json.loads((data / "hf_model_staging" / "manifest.json").read_text())
    assert [m["folder"] for m in manifest["models"]] == [f"onnx/{TIER}/fp32", f"onnx/{TIER}/int8"]
    assert manifest["repo_id"] == REPO and manifest["dataset"] == DATASET
