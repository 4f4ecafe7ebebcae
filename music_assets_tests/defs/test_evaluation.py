"""rudiment_classifier and model_evaluation through Dagster: per-partition gates, the files the model card reads,
and champion/challenger on a whole set."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from music_assets.defs.models.evaluation import GATES, model_evaluation, rudiment_classifier
from music_assets.defs.partitions import EVAL_PRECISIONS, evaluation_partitions
from music_assets.io import read_json, write_json
from music_assets.ml import promotion as pr
from music_assets.ml import quantize as qz
from music_assets.publish.model_card import REQUIRED_KEYS
from music_assets.rudiments.constants import SKILL_TIERS
from music_assets_tests.ml.tiny_models import TIERS, copy_models, export_tiny_tier

RANGE_TAGS = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
QUICK = {"ops": {"model_evaluation": {"config": {"tempos": 1, "seeds": 2, "grammar_takes": 4}}}}
REQUIRED = set(REQUIRED_KEYS)  # what the model card reads from each evaluation file


@pytest.fixture(scope="module")
def whole_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with the fake dataset, its corpus and classifier, and a whole model set at the promoted paths:
    the tiny model of one tier stands in for every tier (copied, its model.json naming the tier)."""
    root = export_tiny_tier(tmp_path_factory, TIERS[0])
    data = tmp_path_factory.mktemp("evaluation") / "data"
    shutil.copytree(root / "rudiments", data / "rudiments")
    copy_models(root, data, "corpus", "base")
    models = data / "models"
    src_onnx, src_lora = root / "models" / "onnx" / TIERS[0], root / "models" / "lora" / TIERS[0]
    variants = tmp_path_factory.mktemp("variants")
    for p in qz.PRECISIONS:
        qz.write_variant(src_onnx, variants / p, p)
    for tier in SKILL_TIERS:
        shutil.copytree(src_lora, models / "lora" / tier)
        for src, dst in [(src_onnx, models / "onnx" / tier)] + [
            (variants / p, models / "quantized" / tier / p) for p in qz.PRECISIONS
        ]:
            shutil.copytree(src, dst)
            write_json(dst / "model.json", {**read_json(dst / "model.json"), "tier": tier})
    with pytest.MonkeyPatch.context() as mp, dg.DagsterInstance.ephemeral() as instance:
        mp.setenv("MUSIC_ASSETS_DATA_DIR", str(data))
        assert dg.materialize([rudiment_classifier], instance=instance).success
    return data


def test_wiring() -> None:
    assert model_evaluation.partitions_def == evaluation_partitions
    assert evaluation_partitions.get_partition_keys()[0] == "fp32|beginner" and len(EVAL_PRECISIONS) == 4
    specs = {s.name: s for s in model_evaluation.check_specs}
    assert set(specs) == {*GATES, "champion_challenger"} and all(s.blocking for s in specs.values())
    deps = model_evaluation.asset_deps[model_evaluation.key]
    assert {k.path[-1] for k in deps} == {"onnx_models", "quantized_models", "rudiment_classifier"}


def test_the_classifier_is_reported_in_the_ui(whole_set: Path) -> None:
    report = read_json(whole_set / "models" / "classifier" / "classifier.json")
    import pandas as pd

    labels = pd.read_parquet(whole_set / "rudiments" / "labels" / "samples.parquet")
    assert report["test_takes"] == int((labels["split"] == "test").sum()) > 0
    assert report["train_takes"] == int((labels["split"] == "train").sum())
    assert report["heldout_accuracy"] >= 0.9
    assert set(report["real"]) == set(SKILL_TIERS)


