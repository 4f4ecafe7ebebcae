"""What a take sounds like, measured from its notes (onsets, velocities, the MIDI tempo) only.

Every measure here is applied alike to the dataset's real performances and to
generated takes, from the notes a MIDI file holds, so a model is judged by what
it plays, never by its tokens:

- `take_stats`: per take,
  - `timing_sd_ms`: the SD of the main strokes' deviations from the fitted
    tempo grid (`timing.fit_grid`, the rudiment's timing subdivision);
  - `velocity_cv`: the coefficient of variation of the main strokes' velocity
    *within each position of the rudiment's cycle* (so accents and the written
    dynamics do not count), averaged over positions by stroke count;
  - `length_beats`: from the first onset to the last plus one grid step, in beats
    of the MIDI tempo;
  - the performance-feature vector of the Frechet distance (`FRECHET_FEATURES`).
- `frechet_distance`: between two sets of feature vectors, each summarised by
  its mean and covariance (the symbolic stand-in for FAD).
- `is_degenerate`: the collapse patterns of a generative model (too few notes, a
  take that never ended, a length far off the request, one repeated interval
  where the rudiment has several).
- `distinct_rate`: of takes asked for the same thing with different seeds, the
  share that differ.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from music_assets.ml import timing
from music_assets.ml.score import ScoreTemplate, expand, intended_seconds

FRECHET_FEATURES = ("log_timing_sd", "velocity_cv", "timing_lag1", "velocity_spread", "velocity_mean")
SINGLE_INTERVAL_RATIO = 1.3  # max / min interval below this: one repeated interval
DEGENERATE_LENGTH = (0.5, 2.0)  # a take outside these multiples of the requested length is broken


@dataclass(frozen=True)
class TakeStats:
    notes: int
    timing_sd_ms: float | None
    velocity_cv: float | None
    length_beats: float
    timing_lag1: float | None  # lag-1 autocorrelation of the deviations: slow wander (high) or jitter (low)
    velocity_spread: float | None  # (p90 - p10) / median of the main strokes' velocities
    velocity_mean: float | None  # of the main strokes, / 127
    interval_ratio: float  # max / min inter-onset interval (inf with fewer than 2 notes)

    def features(self) -> np.ndarray | None:
        """The Frechet feature vector, or None when the take has too few main strokes."""
        vals = (
            math.log(max(self.timing_sd_ms, 0.1)) if self.timing_sd_ms is not None else None,
            self.velocity_cv,
            self.timing_lag1,
            self.velocity_spread,
            self.velocity_mean,
        )
        return None if any(v is None for v in vals) else np.asarray(vals, dtype=float)

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def take_stats(
    onsets_s: Sequence[float], velocities: Sequence[int], tempo_bpm: float, subdivision: int, cycle_beats: int
) -> TakeStats:
    """The measures of one take (see the module docstring)."""
    order = np.argsort(np.asarray(onsets_s, dtype=float), kind="stable")
    t = np.asarray(onsets_s, dtype=float)[order]
    v = np.asarray(velocities, dtype=float)[order]
    beat = 60.0 / tempo_bpm
    length = float((t[-1] - t[0]) / beat + 1.0 / subdivision) if len(t) else 0.0
    ioi = np.diff(t)
    ratio = float(ioi.max() / max(ioi.min(), 1e-6)) if len(ioi) else math.inf
    main, k, dev = timing.fit_grid(t, tempo_bpm, subdivision)
    if not len(main):
        return TakeStats(len(t), None, None, length, None, None, None, ratio)
    mv = v[main]
    positions = np.mod(k, cycle_beats * subdivision)
    cvs, weights = [], []
    for p in np.unique(positions):
        g = mv[positions == p]
        if len(g) >= 2 and g.mean() > 0:
            cvs.append(g.std() / g.mean())
            weights.append(len(g))
    lag1 = None
    if len(dev) >= 3 and dev.std() > 1e-9:
        d = dev - dev.mean()
        lag1 = float(np.sum(d[:-1] * d[1:]) / np.sum(d * d))
    return TakeStats(
        notes=len(t),
        timing_sd_ms=float(dev.std()),
        velocity_cv=float(np.average(cvs, weights=weights)) if cvs else None,
        length_beats=length,
        timing_lag1=lag1,
        velocity_spread=float((np.percentile(mv, 90) - np.percentile(mv, 10)) / max(np.median(mv), 1.0)),
        velocity_mean=float(mv.mean() / 127.0),
        interval_ratio=ratio,
    )


def written_interval_ratio(template: ScoreTemplate, tempo_bpm: float, beats: float) -> float:
    """max / min interval between the written onsets (graces at their reference spacing)."""
    from music_assets.rudiments.performance import BUZZ_INTERVAL_SEC, REF_DRAG_UNIT_MS, REF_FLAM_SPACING_MS  # noqa: PLC0415

    times = []
    for e in expand(template, tempo_bpm, beats):
        at = intended_seconds(e.step, template.steps_per_beat, tempo_bpm)
        if e.kind.startswith("FLAM_GRACE"):
            at -= REF_FLAM_SPACING_MS / 1000.0
        elif e.kind.startswith("DRAG_GRACE"):
            at -= (3 - int(e.kind[-1])) * REF_DRAG_UNIT_MS / 1000.0
        elif e.kind.startswith("BOUNCE"):
            at += int(e.kind[len("BOUNCE") :]) * BUZZ_INTERVAL_SEC
        times.append(at)
    ioi = np.diff(np.sort(times))
    return float(ioi.max() / max(ioi.min(), 1e-6)) if len(ioi) else math.inf


def is_degenerate(stats: TakeStats, requested_beats: float, written_ratio: float, ended: bool = True) -> str | None:
    """Why a take is degenerate, or None: too few notes, never ended, a length far off the request,
    or one repeated interval where the written rudiment has several."""
    if not ended:
        return "never ended"
    if stats.notes < timing.MIN_ONSETS:
        return f"{stats.notes} notes"
    lo, hi = DEGENERATE_LENGTH
    if not lo * requested_beats <= stats.length_beats <= hi * requested_beats:
        return f"{stats.length_beats:.1f} beats for {requested_beats:g}"
    if written_ratio >= SINGLE_INTERVAL_RATIO and stats.interval_ratio < SINGLE_INTERVAL_RATIO:
        return "one repeated interval"
    return None


def within_length(stats: TakeStats, requested_beats: float, tolerance: float = 0.25) -> bool:
    return abs(stats.length_beats / requested_beats - 1.0) <= tolerance


def distinct_rate(groups: Sequence[Sequence[tuple[tuple[float, ...], tuple[int, ...]]]]) -> float:
    """Of groups of takes asked for the same thing (same rudiment, tier, tempo, length; other seeds), the
    share of takes that differ from every other take of their group (onsets rounded to 1 ms, velocities)."""
    distinct = total = 0
    for takes in groups:
        keys = [(tuple(round(x * 1000.0) for x in onsets), tuple(vels)) for onsets, vels in takes]
        for i, key in enumerate(keys):
            total += 1
            distinct += int(all(key != other for j, other in enumerate(keys) if j != i))
    return distinct / total if total else 0.0


def gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (ddof 1) of feature rows."""
    x = np.asarray(features, dtype=float)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError("need at least two feature vectors")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2.0)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2): the squared Frechet (2-Wasserstein)
    distance of two Gaussians, through symmetric square roots (no complex round-off)."""
    r1 = _sqrt_psd(s1)
    cross = _sqrt_psd(r1 @ s2 @ r1)
    d = np.asarray(mu1, dtype=float) - np.asarray(mu2, dtype=float)
    return float(max(0.0, d @ d + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(cross)))


def standardize(*sets: np.ndarray, scale: np.ndarray) -> list[np.ndarray]:
    """Feature sets divided by `scale` (per feature), so no unit dominates the distance."""
    s = np.where(np.asarray(scale) > 1e-12, scale, 1.0)
    return [np.asarray(x, dtype=float) / s for x in sets]
