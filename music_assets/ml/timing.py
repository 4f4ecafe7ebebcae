"""Timing deviations of a performance from the grid implied by its tempo.

The grid of a rudiment is `beat / subdivision`, where the beat comes from the
tempo and the subdivision is the finest one its intended (non-grace) strokes
use (`subdivisions_from_strokes`, read from the dataset's stroke labels).

For one performance (`grid_deviations_ms`):
1. grace notes are set aside: an onset followed by the next one within
   `grace_fraction` of a grid step leads a main stroke, it is not on the grid;
2. each remaining onset gets a grid index by walking the inter-onset intervals
   (`k_i = k_{i-1} + round(ioi / step)`), which tolerates the tempo bin being a
   few percent off;
3. a line `t = phase + step' * k` is fitted by least squares (the performed
   tempo and start); the onsets are then re-assigned to the nearest point of
   the fitted grid and the line refitted until the assignment settles (a large
   error early on must not shift every later stroke by a step); the deviations
   are the residuals in ms.

The same measure is applied to real and generated performances, so a tier's
realism range (`realism_range`) comes from its real validation performances
and a model's generated ones are compared with it on equal terms.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

SUBDIVISIONS: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
MIN_ONSETS = 4


def subdivisions_from_strokes(strokes: pd.DataFrame, samples: pd.DataFrame, tolerance: float = 0.06) -> dict[str, int]:
    """Per rudiment, the coarsest subdivision of the beat on which every intended non-grace stroke lies.

    `strokes` needs `sample_id`, `intended_time_ms`, `is_grace`; `samples` needs
    `sample_id`, `rudiment_slug`, `tempo_bpm`. Intervals are used, so the result
    does not depend on where the first stroke sits.
    """
    df = strokes.loc[~strokes["is_grace"].astype(bool), ["sample_id", "intended_time_ms"]].merge(
        samples[["sample_id", "rudiment_slug", "tempo_bpm"]], on="sample_id", how="inner"
    )
    out: dict[str, int] = {}
    for slug, g in df.groupby("rudiment_slug", sort=True):
        needed = 1
        for _sid, s in g.groupby("sample_id", sort=False):
            beat_ms = 60000.0 / float(s["tempo_bpm"].iloc[0])
            iois = np.diff(np.sort(s["intended_time_ms"].to_numpy(dtype=float))) / beat_ms
            iois = iois[iois > 1e-6]
            if not len(iois):
                continue
            fit = next(
                (d for d in SUBDIVISIONS if np.all(np.abs(iois * d - np.round(iois * d)) < tolerance)), SUBDIVISIONS[-1]
            )
            needed = max(needed, fit)
        out[str(slug)] = int(needed)
    return out


def fit_grid(
    onsets_s: Iterable[float], tempo_bpm: float, subdivision: int, grace_fraction: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices of the main strokes in time order, their grid indices, their deviations in ms).

    Empty arrays when there are fewer than MIN_ONSETS main strokes.
    """
    t = np.sort(np.asarray(list(onsets_s), dtype=float))
    empty = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    if len(t) < MIN_ONSETS or tempo_bpm <= 0:
        return empty
    step = 60.0 / tempo_bpm / subdivision
    nxt = np.append(np.diff(t), np.inf)
    idx = np.flatnonzero(nxt >= grace_fraction * step)
    main = t[idx]
    if len(main) < MIN_ONSETS:
        return empty
    k = np.concatenate([[0], np.cumsum(np.maximum(1, np.floor(np.diff(main) / step + 0.5)))])
    for _ in range(4):
        a = np.vstack([np.ones_like(k), k]).T
        (phase, fitted_step), *_ = np.linalg.lstsq(a, main, rcond=None)
        regrid = np.floor((main - phase) / fitted_step + 0.5)
        if np.array_equal(regrid, k):
            break
        k = regrid
    return idx, k.astype(np.int64), (main - (phase + fitted_step * k)) * 1000.0


def grid_deviations_ms(
    onsets_s: Iterable[float], tempo_bpm: float, subdivision: int, grace_fraction: float = 0.5
) -> np.ndarray:
    """Deviations (ms) of the main-stroke onsets from the fitted tempo grid (empty if too few)."""
    return fit_grid(onsets_s, tempo_bpm, subdivision, grace_fraction)[2]


def performance_deviation_ms(onsets_s: Iterable[float], tempo_bpm: float, subdivision: int) -> float | None:
    """Mean absolute deviation (ms) of one performance, or None with fewer than MIN_ONSETS main strokes."""
    dev = grid_deviations_ms(onsets_s, tempo_bpm, subdivision)
    return float(np.mean(np.abs(dev))) if len(dev) else None


def realism_range(values: Iterable[float], quantiles: tuple[float, float] = (0.05, 0.95)) -> tuple[float, float]:
    """The [low, high] quantile range of a tier's real per-performance deviations."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if not len(v):
        raise ValueError("no real performances to derive a realism range from")
    return float(np.quantile(v, quantiles[0])), float(np.quantile(v, quantiles[1]))


def tiers_ordered(medians: Mapping[str, float], order: Iterable[str]) -> bool:
    """True when the medians strictly decrease along `order` (beginner first)."""
    vals = [medians[t] for t in order if t in medians]
    return all(a > b for a, b in zip(vals, vals[1:], strict=False))
