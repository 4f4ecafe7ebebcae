"""One simulated performance: the ideal stroke grid of a rudiment, then a player's deviations.

The ideal grid comes straight from the rudiment's data: stroke `at` steps on
its own subdivision (a triplet rudiment lands on triplet positions), one
cycle after another, at the quarter-note tempo. Time 0 is the start of the
performance (MIDI time 0); the first grid position is `LEAD_IN_SEC` later so
grace notes and early strokes have room.

Deviations, all drawn from the sample's own seeded generator:

- tempo drift: the tempo changes linearly by `tempo_drift_pct` over the
  performance (rushing or dragging, sign drawn per performance);
- timing error: `timing_sd_ms` split into a slowly wandering part (share
  `timing_consistency`) and stroke-to-stroke jitter (capped at 30 % of the gap
  to the neighbouring strokes, the rest moves to the slow part), growing with
  `fatigue` towards the end; the weak hand plays `lr_timing_bias_ms` late; a
  diddle's second stroke is displaced by up to (1 - `diddle_evenness`) of the gap;
- velocity: accents reach `accent_differentiation` of the accent/tap gap, an
  accent is missed or a tap accented with probability 1 - `accent_accuracy`,
  the weak hand plays at `lr_velocity_ratio`, a diddle's second stroke is
  weaker by up to 1 - `diddle_evenness`, rolls sag with 1 - `roll_sustain`,
  fatigue softens the end, and `velocity_cv` is the stroke-to-stroke noise;
- flams: one grace note by the other hand `flam_spacing_ms` (about 25-50 ms by
  tier, with per-flam jitter) before the primary, never a fixed 150 ms;
- drags: two grace notes by the other hand at the rudiment's offsets (default
  -2 and -1) times a drag unit of `DRAG_SPACING_RATIO` x the flam spacing, so
  the two graces always have distinct times; grace notes reach back at most
  70 % of the way to the neighbouring stroke (fast tempos tighten them);
- buzz strokes: the primary plus bounces every ~26 ms that fill up to 75 % of
  the gap to the next stroke, decaying faster when `roll_sustain` is low.

Events are kept in their written order with at least `MIN_GAP_SEC` between
consecutive notes, then quantized to the MIDI tick grid, so the label times
are exactly the note times in the MIDI file.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from music_assets.rudiments.library import Rudiment, get_rudiment

LEAD_IN_SEC = 0.25
PPQ = 960
SNARE_PITCH = 38
NOTE_SEC = 0.08
MIN_GAP_SEC = 0.006
MIN_START_SEC = 0.005

VEL_ACCENT = 112
VEL_TAP = 72
VEL_BUZZ = 80
VEL_FLAM_GRACE = 44
VEL_DRAG_GRACE = 40
# The intended (ideal) grace spacing the labels measure against.
REF_FLAM_SPACING_MS = 25.0
DRAG_SPACING_RATIO = 0.8
REF_DRAG_UNIT_MS = REF_FLAM_SPACING_MS * DRAG_SPACING_RATIO
BUZZ_INTERVAL_SEC = 0.026
BUZZ_INTENDED_DECAY = 0.72
MAX_BOUNCES = 5
WANDER_TAU_SEC = 0.5  # correlation time of the slow part of the timing error

# stroke_type codes; the names are the `stroke_type` label values
STROKE_TYPES: tuple[str, ...] = ("tap", "accent", "diddle", "buzz", "flam_grace", "drag_grace", "buzz_bounce")
TAP, ACCENT, DIDDLE, BUZZ, FLAM_GRACE, DRAG_GRACE, BUZZ_BOUNCE = range(len(STROKE_TYPES))
PRIMARY_TYPES = (TAP, ACCENT, DIDDLE, BUZZ)
HAND_NAMES = ("R", "L")


@dataclass(frozen=True)
class CompiledRudiment:
    """One cycle of a rudiment as arrays (primary strokes only), right-hand lead."""

    slug: str
    category: str
    cycle_beats: int
    beats: np.ndarray  # position in the cycle, quarter-note beats
    hand: np.ndarray  # 0 = R, 1 = L
    accent: np.ndarray
    grace_kind: np.ndarray  # 0 none, 1 flam, 2 drag
    grace_offsets: np.ndarray  # (n, 2) offsets in grace units, NaN-padded
    diddle: np.ndarray  # 0, 1, 2
    buzz: np.ndarray
    roll_pos: np.ndarray  # 0..1 position within the roll group (rolls only)
    gap_beats: np.ndarray  # distance to the nearest neighbouring stroke, beats

    @property
    def size(self) -> int:
        return len(self.beats)


def compile_rudiment(r: Rudiment) -> CompiledRudiment:
    spb = r.steps_per_beat
    beats = np.array([s.at / spb for s in r.strokes])
    n = len(beats)
    offsets = np.full((n, 2), np.nan)
    for i, s in enumerate(r.strokes):
        offsets[i, : len(s.grace_offsets)] = s.grace_offsets
    # cyclic neighbour distances: the pattern repeats every cycle
    nxt = np.diff(np.append(beats, beats[0] + r.cycle_beats))
    prv = np.roll(nxt, 1)
    group = r.cycle_beats / 2 if r.alternates else r.cycle_beats
    roll_pos = (beats % group) / group if r.category == "roll" else np.zeros(n)
    return CompiledRudiment(
        slug=r.slug,
        category=r.category,
        cycle_beats=r.cycle_beats,
        beats=beats,
        hand=np.array([0 if s.hand == "R" else 1 for s in r.strokes], dtype=np.int8),
        accent=np.array([s.accent for s in r.strokes]),
        grace_kind=np.array([{None: 0, "flam": 1, "drag": 2}[s.grace] for s in r.strokes], dtype=np.int8),
        grace_offsets=offsets,
        diddle=np.array([s.diddle for s in r.strokes], dtype=np.int8),
        buzz=np.array([s.buzz for s in r.strokes]),
        roll_pos=roll_pos,
        gap_beats=np.minimum(nxt, prv),
    )


@functools.cache
def compiled(slug: str) -> CompiledRudiment:
    return compile_rudiment(get_rudiment(slug))


@dataclass
class Performance:
    """Every note of one performance in time order (index = position in this order)."""

    tempo_bpm: float
    tempo_us: int  # MIDI tempo (microseconds per quarter note)
    num_cycles: int
    hand: np.ndarray  # 0 = R, 1 = L
    stroke_type: np.ndarray  # codes into STROKE_TYPES
    intended_s: np.ndarray
    actual_s: np.ndarray  # = MIDI note-on times
    on_tick: np.ndarray
    off_tick: np.ndarray
    intended_vel: np.ndarray
    actual_vel: np.ndarray
    is_accent: np.ndarray
    diddle: np.ndarray
    flam_spacing_ms: np.ndarray  # NaN except on flam primaries and their grace notes
    parent: np.ndarray  # index of the primary for grace notes and bounces, else -1
    measure: np.ndarray  # cycle index
    position: np.ndarray  # stroke index within the cycle for primaries, else -1
    weak_hand: np.ndarray  # played by the player's weak hand

    @property
    def num_strokes(self) -> int:
        return len(self.actual_s)

    @property
    def tick_sec(self) -> float:
        return self.tempo_us / 1e6 / PPQ

    @property
    def duration_sec(self) -> float:
        """The last note-off, as pretty_midi's get_end_time()."""
        return float(self.off_tick.max() * self.tick_sec)

    @property
    def is_grace(self) -> np.ndarray:
        return (self.stroke_type == FLAM_GRACE) | (self.stroke_type == DRAG_GRACE)

    @property
    def is_primary(self) -> np.ndarray:
        return np.isin(self.stroke_type, PRIMARY_TYPES)


