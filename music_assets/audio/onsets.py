"""Onset detection in dry renders and its alignment with labelled stroke times.

The rudiment labels say when every stroke was played (`actual_time_ms`); the
audio must put each stroke there (audio time 0 = MIDI time 0). This module
measures that on the dry render, before augmentation smears the attacks.

Detection works on a fine energy envelope (RMS over 64 frames every 16
frames, 0.36 ms at 44.1 kHz). Around every labelled stroke it looks, within a
window no wider than half the distance to the neighbouring notes (so it never
reaches a neighbour's attack), for the strongest rise relative to what was
already sounding, then backtracks to where the energy the new sound adds was
still below a tenth of what it adds at the rise. That point of the attack
does not move with the velocity, with what is still ringing, or with samples
that swell twice (FluidR3's soft snares do).

A drum sample does not start at full level on its note-on frame: soundfonts
have a short attack delay, and FluidSynth applies events on 64-frame block
boundaries. `calibrate_latency` measures the delay per soundfont, pitch and
velocity from single strokes rendered at known, block-aligned times with the
same detector, so the error that remains is the labels' own misalignment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

HOP = 16  # envelope resolution in frames (0.36 ms at 44.1 kHz)
WIN = 64  # RMS window in frames: long enough to smooth a snare's noisy decay, short for its attack
RISE_MS = 3.0  # a rise is measured against the envelope minimum over this span
MAX_WINDOW_MS = 25.0  # largest search half-window around a labelled stroke
MIN_WINDOW_MS = 4.0
BACKTRACK_MS = 15.0  # how far before its strongest rise an attack may start
NO_ONSET_FLOOR = 1e-3  # a rise below this fraction of the loudest envelope point is no onset
LEVEL_REF = 0.1  # rises are ranked relative to the level before them plus this share of the window's loudest
ONSET_ENERGY_FRACTION = 0.1  # the attack starts when the added energy first reaches this share
CALIBRATION_VELOCITIES = (16, 40, 64, 88, 112, 127)


def envelope(audio: np.ndarray, hop: int = HOP) -> np.ndarray:
    """RMS of the channel mean over the `WIN` frames ending at every `hop`-th frame.

    `audio` is (frames,) or (frames, channels).
    """
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 2:
        mono = x[:, 0].copy()
        for c in range(1, x.shape[1]):
            mono += x[:, c]
        mono *= np.float32(1.0 / x.shape[1])
    else:
        mono = x
    n = len(mono) // hop
    if n == 0:
        return np.zeros(0)
    blocks = mono[: n * hop].reshape(n, hop)
    energy = np.einsum("ij,ij->i", blocks, blocks).astype(np.float64)
    per = max(1, WIN // hop)
    csum = np.concatenate([[0.0], np.cumsum(energy)])
    ends = np.arange(1, n + 1)
    starts = np.maximum(ends - per, 0)
    return np.sqrt(np.maximum(csum[ends] - csum[starts], 0.0) / ((ends - starts) * hop))


def search_windows(times_ms: Sequence[float], neighbours_ms: Sequence[float] | None = None) -> np.ndarray:
    """Half-window (ms) per stroke: half the gap to the nearest other note, clamped.

    `neighbours_ms` are all note times (grace notes included; the strokes
    themselves may be among them); default: the strokes alone.
    """
    times_ms = np.asarray(times_ms, dtype=np.float64)
    ref = np.sort(np.asarray(times_ms if neighbours_ms is None else neighbours_ms, dtype=np.float64))
    idx = np.searchsorted(ref, times_ms)
    gaps = np.full(len(times_ms), np.inf)
    for shift in (-1, 0, 1):
        j = np.clip(idx + shift, 0, max(len(ref) - 1, 0))
        if len(ref):
            d = np.abs(ref[j] - times_ms)
            # a stroke is its own neighbour when it is in the reference list: skip zero distances
            d = np.where(d < 1e-6, np.inf, d)
            gaps = np.minimum(gaps, d)
    return np.clip(gaps / 2.0, MIN_WINDOW_MS, MAX_WINDOW_MS)


def detect_onsets_near(
    audio: np.ndarray,
    sample_rate: int,
    expected_ms: Sequence[float],
    half_windows_ms: Sequence[float] | float = MAX_WINDOW_MS,
    *,
    env: np.ndarray | None = None,
) -> np.ndarray:
    """Detected onset (ms) of the sound expected at each time; NaN where there is none.

    Each search covers the expected time +- its half-window (see `search_windows`).
    """
    times = np.asarray(expected_ms, dtype=np.float64)
    if len(times) == 0:
        return np.zeros(0)
    env = envelope(audio) if env is None else env
    if len(env) == 0:
        return np.full(len(times), np.nan)
    ms_per_block = HOP * 1000.0 / sample_rate
    half = np.broadcast_to(np.asarray(half_windows_ms, dtype=np.float64), times.shape)
    span = max(1, int(round(RISE_MS / ms_per_block)))
    # rise[n]: how far the envelope climbed at n above its minimum over the preceding span
    n = len(env)
    padded = np.concatenate([np.full(span, env[0]), env])
    # a running minimum as `span` shifted element-wise minima: several times faster than
    # reducing the short rows of a sliding-window view
    floor_before = padded[:n].copy()
    for j in range(1, span):
        np.minimum(floor_before, padded[j : j + n], out=floor_before)
    rise = env - floor_before
    no_onset = NO_ONSET_FLOOR * float(env.max())
    lo = np.clip(np.floor((times - half) / ms_per_block).astype(np.int64), 0, n)
    hi = np.clip(np.ceil((times + half) / ms_per_block).astype(np.int64) + 1, 0, n)
    width = int(max(1, (hi - lo).max()))
    # one row per stroke: the envelope indices of its window (padded rows are masked)
    idx = lo[:, None] + np.arange(width)[None, :]
    inside = idx < hi[:, None]
    idx = np.minimum(idx, n - 1)
    # the strongest rise relative to what was already sounding: a soft stroke over a loud
    # decay outranks the ripple of that decay (the window's loudest level bounds the
    # denominator from below, so near-silence is no advantage)
    loudest = np.where(inside, env[idx], 0.0).max(axis=1)[:, None]
    score = rise[idx] / (floor_before[idx] + LEVEL_REF * loudest + 1e-30)
    peak = np.minimum(lo + np.argmax(np.where(inside, score, -np.inf), axis=1), n - 1)
    found = (hi - lo >= 2) & (rise[peak] > no_onset)
    # backtrack to where the energy the new sound adds over the floor was last below
    # ONSET_ENERGY_FRACTION of what it adds at the rise: the same point of the attack
    # whether the stroke starts from silence or over another stroke's decay, and
    # even when a sample swells twice
    seg = env[idx]
    pos = np.arange(width)[None, :]
    rel_peak = (peak - lo)[:, None]
    back = max(1, int(round(BACKTRACK_MS / ms_per_block)))
    before = inside & (pos <= rel_peak) & (pos >= rel_peak - back)
    reached = env[peak]
    floor = np.maximum(np.where(before, seg, np.inf).min(axis=1), reached * 1e-6)
    added = ONSET_ENERGY_FRACTION * np.maximum(reached**2 - floor**2, 0.0)
    below = before & (seg < np.sqrt(floor**2 + added)[:, None])
    last_below = width - 1 - np.argmax(below[:, ::-1], axis=1)
    start = np.where(below.any(axis=1), lo + last_below + 1, lo)
    return np.where(found, start * ms_per_block, np.nan)


@dataclass(frozen=True)
class LatencyCurve:
    """Onset latency (ms) of one soundfont and pitch, by MIDI velocity."""

    velocities: tuple[int, ...]
    latency_ms: tuple[float, ...]

    def __call__(self, velocity: np.ndarray | Sequence[float] | float) -> np.ndarray:
        return np.interp(np.asarray(velocity, dtype=np.float64), self.velocities, self.latency_ms)


def calibrate_latency(renderer, pitch: int = 38, velocities: Sequence[int] = CALIBRATION_VELOCITIES) -> LatencyCurve:
    """Measure the detector's latency on single strokes rendered at a block-aligned time."""
    from music_assets.audio.synthesis import BLOCK, NoteEvent  # noqa: PLC0415

    sr = renderer.sample_rate
    at = 16 * BLOCK / sr  # block-aligned, so FluidSynth's event quantization adds nothing
    lat = []
    for v in velocities:
        audio = renderer.render([NoteEvent(at, pitch, int(v), 0.1)], total_seconds=at + 0.3)
        onset = detect_onsets_near(audio, sr, [at * 1000.0])[0]
        # a pitch the soundfont does not sound has no latency to correct; its renders
        # are silent and fail the silence and alignment gates on their own
        lat.append(float(onset - at * 1000.0) if np.isfinite(onset) else 0.0)
    return LatencyCurve(tuple(int(v) for v in velocities), tuple(lat))


