"""Champion and challenger: new models are written beside the current ones and promoted only when
their evaluation is not worse.

Under `<data dir>/models/`, the *promoted* models (the champion) live at the
paths every consumer reads: `base/`, `lora/<tier>/`, `onnx/<tier>/`,
`quantized/<tier>/<precision>/` and `evaluation/<tier>/<precision>.json`
(+ `evaluation/summary.json`). Every model asset writes a *candidate* under
`candidate/` at the same relative path instead, and reads its inputs from the
candidate where there is one, else from the promoted model (`effective`). So
a retrain never touches the files in use.

The candidate set is the promoted set with the candidate's items laid over
it. `check_set` says whether it is whole: every tier's adapter trained on the
effective base, every export made from the effective base and adapter, every
variant quantized from the effective export, and every model evaluated (by
its file's sha256). `decide` compares the candidate's evaluations with the
champion's, per tier and precision, with the margins of `Margins`; the
candidate must also pass every gate. Then `promote` moves every candidate item
into place (the replaced files go to `.previous/` until all are moved; a
journal, `promotion.json`, lets `recover` finish a promotion that was killed
half-way), or `reject` moves the whole candidate to `rejected/` with its
`decision.json`, leaving the champion in place. Every decision is appended to
`promotions.jsonl`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from music_assets.io import read_json, sha256_file, write_json

CANDIDATE, REJECTED, PREVIOUS = "candidate", "rejected", ".previous"
JOURNAL, HISTORY = "promotion.json", "promotions.jsonl"
EVALUATION = "evaluation"
MODEL_KINDS = ("base", "lora", "onnx", "quantized")


class PromotionError(RuntimeError):
    pass


def candidate(models: Path, *parts: str) -> Path:
    return models / CANDIDATE / Path(*parts)


def effective(models: Path, *parts: str) -> Path:
    """The candidate's path if the candidate has it, else the promoted path."""
    c = candidate(models, *parts)
    return c if c.exists() else models / Path(*parts)


def evaluation_path(root: Path, tier: str, precision: str) -> Path:
    """`<root>/evaluation/<tier>/<precision>.json` (root: the models dir or its candidate dir)."""
    return root / EVALUATION / tier / f"{precision}.json"


def model_dir(root: Path, tier: str, precision: str) -> Path:
    return root / "onnx" / tier if precision == "fp32" else root / "quantized" / tier / precision


def effective_model_dir(models: Path, tier: str, precision: str) -> Path:
    c = model_dir(models / CANDIDATE, tier, precision)
    return c if c.exists() else model_dir(models, tier, precision)


def effective_evaluation(models: Path, tier: str, precision: str) -> Path:
    c = evaluation_path(models / CANDIDATE, tier, precision)
    return c if c.is_file() else evaluation_path(models, tier, precision)


def candidate_items(models: Path) -> list[str]:
    """The candidate's promotable items, relative paths: folders of models, files of evaluations."""
    root = models / CANDIDATE
    items: list[str] = []
    if (root / "base").is_dir():
        items.append("base")
    for kind in ("lora", "onnx"):
        items += sorted(f"{kind}/{p.name}" for p in (root / kind).glob("*") if p.is_dir())
    for tier in sorted(p for p in (root / "quantized").glob("*") if p.is_dir()):
        items += sorted(f"quantized/{tier.name}/{p.name}" for p in tier.glob("*") if p.is_dir())
        items += sorted(f"quantized/{tier.name}/{p.name}" for p in tier.glob("*.json"))
    items += sorted(str(p.relative_to(root)) for p in (root / EVALUATION).glob("*/*.json"))
    return items


# --- is the candidate set whole ---------------------------------------------------------------------
def _adapter_sha(adapter: Path) -> str | None:
    weights = next(iter(sorted(adapter.glob("adapter_model.*"))), None)
    return sha256_file(weights) if weights else None