def _wander(times: np.ndarray, tau: float, z: np.ndarray) -> np.ndarray:
    """A unit-variance Ornstein-Uhlenbeck path sampled at `times` (seconds), driven by normals `z`.

    Consecutive strokes correlate by exp(-gap / tau), so the slow part of the
    timing error wanders over time, not over stroke counts (dense and sparse
    rudiments drift alike).
    """
    phi = np.exp(-np.diff(times) / tau).tolist()
    out = [float(z[0])]
    for p, zi in zip(phi, z[1:].tolist(), strict=True):
        out.append(p * out[-1] + (1.0 - p * p) ** 0.5 * zi)
    return np.array(out)


@dataclass
class _Primaries:
    """The primary strokes of a performance as they are being played (arrays of one value per stroke)."""

    n: int
    cyc: np.ndarray  # the cycle of each stroke
    beats: np.ndarray
    frac: np.ndarray  # how far into the performance (0-1)
    hand: np.ndarray
    weak: np.ndarray
    accent: np.ndarray
    diddle: np.ndarray
    buzz: np.ndarray
    gap_s: np.ndarray
    intended: np.ndarray | None = None
    actual: np.ndarray | None = None
    intended_vel: np.ndarray | None = None
    actual_vel: np.ndarray | None = None


def perform(
    rudiment: CompiledRudiment,
    traits: Mapping[str, float],
    tempo_bpm: float,
    num_cycles: int,
    left_handed: bool,
    rng: np.random.Generator,
) -> Performance:
    """Play `num_cycles` cycles of `rudiment` at `tempo_bpm` the way the player with `traits` would.

    The stages draw from `rng` in a fixed order (timing, velocity, grace notes, bounces): the
    same seed gives the same performance.
    """
    c = rudiment
    reps = int(num_cycles)
    if reps < 1:
        raise ValueError(f"num_cycles must be >= 1, got {num_cycles}")
    spb = 60.0 / float(tempo_bpm)
    cyc = np.repeat(np.arange(reps), c.size)
    beats = np.tile(c.beats, reps) + cyc * c.cycle_beats
    pattern_hand = np.tile(c.hand, reps)
    p = _Primaries(
        n=c.size * reps,
        cyc=cyc,
        beats=beats,
        frac=beats / (reps * c.cycle_beats),
        hand=pattern_hand ^ 1 if left_handed else pattern_hand,
        weak=pattern_hand == 1,  # the lead (written right) hand is the dominant one, mirrored for left-handers
        accent=np.tile(c.accent, reps),
        diddle=np.tile(c.diddle, reps),
        buzz=np.tile(c.buzz, reps),
        gap_s=np.tile(c.gap_beats, reps) * spb,
    )
    _time_primaries(p, traits, spb, rng)
    _voice_primaries(p, c, reps, traits, rng)
    strokes = _Strokes(p, c, reps)
    _add_graces(strokes, p, c, reps, traits, rng)
    _add_bounces(strokes, p, traits, rng)
    return _written(strokes, tempo_bpm, reps)


