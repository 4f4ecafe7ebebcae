"""A rudiment's written score, as the models read it: what to play, never how.

The models are score-conditioned: a performance is the rudiment's written
strokes (the *score*) plus, per stroke, a timing offset and a velocity (the
*performance*). The score comes from the rudiment library, captured as one
`ScoreTemplate` per rudiment (a JSON-able record, stored with the corpus and in
every exported `model.json`, so a runner needs nothing else), and expanded
for a tempo and a length (`expand`) into events in token order:

- each primary stroke of the repeated cycle whose position is before the
  requested length, with its grid move (steps on the rudiment's own grid since
  the previous primary) and its kind: hand (as written: R is the lead hand,
  which a left-handed player plays with the left), accent, diddle (first or
  second stroke of a double) and buzz;
- after each primary, its children: a flam's grace note, a drag's two grace
  notes, a buzz stroke's bounces. How many bounces a buzz stroke gets follows
  the tempo exactly as the dataset plays it (`bounce_count`): they fill 75 % of
  the gap to the neighbouring stroke at one every 26 ms, one to five.

A primary's intended time is `LEAD_IN_SEC` + its grid position at the tempo;
its timing offset is measured from there. A child's offset is measured from
its primary's played onset (a flam's grace note 25-50 ms before it, a bounce
26 ms after the previous one), so the offset of a grace note *is* the flam's
spacing. Numpy only (no torch): the ONNX runner uses it too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from music_assets.rudiments.library import GRACE_KINDS, HANDS
from music_assets.rudiments.performance import BUZZ_INTERVAL_SEC, LEAD_IN_SEC, MAX_BOUNCES

# The expansion must produce the events a real performance of the dataset has, stroke for stroke:
# the constants are the dataset's own (`rudiments.performance.perform`).
BUZZ_FILL = 0.75  # bounces fill this share of the gap to the neighbouring stroke
GRACE_COUNTS: dict[str, int] = {kind: len(offsets) for kind, offsets in GRACE_KINDS.items()}


class ScoreError(ValueError):
    pass


@dataclass(frozen=True)
class StrokeSpec:
    """One primary stroke of a cycle (see `music_assets.rudiments.library.Stroke`)."""

    at: int  # grid step in the cycle
    hand: str  # as written: R = lead hand
    accent: bool = False
    grace: str | None = None  # flam | drag
    diddle: int = 0
    buzz: bool = False
    gap_beats: float = 1.0  # distance to the nearest neighbouring stroke (cyclic), quarter-note beats


@dataclass(frozen=True)
class ScoreTemplate:
    """One cycle of a rudiment's written strokes."""

    slug: str
    steps_per_beat: int
    cycle_beats: int
    strokes: tuple[StrokeSpec, ...]

    @property
    def cycle_steps(self) -> int:
        return self.steps_per_beat * self.cycle_beats

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "strokes": [asdict(s) for s in self.strokes]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScoreTemplate:
        try:
            strokes = tuple(StrokeSpec(**s) for s in d["strokes"])
            t = cls(str(d["slug"]), int(d["steps_per_beat"]), int(d["cycle_beats"]), strokes)
        except (KeyError, TypeError, ValueError) as exc:
            raise ScoreError(f"score template {d.get('slug', '?')!r}: malformed ({exc})") from exc
        t.validate()
        return t

    def validate(self) -> None:
        if self.steps_per_beat < 1 or self.cycle_beats < 1 or not self.strokes:
            raise ScoreError(f"score template {self.slug!r}: needs a grid, a cycle and strokes")
        ats = [s.at for s in self.strokes]
        if ats != sorted(set(ats)) or ats[0] < 0 or ats[-1] >= self.cycle_steps:
            raise ScoreError(
                f"score template {self.slug!r}: strokes must sit on distinct, increasing steps of the cycle"
            )
        for s in self.strokes:
            if (
                s.hand not in HANDS
                or (s.grace is not None and s.grace not in GRACE_COUNTS)
                or s.diddle not in (0, 1, 2)
            ):
                raise ScoreError(f"score template {self.slug!r}: bad stroke {s}")