def test_evaluating_the_promoted_set_reports_every_gate_and_rejects_what_fails(
    whole_set: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUSIC_ASSETS_DATA_DIR", str(whole_set))
    models = whole_set / "models"
    before = {p: p.read_bytes() for p in sorted(models.rglob("*.onnx"))}
    keys = evaluation_partitions.get_partition_keys()
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [model_evaluation],
            instance=instance,
            run_config=QUICK,
            tags=dict(zip(RANGE_TAGS, (keys[0], keys[-1]), strict=True)),
            raise_on_error=False,
        )
    checks = {(e.partition, e.check_name): e for e in result.get_asset_check_evaluations()}
    assert {p for p, _ in checks} == set(keys) and {c for _, c in checks} == {*GATES, "champion_challenger"}
    # every partition's evaluation has the keys the model card reads, with a gate per row of GATES that applies
    rejected = models / pr.REJECTED
    for key in keys:
        precision, tier = key.split("|")
        ev = read_json(pr.evaluation_path(rejected, tier, precision))
        assert REQUIRED <= set(ev) and ev["takes"] == 4 * 2  # four rudiments, one tempo, two seeds
        assert ev["model_sha256"] == read_json(pr.model_dir(models, tier, precision) / "model.json")["sha256"]
        for name, gate in ev["gates"].items():
            assert checks[(key, name)].passed == gate["passed"] and set(gate) == {"passed", "value", "threshold"}
        assert ("int4_smaller_than_int8" in ev["gates"]) == (precision == "int4")
        assert ("quantized_conditioning" in ev["gates"]) == (precision != "fp32")
    # a stand-in model copied to every tier cannot order the tiers' timing: the set fails its gates, is not
    # promoted, the run says why and fails, and nothing promoted changed
    assert not all(checks[(k, "tier_order")].passed for k in keys)
    decision = checks[(keys[0], "champion_challenger")]
    assert not decision.passed and decision.severity == dg.AssetCheckSeverity.ERROR
    assert "not promoted, the promoted models stay" in decision.description and "tier_order" in decision.description
    assert not result.success
    assert {p: p.read_bytes() for p in sorted(models.rglob("*.onnx")) if pr.REJECTED not in p.parts} == before
    assert not (models / "evaluation").exists() and not (models / pr.CANDIDATE).exists()
    assert read_json(rejected / "decision.json")["promote"] is False


def test_a_set_that_is_not_whole_waits(whole_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    shutil.copytree(whole_set, data, ignore=shutil.ignore_patterns(pr.REJECTED))
    monkeypatch.setenv("MUSIC_ASSETS_DATA_DIR", str(data))
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [model_evaluation], instance=instance, run_config=QUICK, partition_key="fp32|advanced", raise_on_error=False
        )
    (decision,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "champion_challenger"]
    assert not decision.passed and decision.severity == dg.AssetCheckSeverity.WARN
    assert "not whole yet" in decision.description and "beginner/fp32 is not evaluated" in decision.description
    assert (pr.evaluation_path(data / "models" / pr.CANDIDATE, "advanced", "fp32")).is_file()


def test_a_model_that_plays_another_rudiment_than_asked_fails_the_conditioning_gate(
    whole_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate measures what the takes sound like, not what was asked: a model whose scores are
    swapped round (asked for a flam, it plays the next rudiment's strokes) is caught by the classifier."""
    from music_assets.ml.onnx_runtime import OnnxDrumModel

    def accuracy(data: Path) -> tuple[float, bool]:
        monkeypatch.setenv("MUSIC_ASSETS_DATA_DIR", str(data))
        with dg.DagsterInstance.ephemeral() as instance:
            result = dg.materialize(
                [model_evaluation], instance=instance, run_config=QUICK, partition_key="fp32|advanced",
                raise_on_error=False,
            )  # fmt: skip
        (gate,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "conditioning_accuracy"]
        return gate.metadata["value"].value, gate.passed

    honest = tmp_path / "honest"
    shutil.copytree(whole_set, honest, ignore=shutil.ignore_patterns(pr.REJECTED))
    played, _ = accuracy(honest)

    real = OnnxDrumModel.templates.fget

    def swapped(self):
        scores = real(self)
        names = sorted(scores)
        return {name: scores[names[(i + 1) % len(names)]] for i, name in enumerate(names)}

    monkeypatch.setattr(OnnxDrumModel, "templates", property(swapped))
    liar = tmp_path / "liar"
    shutil.copytree(whole_set, liar, ignore=shutil.ignore_patterns(pr.REJECTED))
    wrong, passed = accuracy(liar)
    assert not passed and wrong < 0.5 <= played - 0.3