def _time_primaries(p: _Primaries, traits: Mapping[str, float], spb: float, rng: np.random.Generator) -> None:
    """The intended and actual times of the primary strokes: drift, wander, jitter, fatigue, diddles, hand bias."""
    n, beats, frac, gap_s = p.n, p.beats, p.frac, p.gap_s
    intended = LEAD_IN_SEC + beats * spb
    drift = traits["tempo_drift_pct"] / 100.0 * rng.choice((-1.0, 1.0)) * rng.uniform(0.6, 1.4)
    drift_shift = -drift * beats * spb * frac / 2.0  # integral of a linearly changing tempo
    sigma = traits["timing_sd_ms"] / 1000.0
    cons = traits["timing_consistency"]
    jitter_sd = np.minimum(sigma * np.sqrt(1.0 - cons), 0.3 * gap_s)
    wander_sd = np.sqrt(np.maximum(sigma * sigma - jitter_sd * jitter_sd, 0.0))
    err = wander_sd * _wander(intended, WANDER_TAU_SEC, rng.standard_normal(n)) + jitter_sd * rng.standard_normal(n)
    err *= 1.0 + 0.5 * traits["fatigue"] * frac
    evenness = traits["diddle_evenness"]
    second = p.diddle == 2
    err[second] += (1.0 - evenness) * gap_s[second] * 0.5 * rng.standard_normal(int(second.sum()))
    err[p.weak] += traits["lr_timing_bias_ms"] / 1000.0
    p.intended, p.actual = intended, intended + drift_shift + err


def _voice_primaries(
    p: _Primaries, c: CompiledRudiment, reps: int, traits: Mapping[str, float], rng: np.random.Generator
) -> None:
    """The intended and actual velocities of the primary strokes: accents, diddles, rolls, fatigue, spread."""
    n, accent, second = p.n, p.accent, p.diddle == 2
    evenness = traits["diddle_evenness"]
    intended_vel = np.where(accent, VEL_ACCENT, np.where(p.buzz, VEL_BUZZ, VEL_TAP)).astype(float)
    gap = (VEL_ACCENT - VEL_TAP) * traits["accent_differentiation"]
    miss = 1.0 - traits["accent_accuracy"]
    u = rng.random(n)
    level = intended_vel.copy()
    level[accent] = VEL_TAP + gap
    level[accent & (u < miss)] = VEL_TAP
    level[~accent & (u < miss / 2)] += 0.6 * gap
    level[p.weak] *= traits["lr_velocity_ratio"]
    level[second] *= np.clip(1.0 - (1.0 - evenness) * (1.0 + 0.5 * rng.standard_normal(int(second.sum()))), 0.4, 1.15)
    level *= 1.0 - 0.5 * (1.0 - traits["roll_sustain"]) * np.tile(c.roll_pos, reps)
    level *= 1.0 - 0.12 * traits["fatigue"] * p.frac
    p.intended_vel, p.actual_vel = intended_vel, level * (1.0 + traits["velocity_cv"] * rng.standard_normal(n))


