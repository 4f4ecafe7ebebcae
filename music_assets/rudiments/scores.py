"""Per-cycle measures and 0-100 exercise scores of a performance, with their formulas.

Notation, over the *primary* strokes of a performance (grace notes and buzz
bounces are judged only by the flam score and not otherwise):
`e` timing error in ms (actual - intended), `r` = actual / intended velocity,
`IOI` the interval between consecutive primaries (actual `IOI_a`, intended `IOI_i`).

Measures (one row per cycle of the rudiment):
- timing_error_mean_ms / _std_ms: mean and SD of `e`; timing_error_max_ms: max |e|
- velocity_mean / velocity_std: of the actual MIDI velocities
- velocity_consistency: 1 - CV(r), clipped to 0-1
- lr_velocity_ratio: mean r of left-hand strokes / mean r of right-hand strokes
- lr_timing_diff_ms: mean e of the left hand - mean e of the right hand

Exercise scores (0-100; null where the rudiment has nothing to judge):
- timing_accuracy        = 100 exp(-mean|e| / 50 ms)
- timing_consistency     = 100 exp(-SD(IOI_a - IOI_i) / 25 ms)
- tempo_stability        = 100 exp(-(|s - 1| + SD_c) / 0.1), s the slope of a least-squares fit of
                           actual on intended times, SD_c the SD over cycles of each cycle's
                           (actual span / intended span) of its primaries
- subdivision_evenness   = 100 exp(-RMS(IOI_a / IOI_i - 1) / 0.3): low when the figure is not played on
                           its true subdivision (e.g. triplets flattened to sixteenths)
- velocity_control       = 100 exp(-CV(r) / 0.3)
- accent_differentiation = 100 clip(1 - |1 - G_a / G_i|, 0, 1), G the mean velocity of accented minus
                           unaccented primaries, actual (a) and intended (i); null without both kinds
- accent_accuracy        = 100 x share of primaries on the intended side of the midpoint between the
                           median accented and the median unaccented actual velocity; null likewise
- hand_balance           = 100 (min_h mean r_h / max_h mean r_h) exp(-|mean e_L - mean e_R| / 20 ms)
- weak_hand_index        = 100 min_h q_h / max_h q_h with q_h = mean r_h exp(-mean|e_h| / 50 ms)
- flam_quality           = 100 mean over flams of exp(-((s - 25 ms) / 20 ms)^2) x (1, or 0.5 when the
                           grace note is not softer than its primary), s the grace-to-primary spacing;
                           null without flams
- diddle_quality         = 100 mean over diddles of exp(-|ln(v2 / v1)| / 0.5) exp(-|IOI_a / IOI_i - 1| / 0.5)
                           for the two strokes of each diddle; null without diddles
- roll_sustain           = 100 clip(1 + b / mean r, 0, 1), b the slope of r against the position within
                           the roll group (0 at its start, 1 at its end); rolls only, else null
- groove_feel_proxy      = 100 (0.7 exp(-SD(e - ē_pos) / 25 ms) + 0.3 exp(-SD(r - r̄_pos) / 0.15)), ē_pos and
                           r̄_pos the means at the same position of the cycle over all cycles: what is
                           left after a repeated micro-timing/dynamics pattern ("feel") is removed
- overall_score          = the `OVERALL_WEIGHTS`-weighted mean of the scores that are not null
"""

from __future__ import annotations

import numpy as np

from music_assets.rudiments.performance import (
    FLAM_GRACE,
    REF_FLAM_SPACING_MS,
    CompiledRudiment,
    Performance,
)

SCORE_COLUMNS: tuple[str, ...] = (
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
    "roll_sustain",
    "groove_feel_proxy",
    "overall_score",
)
OVERALL_WEIGHTS: dict[str, float] = {
    "timing_accuracy": 0.20,
    "timing_consistency": 0.10,
    "tempo_stability": 0.10,
    "subdivision_evenness": 0.10,
    "velocity_control": 0.10,
    "accent_differentiation": 0.05,
    "accent_accuracy": 0.05,
    "hand_balance": 0.08,
    "weak_hand_index": 0.04,
    "flam_quality": 0.06,
    "diddle_quality": 0.06,
    "roll_sustain": 0.03,
    "groove_feel_proxy": 0.03,
}
MEASURE_COLUMNS: tuple[str, ...] = (
    "num_strokes",
    "timing_error_mean_ms",
    "timing_error_std_ms",
    "timing_error_max_ms",
    "velocity_mean",
    "velocity_std",
    "velocity_consistency",
    "lr_velocity_ratio",
    "lr_timing_diff_ms",
)


