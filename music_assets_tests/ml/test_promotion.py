"""Champion and challenger: candidates beside the promoted models, the comparison, atomic promotion, rejection."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from music_assets.io import read_json, sha256_file, write_json
from music_assets.ml import promotion as pr

TIERS = ("beginner", "professional")
PRECISIONS = ("fp32", "int8")


def _evaluation(tier: str, precision: str, sha: str, accuracy: float = 0.8, timing: float = 10.0) -> dict:
    return {
        "tier": tier,
        "precision": precision,
        "model_sha256": sha,
        "conditioning_accuracy": accuracy,
        "timing_sd_ms": timing,
        "real_timing_sd_ms": 10.0,
        "degenerate_rate": 0.0,
        "length_within_25pct": 1.0,
        "frechet_distance": 0.2,
        "frechet_scale": 1.0,
        "gates": {"conditioning_accuracy": {"passed": True, "value": accuracy, "threshold": ">= 0.7"}},
    }


def write_set(root: Path, tag: str, accuracy: float = 0.8, timing: float = 10.0) -> None:
    """A whole model set under `root` (the models dir or its candidate dir): files that chain by sha256."""
    write_json(root / "base/model.json", {"weights_sha256": f"base-{tag}"})
    for tier in TIERS:
        (root / f"lora/{tier}/adapter").mkdir(parents=True, exist_ok=True)
        (root / f"lora/{tier}/adapter/adapter_model.safetensors").write_bytes(f"{tag}-{tier}".encode())
        write_json(root / f"lora/{tier}/training.json", {"base_weights_sha256": f"base-{tag}"})
        adapter_sha = sha256_file(root / f"lora/{tier}/adapter/adapter_model.safetensors")
        for precision in PRECISIONS:
            folder = pr.model_dir(root, tier, precision)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "model.onnx").write_bytes(f"{tag}-{tier}-{precision}".encode())
            sha = sha256_file(folder / "model.onnx")
            meta = {"sha256": sha, "tier": tier, "precision": precision}
            if precision == "fp32":
                meta["source"] = {"base_weights_sha256": f"base-{tag}", "adapter_sha256": adapter_sha}
                fp32_sha = sha
            else:
                meta["fp32"] = {"sha256": fp32_sha}
            write_json(folder / "model.json", meta)
            write_json(pr.evaluation_path(root, tier, precision), _evaluation(tier, precision, sha, accuracy, timing))


def _evals(models: Path, root: Path | None = None) -> dict:
    return {
        (t, p): read_json(pr.effective_evaluation(models, t, p) if root is None else pr.evaluation_path(root, t, p))
        for t in TIERS
        for p in PRECISIONS
    }


def _snapshot(models: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(models)): p.read_bytes()
        for p in sorted(models.rglob("*"))
        if p.is_file() and pr.CANDIDATE not in p.parts and pr.REJECTED not in p.parts and p.name != pr.HISTORY
    }


def test_the_set_must_be_whole_before_anything_is_decided(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write_set(models, "old")
    assert pr.check_set(models, TIERS, PRECISIONS) == []
    assert pr.candidate_items(models) == []
    # a new base: every adapter, export, variant and evaluation must follow it
    write_json(pr.candidate(models, "base", "model.json"), {"weights_sha256": "base-new"})
    problems = pr.check_set(models, TIERS, PRECISIONS)
    assert problems == [f"the {t} adapter was trained on another base (materialize lora_adapters[{t}])" for t in TIERS]
    write_set(models / pr.CANDIDATE, "new")
    variant = pr.candidate(models, "quantized", "professional", "int8")
    (variant / "model.onnx").write_bytes(b"requantized")  # what quantized_models writes again, not evaluated yet
    write_json(
        variant / "model.json", {**read_json(variant / "model.json"), "sha256": sha256_file(variant / "model.onnx")}
    )
    problems = pr.check_set(models, TIERS, PRECISIONS)
    assert problems == ["professional/int8 is not evaluated (materialize model_evaluation[int8|professional])"]


def test_a_worse_challenger_is_not_promoted_and_the_champion_stays(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write_set(models, "old", accuracy=0.85)
    write_set(models / pr.CANDIDATE, "new", accuracy=0.70)  # 0.15 below the champion: beyond the 0.05 margin
    before = _snapshot(models)
    decision = pr.decide(_evals(models), _evals(models, models))
    assert not decision.promote
    assert any("conditioning accuracy 0.700 < the champion's 0.850" in r for r in decision.reasons)
    where = pr.reject(models, decision)
    assert _snapshot(models) == before  # every promoted file as it was
    assert not (models / pr.CANDIDATE).exists() and (where / "base" / "model.json").is_file()
    assert read_json(where / "decision.json")["reasons"] == decision.reasons
    history = [json.loads(line) for line in (models / pr.HISTORY).read_text().splitlines()]
    assert history[-1]["decision"] == "rejected"


def test_a_challenger_within_the_margins_is_promoted(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write_set(models, "old", accuracy=0.85, timing=13.0)
    write_set(models / pr.CANDIDATE, "new", accuracy=0.82, timing=10.5)  # a little less accurate, better timing
    decision = pr.decide(_evals(models), _evals(models, models))
    assert decision.promote and decision.reasons == []
    pr.promote(models, pr.candidate_items(models), decision)
    assert read_json(models / "base" / "model.json")["weights_sha256"] == "base-new"
    assert (models / "onnx/beginner/model.onnx").read_bytes() == b"new-beginner-fp32"
    assert read_json(pr.evaluation_path(models, "professional", "int8"))["conditioning_accuracy"] == 0.82
    assert not (models / pr.CANDIDATE).exists() and not (models / pr.PREVIOUS).exists()
    assert not (models / pr.JOURNAL).exists() and pr.check_set(models, TIERS, PRECISIONS) == []


def test_failed_gates_block_promotion_even_without_a_champion(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write_set(models / pr.CANDIDATE, "first")
    evals = _evals(models)
    evals[("beginner", "fp32")]["gates"]["timing_sd"] = {"passed": False, "value": 30.0, "threshold": "..."}
    decision = pr.decide(evals, {})
    assert not decision.promote and decision.reasons == ["beginner/fp32: gates failed: timing_sd"]
    assert pr.decide(_evals(models), {}).promote  # the first set, passing its gates, has nothing to beat


def test_a_promotion_killed_half_way_is_finished_by_recover(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write_set(models, "old")
    write_set(models / pr.CANDIDATE, "new")
    items = pr.candidate_items(models)
    # what promote() does, stopped after moving the first item away and before moving the new one in
    write_json(models / pr.JOURNAL, {"items": items})
    (models / pr.PREVIOUS).mkdir()
    os.replace(models / "base", models / pr.PREVIOUS / "base")
    assert not (models / "base").exists()  # nothing may read the models now: every asset calls recover() first
    assert pr.recover(models) == items
    assert read_json(models / "base" / "model.json")["weights_sha256"] == "base-new"
    assert pr.check_set(models, TIERS, PRECISIONS) == [] and not (models / pr.PREVIOUS).exists()
    assert pr.recover(models) == []  # nothing left to do


def test_effective_paths_prefer_the_candidate(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write_set(models, "old")
    assert pr.effective(models, "onnx", "beginner") == models / "onnx" / "beginner"
    write_json(pr.candidate(models, "onnx", "beginner", "model.json"), {})
    assert pr.effective(models, "onnx", "beginner") == models / pr.CANDIDATE / "onnx" / "beginner"
    assert pr.effective_model_dir(models, "beginner", "int8") == models / "quantized" / "beginner" / "int8"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"timing_sd_ms": 14.0}, "timing SD off the real tier by 40.0%"),
        ({"degenerate_rate": 0.05}, "degenerate rate 0.050"),
        ({"length_within_25pct": 0.8}, "length control 0.800"),
        ({"frechet_distance": 0.9}, "Frechet distance 0.900"),
    ],
)
def test_each_measure_is_compared(change: dict, reason: str) -> None:
    champion = _evaluation("beginner", "fp32", "a")
    assert pr.compare({**champion, "model_sha256": "b"}, champion, pr.Margins()) == []
    (why,) = pr.compare({**champion, **change, "model_sha256": "b"}, champion, pr.Margins())
    assert reason in why