class _Strokes:
    """Every stroke of a performance, column by column: the primaries, then each group of children."""

    def __init__(self, p: _Primaries, c: CompiledRudiment, reps: int):
        accent, diddle, n = p.accent, p.diddle, p.n
        stype = np.where(accent, ACCENT, np.where(diddle > 0, DIDDLE, np.where(p.buzz, BUZZ, TAP))).astype(np.int8)
        self._cyc = p.cyc
        self.parts: dict[str, list[np.ndarray]] = {
            "hand": [p.hand],
            "stype": [stype],
            "intended": [p.intended],
            "actual": [p.actual],
            "ivel": [p.intended_vel],
            "avel": [p.actual_vel],
            "accent": [accent],
            "diddle": [diddle],
            "parent": [np.full(n, -1)],
            "measure": [p.cyc],
            "position": [np.tile(np.arange(c.size), reps)],
            "weak": [p.weak],
        }

    def add_children(
        self,
        parent: np.ndarray,
        code: int,
        hand_: np.ndarray,
        intended_: np.ndarray,
        actual_: np.ndarray,
        ivel: np.ndarray,
        avel: np.ndarray,
        weak_: np.ndarray,
    ) -> None:
        """Grace notes and bounces: unaccented, outside diddles, attached to their primary."""
        k = len(parent)
        for key, value in (
            ("hand", hand_),
            ("stype", np.full(k, code, dtype=np.int8)),
            ("intended", intended_),
            ("actual", actual_),
            ("ivel", ivel),
            ("avel", avel),
            ("accent", np.zeros(k, dtype=bool)),
            ("diddle", np.zeros(k, dtype=np.int8)),
            ("parent", parent),
            ("measure", self._cyc[parent]),
            ("position", np.full(k, -1)),
            ("weak", weak_),
        ):
            self.parts[key].append(value)


def _add_graces(
    strokes: _Strokes,
    p: _Primaries,
    c: CompiledRudiment,
    reps: int,
    traits: Mapping[str, float],
    rng: np.random.Generator,
) -> None:
    """Grace notes (flams: one, drags: two) by the other hand, at most 70 % of the way back to the
    neighbouring stroke."""
    hand, weak, gap_s, intended, actual = p.hand, p.weak, p.gap_s, p.intended, p.actual
    cv = traits["velocity_cv"]
    kind = np.tile(c.grace_kind, reps)
    offsets = np.tile(c.grace_offsets, (reps, 1))
    spacing_jitter = 0.02 + traits["timing_sd_ms"] / 300.0
    grace_loudness = 1.0 + 0.4 * (1.0 - traits["accent_differentiation"])
    for code, ratio, ref_unit_ms, stype_code, vel in (
        (1, 1.0, REF_FLAM_SPACING_MS, FLAM_GRACE, VEL_FLAM_GRACE),
        (2, DRAG_SPACING_RATIO, REF_DRAG_UNIT_MS, DRAG_GRACE, VEL_DRAG_GRACE),
    ):
        idx = np.flatnonzero(kind == code)
        if idx.size == 0:
            continue
        unit = (
            traits["flam_spacing_ms"]
            * ratio
            / 1000.0
            * np.clip(1.0 + spacing_jitter * rng.standard_normal(idx.size), 0.4, 2.0)
        )
        unit = np.minimum(unit, 0.7 * gap_s[idx] / np.nanmax(-offsets[idx], axis=1))
        for j in range(offsets.shape[1]):
            have = ~np.isnan(offsets[idx, j])
            pi, off, k = idx[have], offsets[idx[have], j], int(have.sum())
            if k == 0:
                continue
            shift = off * unit[have] * np.clip(1.0 + 0.1 * rng.standard_normal(k), 0.7, 1.3)
            g_vel = vel * np.where(weak[pi], 1.0, traits["lr_velocity_ratio"]) * grace_loudness  # the other hand
            strokes.add_children(
                pi,
                stype_code,
                hand[pi] ^ 1,
                intended[pi] + off * ref_unit_ms / 1000.0,
                actual[pi] + shift,
                np.full(k, float(vel)),
                g_vel * (1.0 + 1.5 * cv * rng.standard_normal(k)),
                ~weak[pi],
            )


