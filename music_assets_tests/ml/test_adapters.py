"""An adapter's gates, computed from its evaluation: grammar and validation loss block, timing warns."""

from __future__ import annotations

from pathlib import Path

from music_assets.ml.adapters import TierRun, generated_medians, tier_checks
from music_assets.ml.training import TrainResult

TIERS = ("beginner", "intermediate", "advanced", "professional")
REAL = {"beginner": (30, 50), "intermediate": (20, 35), "advanced": (10, 18), "professional": (4, 9)}


def _ev(tier: str, median: float, *, grammar: float = 0.99, val: float = 1.0, base: float = 1.1) -> dict:
    low, high = REAL[tier]
    return {
        "grammar_score": grammar,
        "grammar_min": grammar - 0.05,
        "val_loss": val,
        "base_val_loss": base,
        "timing_generated": {tier: {"median_ms": median}},
        "timing_real": {"low_ms": low, "high_ms": high, "median_ms": (low + high) / 2},
    }


def _run(ev: dict) -> TierRun:
    result = TrainResult(
        best_step=25, best_val_loss=ev["val_loss"], final_step=100, rollbacks=0, lr_scale=1.0, resumed_from=None,
        history={}, events=[], seconds=1.0,
    )  # fmt: skip
    return TierRun(ev, result, Path("."))


def _checks(tier: str, ev: dict, medians: dict) -> dict:
    return {c.name: c for c in tier_checks(tier, _run(ev), medians, TIERS, 0.95, 64)}


def test_a_good_adapter_passes_and_a_bad_one_is_stopped() -> None:
    medians = {"beginner": 40.0, "intermediate": 28.0, "advanced": 14.0, "professional": 6.0}
    good = _checks("advanced", _ev("advanced", 14.0), medians)
    assert all(c.passed for c in good.values())
    assert good["timing_realism"].severity == "warn" and good["grammar_score"].severity == "error"
    bad = _checks("advanced", _ev("advanced", 14.0, grammar=0.9, val=1.2), medians)
    assert not bad["grammar_score"].passed and not bad["val_loss_not_worse_than_base"].passed


def test_timing_warns_outside_the_real_range_or_out_of_tier_order() -> None:
    in_order = {"beginner": 40.0, "intermediate": 28.0, "advanced": 14.0, "professional": 6.0}
    outside = _checks("advanced", _ev("advanced", 25.0), {**in_order, "advanced": 25.0})
    assert not outside["timing_realism"].passed and outside["timing_realism"].metadata["inside_real_range"] is False
    swapped = {**in_order, "intermediate": 12.0}  # intermediate tighter than advanced
    unordered = _checks("advanced", _ev("advanced", 14.0), swapped)
    assert not unordered["timing_realism"].passed and unordered["timing_realism"].metadata["tiers_ordered"] is False
    missing = {k: v for k, v in in_order.items() if k != "beginner"}
    assert not _checks("advanced", _ev("advanced", 14.0), missing)["timing_realism"].passed


def test_medians_of_tiers_not_in_the_run_come_from_their_stored_evaluation() -> None:
    fresh = {"advanced": _ev("advanced", 14.0)}
    stored = {t: _ev(t, m) for t, m in {"beginner": 40.0, "intermediate": 28.0, "advanced": 99.0}.items()}
    medians = generated_medians(fresh, stored.get, TIERS)
    assert medians == {"beginner": 40.0, "intermediate": 28.0, "advanced": 14.0}
