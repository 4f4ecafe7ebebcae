"""Staging the model repository from fake model folders: layout, hard links, hashes verified against the
records, lineage, atomic replacement, and the checks of the staged folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from music_assets.io import sha256_file, write_json
from music_assets.publish import layout
from music_assets.publish import model_staging as ms
from music_assets.publish.model_card import ModelCardSettings, TrainingFacts, load_evaluations, render_model_card
from music_assets_tests.publish.model_repo_inputs import model_shas, rewrite_json, write_evaluations, write_fake_models

TIERS = ("advanced", "professional")
PRECISIONS = ("fp32", "fp16", "int8", "int4")
SETTINGS = {"repo_id": "someone/drum-models", "dataset_repo_id": "someone/rudiments"}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    write_fake_models(d / "models", TIERS)
    write_evaluations(d / "models", model_shas(d / "models", TIERS))
    return d


def stage(data: Path, tiers=TIERS, precisions=PRECISIONS) -> ms.StagedRepo:
    """What hf_model does: plan, load the evaluation, render the card, stage."""
    plan = ms.plan_repository(data / "models", tiers, precisions)
    evals = load_evaluations(data / "models" / "evaluation", plan.models)
    card = render_model_card(
        plan.models,
        evals,
        ModelCardSettings(SETTINGS["repo_id"], SETTINGS["dataset_repo_id"]),
        TrainingFacts(plan.base_meta, plan.lora),
    )
    return ms.stage_repository(data, data / "hf_model_staging", plan, ms.evaluation_files(evals), card, SETTINGS)


def test_the_repository_layout_with_big_files_hard_linked(data: Path) -> None:
    staged = stage(data)
    staging = data / "hf_model_staging"
    expected = {"README.md", "manifest.json", "base/model.safetensors", "base/model.json", "base/vocab.json"}
    expected |= {"evaluation/summary.json"}
    for t in TIERS:
        expected |= {f"adapters/{t}/adapter_model.safetensors", f"adapters/{t}/adapter_config.json"}
        for p in PRECISIONS:
            expected |= {f"onnx/{t}/{p}/model.onnx", f"onnx/{t}/{p}/model.json", f"evaluation/{t}/{p}.json"}
    assert set(layout.list_files(staging)) == expected  # .sources.json is hidden: never listed or uploaded
    assert (staging / ms.SOURCES).is_file()
    int8 = staging / "onnx/professional/int8/model.onnx"
    assert os.path.samefile(int8, data / "models/quantized/professional/int8/model.onnx")
    assert os.path.samefile(staging / "base/model.safetensors", data / "models/base/model.safetensors")
    assert staged.copied == 0 and staged.linked == len(expected) - 2

    manifest = json.loads((staging / "manifest.json").read_text())
    assert manifest["repo_id"] == "someone/drum-models" and manifest["dataset"] == "someone/rudiments"
    assert set(manifest["files"]) == expected - {"README.md", "manifest.json"}
    assert manifest["files"]["onnx/professional/int8/model.onnx"]["sha256"] == sha256_file(int8)
    model = next(m for m in manifest["models"] if (m["tier"], m["precision"]) == ("professional", "int8"))
    assert model["run"].startswith("python -m music_assets.ml.onnx_generate --model onnx/professional/int8 ")
    assert model["evaluation"] == "evaluation/professional/int8.json"
    assert manifest["adapters"]["advanced"]["lora"]["r"] == 16

    assert ms.files_match_sources(data, staging).passed
    card = ms.card_matches_evaluation(data, staging, data / "models" / "evaluation")
    assert card.passed, card.description


def test_a_corrupt_source_is_refused_naming_both_hashes_and_the_old_staging_stays(data: Path) -> None:
    stage(data)
    staging = data / "hf_model_staging"
    before = {p: sha256_file(staging / p) for p in layout.list_files(staging)}
    source = data / "models/quantized/advanced/int8/model.onnx"
    recorded = json.loads((source.parent / "model.json").read_text())["sha256"]
    source.unlink()  # a new file: the staged hard link keeps the old bytes
    source.write_bytes(b"bit rot")
    with pytest.raises(ms.ModelStagingError) as err:
        stage(data)
    msg = str(err.value)
    assert str(source) in msg and sha256_file(source) in msg and recorded in msg
    assert {p: sha256_file(staging / p) for p in layout.list_files(staging)} == before
    assert not [p for p in data.iterdir() if p.name.startswith(".hf_model_staging")]


def test_an_adapter_other_than_the_exported_one_is_refused(data: Path) -> None:
    adapter = data / "models/lora/professional/adapter/adapter_model.safetensors"
    adapter.write_bytes(b"retrained adapter")
    with pytest.raises(ms.ModelStagingError, match=r"adapter_model\.safetensors: sha256 [0-9a-f]{64} does not match"):
        stage(data)


@pytest.mark.parametrize(
    ("path", "change", "message"),
    [
        ("quantized/advanced/int4/model.json", {"fp32": {"sha256": "0" * 64}}, "quantized from an fp32 model"),
        ("onnx/professional/model.json", {"tier": "advanced"}, "tier is 'advanced', expected 'professional'"),
        ("base/model.json", {"weights_sha256": "1" * 64}, "exported from base weights with sha256"),
        ("lora/advanced/adapter/adapter_config.json", {"r": 8}, "LoRA settings"),
        ("base/vocab.json", {"tokens": ["PAD"]}, "vocabulary differs"),
    ],
)
def test_files_of_another_lineage_are_refused(data: Path, path: str, change: dict, message: str) -> None:
    rewrite_json(data / "models" / path, **change)
    with pytest.raises(ms.ModelStagingError, match=message):
        ms.plan_repository(data / "models", TIERS, PRECISIONS)


def test_a_missing_variant_names_the_asset_to_materialize(data: Path) -> None:
    (data / "models/quantized/professional/int4/model.json").unlink()
    with pytest.raises(ms.ModelStagingError, match=r"int4/model\.json: not found \(materialize quantized_models"):
        ms.plan_repository(data / "models", TIERS, PRECISIONS)
    # a selection without it stages
    assert len(ms.plan_repository(data / "models", TIERS, ("fp32", "int8")).models) == 4


def test_leftovers_of_a_killed_run_are_swept_but_not_a_running_ones(data: Path) -> None:
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = data / f".hf_model_staging.{dead.stdout.strip()}-deadbeef.partial"
    (leftover / "onnx").mkdir(parents=True)
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        in_progress = data / f".hf_model_staging.{running.pid}-0badf00d.partial"
        in_progress.mkdir()
        stage(data)
        assert not leftover.exists() and in_progress.is_dir()
        assert (data / "hf_model_staging/README.md").is_file()
    finally:
        running.kill()
        running.wait()


def test_the_files_check_sees_a_changed_source_and_a_stray_file(data: Path) -> None:
    stage(data)
    staging = data / "hf_model_staging"
    source = data / "models/onnx/advanced/model.onnx"
    source.unlink()
    source.write_bytes(b"re-exported")
    (staging / "onnx/advanced/fp32/notes.txt").write_text("stray")
    outcome = ms.files_match_sources(data, staging)
    assert not outcome.passed
    assert "onnx/advanced/fp32/model.onnx: source models/onnx/advanced/model.onnx now has sha256" in outcome.description
    assert "onnx/advanced/fp32/notes.txt: staged but not in the manifest" in outcome.description


def test_the_card_check_sees_a_new_evaluation_and_an_edited_card(data: Path) -> None:
    stage(data)
    staging, evals = data / "hf_model_staging", data / "models" / "evaluation"
    rewrite_json(evals / "professional/fp16.json", conditioning_accuracy=0.9)  # re-evaluated, same model file
    outcome = ms.card_matches_evaluation(data, staging, evals)
    assert not outcome.passed
    assert "professional/fp16 conditioning accuracy: card '0.518', evaluation '0.900'" in outcome.description
    assert "evaluation/professional/fp16.json: not the evaluation file" in outcome.description

    stage(data)  # re-staged: consistent again
    assert ms.card_matches_evaluation(data, staging, evals).passed
    card = staging / "README.md"
    text = card.read_text()
    card.unlink()
    card.write_text(text.replace("| advanced | int8 |", "| advanced | int4 |", 1))
    outcome = ms.card_matches_evaluation(data, staging, evals)
    assert not outcome.passed and "advanced/int8: no row in the card's metrics table" in outcome.description


def test_the_card_check_refuses_an_evaluation_of_another_model(data: Path) -> None:
    stage(data)
    evals = data / "models" / "evaluation"
    rewrite_json(evals / "advanced/int4.json", model_sha256="2" * 64)
    outcome = ms.card_matches_evaluation(data, data / "hf_model_staging", evals)
    assert not outcome.passed and "advanced/int4.json: evaluated a model file with sha256 2222" in outcome.description


def test_the_run_check_fails_on_files_that_are_not_models(data: Path) -> None:
    stage(data, tiers=("advanced",), precisions=("fp32",))
    outcome = ms.staged_models_run(data / "hf_model_staging")
    assert not outcome.passed and "onnx/advanced/fp32: " in outcome.description


def test_sources_outside_the_data_dir_are_never_read(data: Path, tmp_path: Path) -> None:
    stage(data)
    staging = data / "hf_model_staging"
    outside = tmp_path / "secret.bin"
    outside.write_bytes(b"not yours")
    sources = json.loads((staging / ms.SOURCES).read_text())
    sources["base/model.json"]["source"] = "../secret.bin"
    write_json(staging / ms.SOURCES, sources)
    outcome = ms.files_match_sources(data, staging)
    assert (
        not outcome.passed
        and "base/model.json: its source '../secret.bin' is not a path inside the data dir" in outcome.description
    )