def _json(path: Path) -> dict[str, Any] | None:
    try:
        return read_json(path)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def check_set(models: Path, tiers: Sequence[str], precisions: Sequence[str]) -> list[str]:
    """What keeps the effective set (candidate over promoted) from being whole; empty when it is whole."""
    problems: list[str] = []
    base = _json(effective(models, "base") / "model.json")
    if base is None:
        return ["no base model (materialize base_model)"]
    base_sha = base.get("weights_sha256")
    for tier in tiers:
        lora = effective(models, "lora", tier)
        training = _json(lora / "training.json")
        if training is None or not (lora / "adapter").is_dir():
            problems.append(f"no adapter for {tier} (materialize lora_adapters[{tier}])")
            continue
        if training.get("base_weights_sha256") != base_sha:
            problems.append(f"the {tier} adapter was trained on another base (materialize lora_adapters[{tier}])")
            continue
        onnx = _json(effective(models, "onnx", tier) / "model.json")
        source = (onnx or {}).get("source", {})
        if onnx is None or source.get("base_weights_sha256") != base_sha:
            problems.append(f"the {tier} export is missing or of another base (materialize onnx_models[{tier}])")
            continue
        if source.get("adapter_sha256") != _adapter_sha(lora / "adapter"):
            problems.append(f"the {tier} export is of another adapter (materialize onnx_models[{tier}])")
            continue
        for precision in precisions:
            mdir = effective_model_dir(models, tier, precision)
            meta = _json(mdir / "model.json")
            if precision != "fp32" and (meta is None or meta.get("fp32", {}).get("sha256") != onnx.get("sha256")):
                problems.append(
                    f"the {tier} {precision} variant is missing or of another export "
                    f"(materialize quantized_models[{precision}|{tier}])"
                )
                continue
            ev = _json(effective_evaluation(models, tier, precision))
            if ev is None or meta is None or ev.get("model_sha256") != meta.get("sha256"):
                problems.append(
                    f"{tier}/{precision} is not evaluated (materialize model_evaluation[{precision}|{tier}])"
                )
    return problems


# --- the decision -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Margins:
    """How much worse than the champion a challenger may measure and still be promoted (sampling noise)."""

    conditioning_accuracy: float = 0.05  # absolute
    timing_error: float = 0.10  # |timing SD / real - 1|, absolute
    degenerate_rate: float = 0.01  # absolute
    length_within_25pct: float = 0.05  # absolute
    frechet: float = 0.5  # in units of the tier's Frechet scale (the distance between adjacent real tiers)


@dataclass
class Decision:
    promote: bool
    reasons: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)  # per tier and precision: champion vs challenger
    items: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _timing_error(ev: Mapping[str, Any]) -> float:
    real = ev.get("real_timing_sd_ms") or math.nan
    return abs(ev["timing_sd_ms"] / real - 1.0) if real and not math.isnan(real) else math.inf


def compare(challenger: Mapping[str, Any], champion: Mapping[str, Any] | None, margins: Margins) -> list[str]:
    """Why `challenger` is worse than `champion` beyond the margins (empty: not worse)."""
    if champion is None:
        return []
    where = f"{challenger['tier']}/{challenger['precision']}"
    out = []
    a, b = challenger["conditioning_accuracy"], champion["conditioning_accuracy"]
    if a < b - margins.conditioning_accuracy:
        out.append(f"{where}: conditioning accuracy {a:.3f} < the champion's {b:.3f} - {margins.conditioning_accuracy}")
    a, b = _timing_error(challenger), _timing_error(champion)
    if a > b + margins.timing_error:
        out.append(
            f"{where}: timing SD off the real tier by {a:.1%} > the champion's {b:.1%} + {margins.timing_error:.0%}"
        )
    a, b = challenger["degenerate_rate"], champion["degenerate_rate"]
    if a > b + margins.degenerate_rate:
        out.append(f"{where}: degenerate rate {a:.3f} > the champion's {b:.3f} + {margins.degenerate_rate}")
    a, b = challenger["length_within_25pct"], champion["length_within_25pct"]
    if a < b - margins.length_within_25pct:
        out.append(f"{where}: length control {a:.3f} < the champion's {b:.3f} - {margins.length_within_25pct}")
    a, b = challenger["frechet_distance"], champion["frechet_distance"]
    scale = champion.get("frechet_scale") or 1.0
    if a > b + margins.frechet * scale:
        out.append(f"{where}: Frechet distance {a:.3f} > the champion's {b:.3f} + {margins.frechet} x {scale:.3f}")
    return out