def template_of(rudiment: Any) -> ScoreTemplate:
    """The template of a `music_assets.rudiments.library.Rudiment` (gaps as the dataset computes them)."""
    from music_assets.rudiments.performance import compile_rudiment  # noqa: PLC0415

    gaps = compile_rudiment(rudiment).gap_beats
    return ScoreTemplate(
        slug=rudiment.slug,
        steps_per_beat=int(rudiment.steps_per_beat),
        cycle_beats=int(rudiment.cycle_beats),
        strokes=tuple(
            StrokeSpec(
                at=int(s.at),
                hand=s.hand,
                accent=bool(s.accent),
                grace=s.grace,
                diddle=int(s.diddle),
                buzz=bool(s.buzz),
                gap_beats=float(g),
            )
            for s, g in zip(rudiment.strokes, gaps, strict=True)
        ),
    )


def library_templates() -> dict[str, ScoreTemplate]:
    """Every rudiment of the library, by slug."""
    from music_assets.rudiments.constants import RUDIMENT_SLUGS  # noqa: PLC0415
    from music_assets.rudiments.library import get_rudiment  # noqa: PLC0415

    return {slug: template_of(get_rudiment(slug)) for slug in RUDIMENT_SLUGS}


def primary_kind(hand: str, accent: bool, diddle: int, buzz: bool) -> str:
    """The stroke token name of a primary: `R`, `L_ACCENT`, `R_DIDDLE2`, `L_ACCENT_BUZZ`..."""
    parts = [hand]
    if accent:
        parts.append("ACCENT")
    if diddle:
        parts.append(f"DIDDLE{diddle}")
    if buzz:
        parts.append("BUZZ")
    return "_".join(parts)


def stroke_kinds() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(primary kinds, child kinds): every stroke token name, in vocabulary order."""
    primaries = tuple(
        primary_kind(h, a, d, b)
        for h in HANDS
        for a in (False, True)
        for d, b in ((0, False), (1, False), (2, False), (0, True))
    )
    children = tuple(f"{g.upper()}_GRACE{j + 1}" for g, n in GRACE_COUNTS.items() for j in range(n))
    children += tuple(f"BOUNCE{k}" for k in range(1, MAX_BOUNCES + 1))
    return primaries, children


def bounce_count(gap_beats: float, tempo_bpm: float) -> int:
    """Bounces after a buzz stroke, as the dataset plays them (`rudiments.performance.perform`)."""
    gap_s = gap_beats * (60.0 / float(tempo_bpm))
    return int(min(MAX_BOUNCES, max(1, math.floor(BUZZ_FILL * gap_s / BUZZ_INTERVAL_SEC))))


@dataclass(frozen=True)
class ScoreEvent:
    grid_steps: int  # primaries: steps since the previous primary's grid point (the first: since step 0); children: 0
    kind: str  # stroke token name (without the STROKE_ prefix)
    parent: int  # children: index of their primary in the event list; primaries: -1
    step: int  # the grid point (steps from the start) of the primary, or of the child's primary


def expand(template: ScoreTemplate, tempo_bpm: float, beats: float) -> list[ScoreEvent]:
    """The events of `beats` quarter-note beats of the rudiment at `tempo_bpm`, in token order."""
    if beats <= 0 or tempo_bpm <= 0:
        raise ScoreError(f"{template.slug}: need a positive length and tempo (got {beats} beats at {tempo_bpm} BPM)")
    events: list[ScoreEvent] = []
    limit = beats * template.steps_per_beat  # primaries strictly before it
    prev_step = 0
    cycle = 0
    while True:
        for s in template.strokes:
            step = cycle * template.cycle_steps + s.at
            if step >= limit - 1e-9:
                return events
            parent = len(events)
            events.append(ScoreEvent(step - prev_step, primary_kind(s.hand, s.accent, s.diddle, s.buzz), -1, step))
            prev_step = step
            if s.grace is not None:
                events += [
                    ScoreEvent(0, f"{s.grace.upper()}_GRACE{j + 1}", parent, step) for j in range(GRACE_COUNTS[s.grace])
                ]
            if s.buzz:
                events += [
                    ScoreEvent(0, f"BOUNCE{k}", parent, step)
                    for k in range(1, bounce_count(s.gap_beats, tempo_bpm) + 1)
                ]
        cycle += 1


def cycles_for(template: ScoreTemplate, beats: float) -> int:
    """Whole cycles that cover `beats` (at least one)."""
    return max(1, math.ceil(beats / template.cycle_beats - 1e-9))


def intended_seconds(step: int, steps_per_beat: int, tempo_bpm: float) -> float:
    """The intended time of grid point `step` (lead-in included)."""
    return LEAD_IN_SEC + step / steps_per_beat * (60.0 / float(tempo_bpm))