def alignment_errors_ms(
    audio: np.ndarray,
    sample_rate: int,
    times_ms: Sequence[float],
    velocities: Sequence[float],
    latency: LatencyCurve,
    neighbours_ms: Sequence[float] | None = None,
) -> np.ndarray:
    """|detected onset - expected onset| per stroke, where the expected onset is the labelled
    time plus the soundfont's latency; a stroke with no onset counts as `MAX_WINDOW_MS`."""
    times = np.asarray(times_ms, dtype=np.float64)
    expected = times + latency(velocities) if len(times) else times
    detected = detect_onsets_near(audio, sample_rate, expected, search_windows(times, neighbours_ms))
    err = np.abs(detected - expected)
    return np.where(np.isfinite(err), np.minimum(err, MAX_WINDOW_MS), MAX_WINDOW_MS)


def median_alignment_error_ms(
    audio: np.ndarray,
    sample_rate: int,
    times_ms: Sequence[float],
    velocities: Sequence[float],
    latency: LatencyCurve,
    neighbours_ms: Sequence[float] | None = None,
) -> float:
    """Median |error| (ms) between labelled stroke times and onsets detected in `audio`; NaN without strokes."""
    err = alignment_errors_ms(audio, sample_rate, times_ms, velocities, latency, neighbours_ms)
    return float(np.median(err)) if len(err) else float("nan")