def _add_bounces(strokes: _Strokes, p: _Primaries, traits: Mapping[str, float], rng: np.random.Generator) -> None:
    """Buzz bounces after each buzz primary."""
    bi = np.flatnonzero(p.buzz)
    if not bi.size:
        return
    nb = np.clip(np.floor(0.75 * p.gap_s[bi] / BUZZ_INTERVAL_SEC), 1, MAX_BOUNCES).astype(int)
    step = BUZZ_INTERVAL_SEC * np.clip(1.0 + 0.1 * rng.standard_normal(bi.size), 0.7, 1.3)
    pi = np.repeat(bi, nb)
    k = np.concatenate([np.arange(1, m + 1) for m in nb])
    decay = 0.55 + 0.3 * traits["roll_sustain"]
    strokes.add_children(
        pi,
        BUZZ_BOUNCE,
        p.hand[pi],
        p.intended[pi] + k * BUZZ_INTERVAL_SEC,
        p.actual[pi] + k * np.repeat(step, nb),
        p.intended_vel[pi] * BUZZ_INTENDED_DECAY**k,
        p.actual_vel[pi] * decay**k * (1.0 + traits["velocity_cv"] * rng.standard_normal(len(pi))),
        p.weak[pi],
    )


def _written(strokes: _Strokes, tempo_bpm: float, reps: int) -> Performance:
    """The strokes in written order, kept apart by a minimum gap and snapped to MIDI ticks."""
    cat = {k: np.concatenate(v) for k, v in strokes.parts.items()}
    # written order (intended time; a primary's graces sort before it, bounces after)
    order = np.lexsort((np.arange(len(cat["intended"])), cat["intended"]))
    cat = {k: v[order] for k, v in cat.items()}
    new_index = np.empty_like(order)
    new_index[order] = np.arange(len(order))
    has_parent = cat["parent"] >= 0
    cat["parent"] = np.where(has_parent, new_index[np.maximum(cat["parent"], 0)], -1)

    # keep the written order with a minimum gap, then snap to MIDI ticks
    tempo_us = int(round(60_000_000 / float(tempo_bpm)))
    tick_sec = tempo_us / 1e6 / PPQ
    k = np.arange(len(order)) * MIN_GAP_SEC
    t = np.maximum.accumulate(np.maximum(cat["actual"] - k, MIN_START_SEC)) + k
    on_tick = np.round(t / tick_sec).astype(np.int64)
    nxt = np.append(on_tick[1:], np.iinfo(np.int64).max)
    off_tick = on_tick + np.maximum(1, np.minimum(int(round(NOTE_SEC / tick_sec)), nxt - on_tick - 1))
    actual_s = on_tick * tick_sec

    flam_spacing = np.full(len(order), np.nan)
    fg = np.flatnonzero(cat["stype"] == FLAM_GRACE)
    if fg.size:
        sp = (actual_s[cat["parent"][fg]] - actual_s[fg]) * 1000.0
        flam_spacing[fg] = sp
        flam_spacing[cat["parent"][fg]] = sp
    return Performance(
        tempo_bpm=float(tempo_bpm),
        tempo_us=tempo_us,
        num_cycles=reps,
        hand=cat["hand"].astype(np.int8),
        stroke_type=cat["stype"].astype(np.int8),
        intended_s=cat["intended"],
        actual_s=actual_s,
        on_tick=on_tick,
        off_tick=off_tick,
        intended_vel=np.round(cat["ivel"]).astype(np.int16),
        actual_vel=np.clip(np.round(cat["avel"]), 1, 127).astype(np.int16),
        is_accent=cat["accent"],
        diddle=cat["diddle"].astype(np.int8),
        flam_spacing_ms=flam_spacing,
        parent=cat["parent"].astype(np.int32),
        measure=cat["measure"].astype(np.int32),
        position=cat["position"].astype(np.int32),
        weak_hand=cat["weak"],
    )