def decide(
    challengers: Mapping[tuple[str, str], Mapping[str, Any]],
    champions: Mapping[tuple[str, str], Mapping[str, Any]],
    margins: Margins = Margins(),
) -> Decision:
    """Promote when every challenger passes its gates and none is worse than its champion beyond the margins."""
    reasons: list[str] = []
    rows = []
    for key in sorted(challengers):
        ch, champ = challengers[key], champions.get(key)
        failed = [name for name, g in ch.get("gates", {}).items() if not g["passed"]]
        if failed:
            reasons.append(f"{key[0]}/{key[1]}: gates failed: {', '.join(failed)}")
        same = champ is not None and champ.get("model_sha256") == ch.get("model_sha256")
        worse = [] if same else compare(ch, champ, margins)
        reasons += worse
        rows.append(
            {
                "tier": key[0],
                "precision": key[1],
                "changed": not same,
                "challenger_accuracy": ch["conditioning_accuracy"],
                "champion_accuracy": champ["conditioning_accuracy"] if champ else None,
                "challenger_timing_sd_ms": ch["timing_sd_ms"],
                "champion_timing_sd_ms": champ["timing_sd_ms"] if champ else None,
                "real_timing_sd_ms": ch["real_timing_sd_ms"],
                "challenger_frechet": ch["frechet_distance"],
                "champion_frechet": champ["frechet_distance"] if champ else None,
                "gates_passed": not failed,
                "not_worse": not worse,
            }
        )
    return Decision(promote=not reasons, reasons=reasons, rows=rows)


# --- moving files ---------------------------------------------------------------------------------------
def _log(models: Path, record: Mapping[str, Any]) -> None:
    models.mkdir(parents=True, exist_ok=True)
    with open(models / HISTORY, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), **record}, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _prune_empty(folder: Path) -> None:
    if not folder.is_dir():
        return
    for p in sorted((q for q in folder.rglob("*") if q.is_dir()), key=lambda q: -len(q.parts)):
        with contextlib.suppress(OSError):
            p.rmdir()
    with contextlib.suppress(OSError):
        folder.rmdir()


def _roll_forward(models: Path, items: Iterable[str]) -> None:
    previous = models / PREVIOUS
    for rel in items:
        src, dst, old = models / CANDIDATE / rel, models / rel, previous / rel
        if not src.exists():
            continue  # moved by an earlier, interrupted attempt
        if dst.exists():
            if old.exists():
                shutil.rmtree(old) if old.is_dir() else old.unlink()
            old.parent.mkdir(parents=True, exist_ok=True)
            os.replace(dst, old)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
    shutil.rmtree(previous, ignore_errors=True)
    _prune_empty(models / CANDIDATE)


def promote(models: Path, items: Sequence[str], decision: Decision | None = None) -> None:
    """Move every candidate item into place, journalled: the files replaced are kept until all are moved."""
    journal = models / JOURNAL
    write_json(journal, {"items": list(items)})
    _roll_forward(models, items)
    journal.unlink()
    _log(models, {"decision": "promoted", "items": list(items), "reasons": decision.reasons if decision else []})


def recover(models: Path) -> list[str]:
    """Finish a promotion a killed process left half done (before anything reads the models); the items moved."""
    journal = models / JOURNAL
    if not journal.is_file():
        return []
    items = [str(i) for i in read_json(journal)["items"]]
    _roll_forward(models, items)
    journal.unlink()
    _log(models, {"decision": "promoted", "items": items, "reasons": ["finished after an interruption"]})
    return items


def reject(models: Path, decision: Decision) -> Path:
    """Move the whole candidate to `rejected/` (replacing an earlier one) with why; the champion stays."""
    src, dst = models / CANDIDATE, models / REJECTED
    shutil.rmtree(dst, ignore_errors=True)
    if src.exists():
        os.replace(src, dst)
    write_json(dst / "decision.json", decision.as_dict())
    _log(models, {"decision": "rejected", "items": decision.items, "reasons": decision.reasons})
    return dst


def rejected_decision(models: Path) -> dict[str, Any] | None:
    return _json(models / REJECTED / "decision.json")
