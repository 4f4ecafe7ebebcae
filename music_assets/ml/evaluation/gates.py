"""The blocking gates of one evaluation (issue 21): thresholds and `gate_results`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from music_assets.rudiments.constants import SKILL_TIERS

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8", "int4")

# Blocking gates (issue 21), on the make run models
CONDITIONING_RATIO = 0.9  # conditioning accuracy >= this x the classifier's held-out accuracy on the tier's players
MAX_DEGENERATE = 0.02
TIMING_TOLERANCE = 0.25  # generated timing SD within +-25 % of the real tier's
LENGTH_TOLERANCE = 0.25  # a take within +-25 % of the requested length is on length
MIN_LENGTH_SHARE = 0.9  # of takes on length
MAX_QUANTIZED_DROP = 0.05  # a quantized variant's conditioning accuracy within this of fp32's
GRAMMAR_GATE = 0.95


def _gate(passed: bool, value: float, threshold: str) -> dict[str, Any]:
    return {"passed": bool(passed), "value": float(value), "threshold": threshold}


def gate_results(
    ev: Mapping[str, Any],
    fp32: Mapping[str, Any] | None,
    tier_timing: Mapping[str, float],
    sizes: Mapping[str, int],
) -> dict[str, dict[str, Any]]:
    """The blocking gates of one evaluation.

    `fp32`: the same tier's fp32 evaluation (for a quantized variant);
    `tier_timing`: every tier's generated timing SD at this precision (the
    order needs all four); `sizes`: this tier's model file sizes by precision.
    """
    ref = ev["classifier_heldout_accuracy_tier"]
    real_sd, sd = ev["real_timing_sd_ms"], ev["timing_sd_ms"]
    ratio = sd / real_sd if real_sd and not math.isnan(real_sd) else math.inf
    order = [tier_timing.get(t, math.nan) for t in SKILL_TIERS]
    ordered = all(not math.isnan(x) for x in order) and all(a > b for a, b in zip(order, order[1:], strict=False))
    gates = {
        "conditioning_accuracy": _gate(
            ev["conditioning_accuracy"] >= CONDITIONING_RATIO * ref,
            ev["conditioning_accuracy"],
            f">= {CONDITIONING_RATIO} x {ref:.3f} (the classifier's held-out accuracy on the tier's test players)",
        ),
        "degenerate_rate": _gate(
            ev["degenerate_rate"] <= MAX_DEGENERATE, ev["degenerate_rate"], f"<= {MAX_DEGENERATE}"
        ),
        "timing_sd": _gate(
            abs(ratio - 1.0) <= TIMING_TOLERANCE,
            sd,
            f"within +-{TIMING_TOLERANCE:.0%} of the real tier's {real_sd:.2f} ms",
        ),
        "tier_order": _gate(
            ordered,
            float(ordered),
            "timing SD strictly decreasing beginner > intermediate > advanced > professional at this precision ("
            + ", ".join("n/a" if math.isnan(x) else f"{x:.1f}" for x in order)
            + " ms)",
        ),
        "length_control": _gate(
            ev["length_within_25pct"] >= MIN_LENGTH_SHARE,
            ev["length_within_25pct"],
            f">= {MIN_LENGTH_SHARE} of takes within +-25 % of the requested length",
        ),
        "grammar": _gate(ev["grammar_score"] >= GRAMMAR_GATE, ev["grammar_score"], f">= {GRAMMAR_GATE} (unmasked)"),
    }
    if ev["precision"] != "fp32":
        if fp32 is None:
            gates["quantized_conditioning"] = _gate(False, math.nan, "needs the fp32 evaluation of the tier")
        else:
            drop = abs(ev["conditioning_accuracy"] - fp32["conditioning_accuracy"])
            gates["quantized_conditioning"] = _gate(
                drop <= MAX_QUANTIZED_DROP + 1e-12,
                drop,
                f"|accuracy - fp32's {fp32['conditioning_accuracy']:.3f}| <= {MAX_QUANTIZED_DROP}",
            )
    if ev["precision"] == "int4":
        int4, int8 = sizes.get("int4"), sizes.get("int8")
        ok = int4 is not None and int8 is not None and int4 < int8
        gates["int4_smaller_than_int8"] = _gate(
            ok, float(int4 or math.nan), f"< the int8 file ({int8 if int8 is not None else 'missing'} bytes)"
        )
    return gates
