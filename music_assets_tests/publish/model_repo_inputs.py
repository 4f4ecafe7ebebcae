"""Inputs of the model repository for the hf_model tests: evaluation files, fake model folders, tiny models.

- `fake_evaluation` / `write_evaluations`: evaluation files in the layout `model_evaluation` writes
  (`models/evaluation/<tier>/<precision>.json` and `summary.json`), each naming the sha256 of the model
  file it stands for, with distinct numbers per model and the gates failing where asked.
- `write_fake_models`: the smallest folders with the records the staging reads (`base/model.json`,
  each export's and variant's `model.json` with their sha256 and lineage) over a few bytes of "weights":
  enough for staging and hashing, not for onnxruntime.
- `tiny_model_data`: the tiny trained models of `music_assets_tests.ml.tiny_models` for one tier,
  exported and quantized to every precision, with evaluation files (built once per session).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from music_assets.io import sha256_file, write_json
from music_assets.publish.model_card import PRECISIONS

CLASSIFIER = {"heldout_accuracy": 0.84, "train_takes": 480, "test_takes": 160}
RUDIMENTS = ("single_stroke_roll", "single_paradiddle", "flam", "swiss_army_triplet")
GATES = ("conditioning_accuracy", "degenerate_rate", "timing_sd", "length_control", "grammar")
TIER = "advanced"


def fake_evaluation(tier: str, precision: str, model_sha256: str, index: int = 0, failing: tuple = ()) -> dict:
    """An evaluation with numbers that differ per `index` (so a row mixed up with another shows)."""
    k = index + 1
    gates = {
        g: {"passed": g not in failing, "value": round(0.1 * k + 0.01 * i, 4), "threshold": f">= {0.05 * i:.2f}"}
        for i, g in enumerate(GATES)
    }
    return {
        "tier": tier,
        "precision": precision,
        "takes": 48 + k,
        "conditioning_accuracy": 0.3 + 0.0437 * k,
        "classifier_heldout_accuracy": CLASSIFIER["heldout_accuracy"],
        "per_rudiment_accuracy": {s: round(0.1 * j + 0.013 * k, 4) for j, s in enumerate(RUDIMENTS)},
        "timing_sd_ms": 10.04 + 3.3 * k,
        "real_timing_sd_ms": 13.96 + 2.1 * k,
        "velocity_cv": 0.1234 + 0.01 * k,
        "real_velocity_cv": 0.1111 + 0.02 * k,
        "frechet_distance": 1.2345 * k,
        "frechet_scale": 4.567 + k,
        "degenerate_rate": 0.01 * k,
        "distinct_rate": 1 - 0.013 * k,
        "length_within_25pct": 0.8 + 0.017 * k,
        "grammar_score": 0.99 - 0.002 * k,
        "gates": gates,
        "model_sha256": model_sha256,
    }


def write_evaluations(models_root: Path, shas: dict[tuple[str, str], str], failing: dict | None = None) -> list[dict]:
    """Evaluation files for `{(tier, precision): model sha256}` and the summary; the dicts written."""
    failing = failing or {}
    out = []
    for i, ((tier, precision), sha) in enumerate(sorted(shas.items())):
        ev = fake_evaluation(tier, precision, sha, i, tuple(failing.get((tier, precision), ())))
        write_json(models_root / "evaluation" / tier / f"{precision}.json", ev)
        out.append(ev)
    write_json(models_root / "evaluation" / "summary.json", {"classifier": CLASSIFIER, "evaluations": out})
    return out


def model_shas(models_root: Path, tiers: tuple[str, ...], precisions: tuple[str, ...] = PRECISIONS) -> dict:
    """{(tier, precision): sha256 of the model file} as the staging finds them."""
    out = {}
    for t in tiers:
        for p in precisions:
            folder = models_root / "onnx" / t if p == "fp32" else models_root / "quantized" / t / p
            out[(t, p)] = sha256_file(folder / "model.onnx")
    return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return _sha(data)


LORA = {"r": 16, "lora_alpha": 32, "use_rslora": True, "target_modules": ["q_proj", "v_proj"], "lora_dropout": 0.05}
VOCAB = {"format": "test", "tokens": ["PAD", "BOS", "EOS"]}


def write_fake_models(models_root: Path, tiers: tuple[str, ...], precisions: tuple[str, ...] = PRECISIONS) -> None:
    """Model folders with consistent records over a few bytes each (see the module docstring)."""
    weights = _write(models_root / "base" / "model.safetensors", b"base weights")
    write_json(models_root / "base" / "model.json", {"weights_sha256": weights, "parameters": 1234})
    write_json(models_root / "base" / "vocab.json", VOCAB)
    for t in tiers:
        adapter = models_root / "lora" / t / "adapter"
        adapter_sha = _write(adapter / "adapter_model.safetensors", f"adapter {t}".encode())
        write_json(adapter / "adapter_config.json", {**LORA, "peft_type": "LORA"})
        fp32 = _write(models_root / "onnx" / t / "model.onnx", f"onnx {t}".encode())
        meta = {
            "tier": t,
            "precision": "fp32",
            "sha256": fp32,
            "vocab": VOCAB,
            "conditioning": {"rudiment": {s: i for i, s in enumerate(RUDIMENTS)}},
            "source": {"base_weights_sha256": weights, "adapter_sha256": adapter_sha, "lora": LORA},
        }
        write_json(models_root / "onnx" / t / "model.json", meta)
        for p in precisions:
            if p != "fp32":
                sha = _write(models_root / "quantized" / t / p / "model.onnx", f"onnx {t} {p}".encode())
                write_json(
                    models_root / "quantized" / t / p / "model.json",
                    {**meta, "precision": p, "sha256": sha, "fp32": {"sha256": fp32}},
                )


_built: dict[str, Path] = {}


def tiny_model_data(factory: pytest.TempPathFactory) -> Path:
    """A data dir whose `models/` holds the tiny base, adapters, the `TIER` export and its fp16/int8/int4
    variants, and evaluation files for those four (a failing gate in int4); built once."""
    if "data" not in _built:
        from music_assets.ml.quantize import write_variant
        from music_assets_tests.ml.tiny_models import copy_models, export_tiny_tier

        root = export_tiny_tier(factory, TIER)
        data = factory.mktemp("tiny_model_repo") / "data"
        copy_models(root, data, "base", "lora")
        copy_models(root, data, f"onnx/{TIER}")
        models = data / "models"
        for p in PRECISIONS[1:]:
            write_variant(models / "onnx" / TIER, models / "quantized" / TIER / p, p)
        write_evaluations(models, model_shas(models, (TIER,)), failing={(TIER, "int4"): ("conditioning_accuracy",)})
        _built["data"] = data
    return _built["data"]


def rewrite_json(path: Path, **changes) -> None:
    """Replace a JSON file (a new file: hard links to the old one keep it) with some keys changed."""
    data = json.loads(path.read_text())
    data.update(changes)
    path.unlink()
    write_json(path, data)
