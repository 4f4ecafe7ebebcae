"""Exercise scores and measures: documented formulas on known performances."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from music_assets.rudiments.library import load_library
from music_assets.rudiments.performance import LEAD_IN_SEC, compiled, perform
from music_assets.rudiments.profiles import TRAIT_NAMES, generate_profiles
from music_assets.rudiments.scores import SCORE_COLUMNS, analyze, exercise_scores, measures
from music_assets_tests.rudiments.test_performance import PERFECT


def _perfect(slug: str, tempo: float = 100.0, cycles: int = 3):
    return perform(compiled(slug), PERFECT, tempo, cycles, False, np.random.default_rng(0))


def test_a_perfect_player_scores_at_the_top() -> None:
    s = exercise_scores(_perfect("flam_paradiddle"), compiled("flam_paradiddle"))
    for name in (
        "timing_accuracy",
        "timing_consistency",
        "tempo_stability",
        "subdivision_evenness",
        "velocity_control",
        "accent_differentiation",
        "accent_accuracy",
        "hand_balance",
        "weak_hand_index",
        "flam_quality",
        "diddle_quality",
        "groove_feel_proxy",
        "overall_score",
    ):
        assert s[name] == pytest.approx(100, abs=1.5), name
    assert s["roll_sustain"] is None  # a flam rudiment, not a roll


def test_scores_that_do_not_apply_are_null() -> None:
    nulls = {
        slug: {k for k, v in exercise_scores(_perfect(slug), compiled(slug)).items() if v is None}
        for slug in ("single_stroke_roll", "flam", "drag", "double_stroke_open_roll")
    }
    assert nulls["single_stroke_roll"] == {
        "accent_differentiation",
        "accent_accuracy",
        "flam_quality",
        "diddle_quality",
    }
    assert {"diddle_quality", "roll_sustain", "accent_accuracy"} <= nulls["flam"] and "flam_quality" not in nulls[
        "flam"
    ]
    assert "flam_quality" in nulls["drag"]
    assert (
        "diddle_quality" not in nulls["double_stroke_open_roll"]
        and "roll_sustain" not in nulls["double_stroke_open_roll"]
    )


def test_triplets_flattened_to_sixteenths_lose_subdivision_evenness() -> None:
    perf = _perfect("flam_accent", tempo=100.0, cycles=2)
    good = exercise_scores(perf, compiled("flam_accent"))["subdivision_evenness"]
    # the reference generator's error: the same strokes spread as sixteenths
    p = perf.is_primary
    flat = perf.actual_s.copy()
    flat[p] = LEAD_IN_SEC + np.arange(p.sum()) * 60.0 / 100.0 / 4
    bad = exercise_scores(dataclasses.replace(perf, actual_s=flat), compiled("flam_accent"))
    assert good == pytest.approx(100, abs=1) and bad["subdivision_evenness"] < 60 and bad["timing_accuracy"] < good
    # and a ratamacue spread evenly over its cycle instead of drag-triplet-eighth
    perf = _perfect("single_ratamacue", tempo=100.0, cycles=2)
    p = perf.is_primary
    even = perf.actual_s.copy()
    even[p] = LEAD_IN_SEC + np.arange(p.sum()) * (2 * 60.0 / 100.0) / 8
    assert (
        exercise_scores(dataclasses.replace(perf, actual_s=even), compiled("single_ratamacue"))["subdivision_evenness"]
        < 40
    )


def test_flam_quality_prefers_tight_flams() -> None:
    def flam_score(spacing: float) -> float:
        traits = {**PERFECT, "flam_spacing_ms": spacing}
        perf = perform(compiled("flam"), traits, 80, 4, False, np.random.default_rng(0))
        return exercise_scores(perf, compiled("flam"))["flam_quality"]

    assert flam_score(25) > flam_score(40) > flam_score(55) > 0


def test_all_scores_within_0_100_for_every_rudiment_and_tier() -> None:
    players = generate_profiles(12, seed=5)
    for i, (slug, r) in enumerate(load_library().items()):
        row = players.iloc[i % len(players)]
        traits = {k: float(row[k]) for k in TRAIT_NAMES}
        perf = perform(compiled(slug), traits, (r.tempo_min_bpm + 2 * 60) / 3, 2, False, np.random.default_rng(i))
        stats, per_cycle, scores = analyze(perf, compiled(slug))
        assert all(v is None or 0 <= v <= 100 for v in scores.values()), slug
        assert scores["overall_score"] is not None and set(scores) == set(SCORE_COLUMNS)
        assert len(per_cycle["measure_index"]) == 2 and stats["timing_error_sd_ms"] > 0


def test_measures_follow_their_definitions() -> None:
    traits = {**PERFECT, "lr_velocity_ratio": 0.8, "lr_timing_bias_ms": 6.0}
    perf = perform(compiled("single_stroke_roll"), traits, 90, 4, False, np.random.default_rng(0))
    m = measures(perf)
    assert m["num_strokes"].tolist() == [4, 4, 4, 4]
    assert np.allclose(m["lr_velocity_ratio"], 58 / 72, atol=0.01)  # weak (left) hand at 80 %
    assert np.allclose(m["lr_timing_diff_ms"], 6.0, atol=1.0)  # the weak hand 6 ms late
    assert np.allclose(m["timing_error_mean_ms"], 3.0, atol=1.0)