def _clip100(x: float) -> float:
    return float(np.clip(x, 0.0, 100.0))


def _cv(x: np.ndarray) -> float:
    m = x.mean()
    return float(x.std() / m) if m > 0 else 0.0


class _Primaries:
    """The primary strokes of a performance as arrays (ms and velocity ratios)."""

    def __init__(self, perf: Performance):
        p = perf.is_primary
        self.index = np.flatnonzero(p)
        self.t_i = perf.intended_s[p] * 1000.0
        self.t_a = perf.actual_s[p] * 1000.0
        self.e = self.t_a - self.t_i
        self.v = perf.actual_vel[p].astype(float)
        self.v_i = perf.intended_vel[p].astype(float)
        self.r = self.v / self.v_i
        self.hand = perf.hand[p]
        self.accent = perf.is_accent[p]
        self.diddle = perf.diddle[p]
        self.measure = perf.measure[p]
        self.position = perf.position[p]


def sample_stats(perf: Performance, p: _Primaries | None = None) -> dict[str, float]:
    """The realism measures of one performance: SD of the timing error (ms) and velocity CV."""
    p = p or _Primaries(perf)
    return {"timing_error_sd_ms": float(p.e.std()), "velocity_cv": _cv(p.r)}


def measures(perf: Performance, p: _Primaries | None = None) -> dict[str, np.ndarray]:
    """One row per cycle (`measure_index` plus MEASURE_COLUMNS), computed over primary strokes."""
    p = p or _Primaries(perf)
    m = p.measure
    n_m = perf.num_cycles

    def by(x: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        w = np.ones_like(x) if mask is None else mask.astype(float)
        cnt = np.bincount(m, weights=w, minlength=n_m)
        s = np.bincount(m, weights=x * w, minlength=n_m)
        with np.errstate(invalid="ignore", divide="ignore"):
            return cnt, s / cnt

    cnt, e_mean = by(p.e)
    _, e_sq = by(p.e**2)
    _, v_mean = by(p.v)
    _, v_sq = by(p.v**2)
    _, r_mean = by(p.r)
    _, r_sq = by(p.r**2)
    e_max = np.zeros(n_m)
    np.maximum.at(e_max, m, np.abs(p.e))
    _, r_left = by(p.r, p.hand == 1)
    _, r_right = by(p.r, p.hand == 0)
    _, e_left = by(p.e, p.hand == 1)
    _, e_right = by(p.e, p.hand == 0)
    r_sd = np.sqrt(np.maximum(r_sq - r_mean**2, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "measure_index": np.arange(n_m, dtype=np.int32),
            "num_strokes": cnt.astype(np.int32),
            "timing_error_mean_ms": e_mean,
            "timing_error_std_ms": np.sqrt(np.maximum(e_sq - e_mean**2, 0.0)),
            "timing_error_max_ms": e_max,
            "velocity_mean": v_mean,
            "velocity_std": np.sqrt(np.maximum(v_sq - v_mean**2, 0.0)),
            "velocity_consistency": np.clip(1.0 - r_sd / r_mean, 0.0, 1.0),
            "lr_velocity_ratio": r_left / r_right,
            "lr_timing_diff_ms": e_left - e_right,
        }


def _by_position_residual(x: np.ndarray, position: np.ndarray) -> np.ndarray:
    cnt = np.bincount(position)
    mean = np.bincount(position, weights=x) / np.maximum(cnt, 1)
    return x - mean[position]


def exercise_scores(
    perf: Performance, rudiment: CompiledRudiment, p: _Primaries | None = None
) -> dict[str, float | None]:
    """The 14 scores of one performance (see the module docstring for every formula)."""
    p = p or _Primaries(perf)
    out: dict[str, float | None] = {}
    out["timing_accuracy"] = _clip100(100 * np.exp(-np.abs(p.e).mean() / 50.0))
    ioi_a, ioi_i = np.diff(p.t_a), np.diff(p.t_i)
    out["timing_consistency"] = _clip100(100 * np.exp(-(ioi_a - ioi_i).std() / 25.0)) if len(ioi_a) > 1 else None
    slope = np.polyfit(p.t_i, p.t_a, 1)[0]
    spans = []
    for mi in range(perf.num_cycles):
        sel = p.measure == mi
        if sel.sum() >= 2:
            ti, ta = p.t_i[sel], p.t_a[sel]
            spans.append((ta[-1] - ta[0]) / (ti[-1] - ti[0]))
    sd_c = float(np.std(spans)) if len(spans) > 1 else 0.0
    out["tempo_stability"] = _clip100(100 * np.exp(-(abs(slope - 1.0) + sd_c) / 0.1))
    out["subdivision_evenness"] = _clip100(100 * np.exp(-np.sqrt(np.mean((ioi_a / ioi_i - 1.0) ** 2)) / 0.3))
    out["velocity_control"] = _clip100(100 * np.exp(-_cv(p.r) / 0.3))

    has_acc = p.accent.any() and (~p.accent).any()
    if has_acc:
        g_a = p.v[p.accent].mean() - p.v[~p.accent].mean()
        g_i = p.v_i[p.accent].mean() - p.v_i[~p.accent].mean()
        out["accent_differentiation"] = _clip100(100 * (1.0 - abs(1.0 - g_a / g_i)))
        thr = (np.median(p.v[p.accent]) + np.median(p.v[~p.accent])) / 2.0
        out["accent_accuracy"] = _clip100(100 * np.mean((p.v > thr) == p.accent))
    else:
        out["accent_differentiation"] = out["accent_accuracy"] = None

    hands = [h for h in (0, 1) if (p.hand == h).any()]
    if len(hands) == 2:
        mr = [p.r[p.hand == h].mean() for h in hands]
        me = [p.e[p.hand == h].mean() for h in hands]
        out["hand_balance"] = _clip100(100 * min(mr) / max(mr) * np.exp(-abs(me[1] - me[0]) / 20.0))
        q = [p.r[p.hand == h].mean() * np.exp(-np.abs(p.e[p.hand == h]).mean() / 50.0) for h in hands]
        out["weak_hand_index"] = _clip100(100 * min(q) / max(q))
    else:
        out["hand_balance"] = out["weak_hand_index"] = None

    fg = np.flatnonzero(perf.stroke_type == FLAM_GRACE)
    if fg.size:
        s = perf.flam_spacing_ms[fg]
        softer = perf.actual_vel[fg] < perf.actual_vel[perf.parent[fg]]
        q = np.exp(-(((s - REF_FLAM_SPACING_MS) / 20.0) ** 2)) * np.where(softer, 1.0, 0.5)
        out["flam_quality"] = _clip100(100 * q.mean())
    else:
        out["flam_quality"] = None

    first = np.flatnonzero(p.diddle == 1)
    first = first[first + 1 < len(p.diddle)]
    if first.size:
        second = first + 1
        v_ratio = p.v[second] / p.v[first]
        ioi_ratio = (p.t_a[second] - p.t_a[first]) / (p.t_i[second] - p.t_i[first])
        q = np.exp(-np.abs(np.log(v_ratio)) / 0.5) * np.exp(-np.abs(ioi_ratio - 1.0) / 0.5)
        out["diddle_quality"] = _clip100(100 * q.mean())
    else:
        out["diddle_quality"] = None

    roll_pos = rudiment.roll_pos[p.position]
    if rudiment.category == "roll" and np.ptp(roll_pos) > 0:
        b = np.polyfit(roll_pos, p.r, 1)[0]
        out["roll_sustain"] = _clip100(100 * (1.0 + b / p.r.mean()))
    else:
        out["roll_sustain"] = None

    if perf.num_cycles >= 2:
        res_e = _by_position_residual(p.e, p.position)
        res_r = _by_position_residual(p.r, p.position)
        out["groove_feel_proxy"] = _clip100(
            100 * (0.7 * np.exp(-res_e.std() / 25.0) + 0.3 * np.exp(-res_r.std() / 0.15))
        )
    else:
        out["groove_feel_proxy"] = None

    present = {k: v for k, v in out.items() if v is not None}
    w = np.array([OVERALL_WEIGHTS[k] for k in present])
    out["overall_score"] = _clip100(float(np.dot(w, list(present.values())) / w.sum()))
    return {k: (None if out[k] is None else round(float(out[k]), 4)) for k in SCORE_COLUMNS}


def analyze(
    perf: Performance, rudiment: CompiledRudiment
) -> tuple[dict[str, float], dict[str, np.ndarray], dict[str, float | None]]:
    """Sample stats, measures and exercise scores of one performance in one pass."""
    p = _Primaries(perf)
    return sample_stats(perf, p), measures(perf, p), exercise_scores(perf, rudiment, p)
