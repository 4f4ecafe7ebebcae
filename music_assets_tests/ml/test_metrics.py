"""What a take sounds like, measured from its notes: timing, dynamics, length, collapse, Frechet distance."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from music_assets.ml import metrics
from music_assets.ml.score import library_templates

TEMPLATES = library_templates()


def _reference_frechet(mu1, s1, mu2, s2) -> float:
    """The usual FID formula, with scipy's general matrix square root."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    d = mu1 - mu2
    return float(d @ d + np.trace(s1 + s2 - 2 * covmean))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frechet_distance_matches_the_reference_formula(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5))
    b = rng.normal(loc=0.3, size=(200, 5)) @ rng.normal(size=(5, 5))
    mu1, s1 = metrics.gaussian(a)
    mu2, s2 = metrics.gaussian(b)
    assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_reference_frechet(mu1, s1, mu2, s2), rel=1e-6)
    assert metrics.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)
    shift = np.array([1.0, 2.0, 0.0, 0.0, 0.0])
    assert metrics.frechet_distance(mu1, s1, mu1 + shift, s1) == pytest.approx(5.0, abs=1e-6)


def _grid_take(n: int, tempo: float, sub: int, jitter_ms: float, velocities, seed: int = 0):
    rng = np.random.default_rng(seed)
    step = 60.0 / tempo / sub
    onsets = 0.25 + np.arange(n) * step + rng.normal(0, jitter_ms / 1000.0, n)
    return onsets.tolist(), list(velocities)


def test_timing_sd_and_within_position_velocity_cv() -> None:
    accents = [110 if i % 4 == 0 else 70 for i in range(64)]
    onsets, vel = _grid_take(64, 100, 4, 10.0, accents)
    st = metrics.take_stats(onsets, vel, 100, 4, 1)
    assert st.timing_sd_ms == pytest.approx(10.0, rel=0.25)
    assert st.velocity_cv == pytest.approx(0.0, abs=1e-9)  # the accents are the written dynamics, not variation
    noisy = [v * (1 + 0.1 * e) for v, e in zip(accents, np.random.default_rng(1).normal(size=64), strict=True)]
    assert metrics.take_stats(onsets, noisy, 100, 4, 1).velocity_cv == pytest.approx(0.1, rel=0.3)
    assert st.length_beats == pytest.approx(16.0, rel=0.02)
    assert metrics.within_length(st, 16) and not metrics.within_length(st, 8)


def test_degenerate_takes_are_recognised_and_real_ones_are_not() -> None:
    flam = TEMPLATES["flam"]
    written = metrics.written_interval_ratio(flam, 100, 8)
    assert written > metrics.SINGLE_INTERVAL_RATIO  # a flam has grace intervals
    # a real-looking flam: graces 30 ms before each stroke
    onsets, vel = _grid_take(16, 100, 2, 5.0, [100] * 16)
    graced = sorted(onsets + [t - 0.03 for t in onsets])
    st = metrics.take_stats(graced, [40, 100] * 16, 100, 2, 2)
    assert metrics.is_degenerate(st, 8, written) is None
    # collapsed to plain quarter notes: one repeated interval where the flam has several
    plain = metrics.take_stats(onsets, vel, 100, 2, 2)
    assert metrics.is_degenerate(plain, 8, written) == "one repeated interval"
    # a single stroke roll is one repeated interval by design: not degenerate
    roll = TEMPLATES["single_stroke_roll"]
    assert metrics.is_degenerate(plain, 8, metrics.written_interval_ratio(roll, 100, 8)) is None
    assert metrics.is_degenerate(plain, 8, written, ended=False) == "never ended"
    assert metrics.is_degenerate(metrics.take_stats(onsets[:3], vel[:3], 100, 2, 2), 8, written) == "3 notes"
    assert "beats for 32" in metrics.is_degenerate(st, 32, written)


def test_distinct_rate() -> None:
    a = ((0.1, 0.2), (80, 90))
    b = ((0.1, 0.2015), (80, 90))
    c = ((0.1, 0.2), (80, 91))
    assert metrics.distinct_rate([[a, b], [a, c]]) == 1.0
    assert metrics.distinct_rate([[a, a], [a, c]]) == 0.5
    assert metrics.distinct_rate([[a, ((0.1, 0.2001), (80, 90))]]) == 0.0  # the same to a millisecond
