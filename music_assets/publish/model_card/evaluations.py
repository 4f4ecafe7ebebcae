"""Reading the evaluation files the model card is made from, each checked against the staged model file.

A missing, malformed or stale evaluation raises `ModelCardError` naming the
file; `REQUIRED_KEYS` lists what every per-model file must hold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from music_assets.io import read_json

PRECISIONS = ("fp32", "fp16", "int8", "int4")  # fp32: the exported model; the others: its quantized variants
SUMMARY_FILE = "summary.json"
UNSET_MODEL_REPO = "<owner>/<model>"
UNSET_DATASET_REPO = "<owner>/<dataset>"
RUNNER = "python -m music_assets.ml.onnx_generate"

# Every per-model evaluation file has at least these keys.
FLOAT_KEYS = (
    "conditioning_accuracy",
    "classifier_heldout_accuracy",
    "timing_sd_ms",
    "real_timing_sd_ms",
    "velocity_cv",
    "real_velocity_cv",
    "frechet_distance",
    "frechet_scale",
    "degenerate_rate",
    "distinct_rate",
    "length_within_25pct",
    "grammar_score",
)
REQUIRED_KEYS = ("tier", "precision", "takes", *FLOAT_KEYS, "per_rudiment_accuracy", "gates", "model_sha256")
SUMMARY_CLASSIFIER_KEYS = ("heldout_accuracy", "train_takes", "test_takes")


class ModelCardError(ValueError):
    """Missing, malformed or stale evaluation; the message names the file and the reason."""


@dataclass(frozen=True)
class StagedModel:
    """One ONNX model of the repository."""

    tier: str
    precision: str
    folder: str  # in the repository, e.g. "onnx/advanced/int8"
    sha256: str  # of its model.onnx, as staged
    size_bytes: int

    @property
    def key(self) -> tuple[str, str]:
        return self.tier, self.precision

    @property
    def name(self) -> str:
        return f"{self.tier}/{self.precision}"


@dataclass
class Evaluations:
    """The evaluation of every staged model, and the classifier it was measured with."""

    classifier: dict[str, Any]
    by_model: dict[tuple[str, str], dict[str, Any]]
    files: dict[tuple[str, str], Path]  # where each was read
    summary_file: Path


# ---------------------------------------------------------------- reading the evaluation


def evaluation_file(eval_dir: Path, tier: str, precision: str) -> Path:
    return eval_dir / tier / f"{precision}.json"


def finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def validate_evaluation(ev: Any, path: Path, tier: str, precision: str) -> dict[str, Any]:
    """`ev` if it is a complete evaluation of `tier`/`precision`; ModelCardError naming `path` otherwise."""
    if not isinstance(ev, dict):
        raise ModelCardError(f"{path}: not a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in ev]
    if missing:
        raise ModelCardError(f"{path}: missing {', '.join(missing)}")
    if (ev["tier"], ev["precision"]) != (tier, precision):
        raise ModelCardError(
            f"{path}: holds the evaluation of {ev['tier']}/{ev['precision']}, not of {tier}/{precision}"
        )
    bad = [k for k in FLOAT_KEYS if not finite(ev[k])]
    if not isinstance(ev["takes"], int) or isinstance(ev["takes"], bool) or ev["takes"] < 1:
        bad.append("takes")
    per = ev["per_rudiment_accuracy"]
    if not isinstance(per, dict) or not per or not all(finite(v) for v in per.values()):
        bad.append("per_rudiment_accuracy")
    gates = ev["gates"]
    if not isinstance(gates, dict) or not gates:
        bad.append("gates")
    else:
        for name, g in gates.items():
            if not (isinstance(g, dict) and isinstance(g.get("passed"), bool) and finite(g.get("value"))):
                bad.append(f"gates.{name}")
            elif not isinstance(g.get("threshold"), str):
                bad.append(f"gates.{name}.threshold")
    if not isinstance(ev["model_sha256"], str) or len(ev["model_sha256"]) != 64:
        bad.append("model_sha256")
    if bad:
        raise ModelCardError(f"{path}: no valid value for {', '.join(bad)} (a number the card cannot show)")
    return ev


def _read(path: Path, what: str) -> Any:
    if not path.is_file():
        raise ModelCardError(f"{path}: not found; the card needs the {what} (materialize model_evaluation first)")
    try:
        return read_json(path)
    except (OSError, ValueError) as exc:
        raise ModelCardError(f"{path}: unreadable JSON ({exc})") from None


def load_evaluations(eval_dir: Path, models: Sequence[StagedModel]) -> Evaluations:
    """The evaluation of every model in `models`, each checked against the model file staged.

    Refused (ModelCardError naming the file): a missing or malformed file; a file whose
    `model_sha256` is not the staged model's (it evaluated another file: stale); a classifier
    accuracy that differs from `summary.json`'s (evaluated with another classifier); a
    `summary.json` entry for the same model with another `model_sha256`.
    """
    summary_file = eval_dir / SUMMARY_FILE
    summary = _read(summary_file, "evaluation summary")
    classifier = summary.get("classifier") if isinstance(summary, dict) else None
    if not isinstance(classifier, dict) or not all(finite(classifier.get(k)) for k in SUMMARY_CLASSIFIER_KEYS):
        raise ModelCardError(f"{summary_file}: no classifier {{{', '.join(SUMMARY_CLASSIFIER_KEYS)}}}")
    listed = {(e.get("tier"), e.get("precision")): e for e in (summary.get("evaluations") or []) if isinstance(e, dict)}
    by_model, files = {}, {}
    for m in models:
        path = evaluation_file(eval_dir, m.tier, m.precision)
        ev = validate_evaluation(_read(path, f"evaluation of {m.name}"), path, m.tier, m.precision)
        if ev["model_sha256"] != m.sha256:
            raise ModelCardError(
                f"{path}: evaluated a model file with sha256 {ev['model_sha256']}, but the staged "
                f"{m.folder}/model.onnx has sha256 {m.sha256} (stale evaluation: materialize model_evaluation again)"
            )
        if not math.isclose(ev["classifier_heldout_accuracy"], classifier["heldout_accuracy"], abs_tol=1e-12):
            raise ModelCardError(
                f"{path}: classifier_heldout_accuracy {ev['classifier_heldout_accuracy']} differs from "
                f"{summary_file}'s {classifier['heldout_accuracy']} (evaluated with another classifier)"
            )
        other = listed.get(m.key)
        if other is not None and other.get("model_sha256") != ev["model_sha256"]:
            raise ModelCardError(
                f"{summary_file}: its entry for {m.name} evaluated sha256 {other.get('model_sha256')}, {path} "
                f"evaluated {ev['model_sha256']} (written by different runs: materialize model_evaluation again)"
            )
        by_model[m.key], files[m.key] = ev, path
    return Evaluations(dict(classifier), by_model, files, summary_file)
