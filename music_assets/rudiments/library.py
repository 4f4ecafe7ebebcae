"""The 40 PAS rudiments as data: one YAML file per rudiment under `data/`, validated on load.

A file describes one *cycle* of the rudiment on its true rhythmic grid:

```yaml
slug: flam_accent
name: Flam Accent
pas_number: 21
category: flam              # roll | diddle | flam | drag (the PAS families)
subdivision: eighth_triplet # the grid the strokes sit on (steps per quarter-note beat)
cycle_beats: 2              # quarter-note beats per cycle
tempo_bpm: [60, 200]        # quarter-note tempo range the rudiment is practised at
alternates: true            # the cycle's second half mirrors the first (lead alternates)
sticking: ">lR L R >rL R L" # PAS-style sticking, checked against `strokes`
strokes:                    # one mapping per primary stroke
  - {at: 0, hand: R, accent: true, grace: flam}
  - {at: 1, hand: L}
  ...
```

Stroke fields: `at` (grid step in the cycle, an integer: a triplet rudiment is
written on a triplet grid, so its strokes can never be spread as sixteenths),
`hand` (R or L), `accent`, `grace` (`flam`: one grace note by the other hand;
`drag`: two grace notes by the other hand), `grace_offsets` (the grace notes'
positions before the primary, in units of the player's grace spacing; default
[-1] for a flam and [-2, -1] for a drag, so the two drag graces never share a
time), `diddle` (1 or 2: first or second stroke of a double) and `buzz` (a
multiple-bounce stroke).

In the sticking string each token is one primary stroke: `>` marks an accent,
lowercase letters before the hand are its grace notes and a trailing `z` a
buzz. Any error names the file and the field.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

from music_assets.rudiments.constants import RUDIMENT_SLUGS

DATA_DIR = Path(__file__).with_name("data")

CATEGORIES: tuple[str, ...] = ("roll", "diddle", "flam", "drag")
# Grid steps per quarter-note beat.
SUBDIVISIONS: dict[str, int] = {
    "quarter": 1,
    "eighth": 2,
    "eighth_triplet": 3,
    "sixteenth": 4,
    "sixteenth_triplet": 6,
    "thirty_second": 8,
}
TRIPLET_SUBDIVISIONS = frozenset({"eighth_triplet", "sixteenth_triplet"})
GRACE_KINDS: dict[str, tuple[float, ...]] = {"flam": (-1.0,), "drag": (-2.0, -1.0)}
HANDS = ("R", "L")

_TOP_FIELDS = {
    "slug",
    "name",
    "pas_number",
    "category",
    "subdivision",
    "cycle_beats",
    "tempo_bpm",
    "alternates",
    "sticking",
    "strokes",
    "description",
}
_STROKE_FIELDS = {"at", "hand", "accent", "grace", "grace_offsets", "diddle", "buzz"}
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available
_TOKEN = re.compile(r"^(>?)([lr]{0,2})([RL])(z?)$")


class RudimentDataError(ValueError):
    """A rudiment data file is malformed; the message names the file and the field."""

    def __init__(self, path: Path | str, field: str, reason: str):
        self.path = Path(path)
        self.field = field
        super().__init__(f"{self.path}: field '{field}': {reason}")


@dataclass(frozen=True)
class Stroke:
    """One primary stroke of a cycle, with its grace notes."""

    at: int
    hand: str
    accent: bool = False
    grace: str | None = None
    grace_offsets: tuple[float, ...] = ()
    diddle: int = 0
    buzz: bool = False

    @property
    def grace_hand(self) -> str:
        return "L" if self.hand == "R" else "R"


@dataclass(frozen=True)
class Rudiment:
    slug: str
    name: str
    pas_number: int
    category: str
    subdivision: str
    cycle_beats: int
    tempo_min_bpm: float
    tempo_max_bpm: float
    alternates: bool
    sticking: str
    strokes: tuple[Stroke, ...]
    source: Path
    description: str = ""

    @property
    def steps_per_beat(self) -> int:
        return SUBDIVISIONS[self.subdivision]

    @property
    def cycle_steps(self) -> int:
        return self.cycle_beats * self.steps_per_beat

    @property
    def is_triplet(self) -> bool:
        return self.subdivision in TRIPLET_SUBDIVISIONS

    def beat_positions(self) -> list[Fraction]:
        """Each primary stroke's position in the cycle, in quarter-note beats (exact)."""
        return [Fraction(s.at, self.steps_per_beat) for s in self.strokes]

    def contains_tempo(self, bpm: float) -> bool:
        return self.tempo_min_bpm <= bpm <= self.tempo_max_bpm

    @property
    def has_flams(self) -> bool:
        return any(s.grace == "flam" for s in self.strokes)

    @property
    def has_drags(self) -> bool:
        return any(s.grace == "drag" for s in self.strokes)

    @property
    def has_diddles(self) -> bool:
        return any(s.diddle for s in self.strokes)

    @property
    def has_accents(self) -> bool:
        return any(s.accent for s in self.strokes) and not all(s.accent for s in self.strokes)

    def to_record(self) -> dict[str, Any]:
        """A flat summary row (for the library table and the dataset card)."""
        return {
            "slug": self.slug,
            "name": self.name,
            "pas_number": self.pas_number,
            "category": self.category,
            "subdivision": self.subdivision,
            "is_triplet": self.is_triplet,
            "cycle_beats": self.cycle_beats,
            "strokes_per_cycle": len(self.strokes),
            "grace_notes_per_cycle": sum(len(s.grace_offsets) for s in self.strokes),
            "tempo_min_bpm": self.tempo_min_bpm,
            "tempo_max_bpm": self.tempo_max_bpm,
            "sticking": self.sticking,
        }


def _need(cond: bool, path: Path, field: str, reason: str) -> None:
    if not cond:
        raise RudimentDataError(path, field, reason)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _parse_stroke(path: Path, i: int, raw: Any, cycle_steps: int) -> Stroke:
    f = f"strokes[{i}]"
    _need(isinstance(raw, Mapping), path, f, "must be a mapping like {at: 0, hand: R}")
    unknown = set(raw) - _STROKE_FIELDS
    _need(
        not unknown,
        path,
        f"{f}.{sorted(unknown)[0] if unknown else ''}",
        f"unknown field (allowed: {sorted(_STROKE_FIELDS)})",
    )
    at = raw.get("at")
    _need(_is_int(at), path, f"{f}.at", f"must be an integer grid step, got {at!r}")
    _need(0 <= at < cycle_steps, path, f"{f}.at", f"{at} is outside the cycle (0..{cycle_steps - 1} steps)")
    hand = raw.get("hand")
    _need(hand in HANDS, path, f"{f}.hand", f"must be R or L, got {hand!r}")
    accent = raw.get("accent", False)
    _need(isinstance(accent, bool), path, f"{f}.accent", "must be true or false")
    buzz = raw.get("buzz", False)
    _need(isinstance(buzz, bool), path, f"{f}.buzz", "must be true or false")
    diddle = raw.get("diddle", 0)
    _need(diddle in (0, 1, 2) and _is_int(diddle), path, f"{f}.diddle", f"must be 1 or 2, got {diddle!r}")
    grace = raw.get("grace")
    _need(
        grace is None or grace in GRACE_KINDS,
        path,
        f"{f}.grace",
        f"must be one of {sorted(GRACE_KINDS)}, got {grace!r}",
    )
    offsets: tuple[float, ...] = ()
    if grace is not None:
        raw_off = raw.get("grace_offsets", list(GRACE_KINDS[grace]))
        _need(
            isinstance(raw_off, list) and all(_is_num(o) for o in raw_off),
            path,
            f"{f}.grace_offsets",
            "must be a list of numbers",
        )
        offsets = tuple(float(o) for o in raw_off)
        _need(
            len(offsets) == len(GRACE_KINDS[grace]),
            path,
            f"{f}.grace_offsets",
            f"a {grace} has {len(GRACE_KINDS[grace])} grace note(s), got {len(offsets)} offsets",
        )
        _need(
            all(o < 0 for o in offsets),
            path,
            f"{f}.grace_offsets",
            "grace notes come before their primary (negative offsets)",
        )
        _need(
            list(offsets) == sorted(set(offsets)),
            path,
            f"{f}.grace_offsets",
            "grace notes must have distinct, increasing offsets (two drag graces never share a time)",
        )
    else:
        _need("grace_offsets" not in raw, path, f"{f}.grace_offsets", "given without a grace")
    _need(not (buzz and diddle), path, f"{f}.buzz", "a stroke is either a buzz or part of a diddle")
    return Stroke(at=at, hand=hand, accent=accent, grace=grace, grace_offsets=offsets, diddle=diddle, buzz=buzz)


def _sticking_of(strokes: tuple[Stroke, ...]) -> list[str]:
    out = []
    for s in strokes:
        graces = s.grace_hand.lower() * len(s.grace_offsets)
        out.append(f"{'>' if s.accent else ''}{graces}{s.hand}{'z' if s.buzz else ''}")
    return out


def parse_rudiment(path: Path, raw: Any) -> Rudiment:
    """Validate one parsed YAML document; every error names `path` and the field."""
    _need(isinstance(raw, Mapping), path, "<document>", "must be a mapping of fields")
    unknown = set(raw) - _TOP_FIELDS
    _need(not unknown, path, sorted(unknown)[0] if unknown else "", f"unknown field (allowed: {sorted(_TOP_FIELDS)})")
    for field in _TOP_FIELDS - {"description", "alternates"}:
        _need(field in raw, path, field, "is missing")
    slug = raw["slug"]
    _need(isinstance(slug, str) and slug in RUDIMENT_SLUGS, path, "slug", f"{slug!r} is not one of the 40 PAS slugs")
    _need(path.stem == slug, path, "slug", f"{slug!r} does not match the file name {path.name!r}")
    _need(isinstance(raw["name"], str) and raw["name"].strip() != "", path, "name", "must be a non-empty string")
    pas = raw["pas_number"]
    _need(
        _is_int(pas) and pas == RUDIMENT_SLUGS.index(slug) + 1,
        path,
        "pas_number",
        f"{pas!r} is not PAS number {RUDIMENT_SLUGS.index(slug) + 1} of {slug}",
    )
    _need(
        raw["category"] in CATEGORIES, path, "category", f"must be one of {list(CATEGORIES)}, got {raw['category']!r}"
    )
    sub = raw["subdivision"]
    _need(sub in SUBDIVISIONS, path, "subdivision", f"must be one of {list(SUBDIVISIONS)}, got {sub!r}")
    cycle_beats = raw["cycle_beats"]
    _need(
        _is_int(cycle_beats) and cycle_beats > 0,
        path,
        "cycle_beats",
        f"must be a positive integer, got {cycle_beats!r}",
    )
    tempo = raw["tempo_bpm"]
    _need(
        isinstance(tempo, list) and len(tempo) == 2 and all(_is_num(t) for t in tempo),
        path,
        "tempo_bpm",
        "must be [min, max]",
    )
    _need(20 <= tempo[0] < tempo[1] <= 300, path, "tempo_bpm", f"need 20 <= min < max <= 300, got {tempo}")
    alternates = raw.get("alternates", False)
    _need(isinstance(alternates, bool), path, "alternates", "must be true or false")
    raw_strokes = raw["strokes"]
    _need(isinstance(raw_strokes, list) and raw_strokes, path, "strokes", "must be a non-empty list")
    cycle_steps = cycle_beats * SUBDIVISIONS[sub]
    strokes = tuple(_parse_stroke(path, i, s, cycle_steps) for i, s in enumerate(raw_strokes))
    ats = [s.at for s in strokes]
    _need(ats == sorted(set(ats)), path, "strokes", f"`at` must strictly increase, got {ats}")
    for i, s in enumerate(strokes):
        if s.diddle == 1:
            nxt = strokes[i + 1] if i + 1 < len(strokes) else None
            _need(
                nxt is not None and nxt.diddle == 2 and nxt.hand == s.hand,
                path,
                f"strokes[{i}].diddle",
                "a diddle's first stroke must be followed by its second stroke with the same hand",
            )
        if s.diddle == 2:
            _need(
                i > 0 and strokes[i - 1].diddle == 1,
                path,
                f"strokes[{i}].diddle",
                "second diddle stroke without a first",
            )
    if alternates:
        half, n = cycle_steps // 2, len(strokes)
        mirrored = [replace(s, at=s.at + half, hand=s.grace_hand) for s in strokes[: n // 2]]
        _need(
            cycle_steps % 2 == 0 and n % 2 == 0 and list(strokes[n // 2 :]) == mirrored,
            path,
            "alternates",
            "the second half of the cycle must repeat the first half with the hands swapped",
        )
    sticking = raw["sticking"]
    _need(isinstance(sticking, str), path, "sticking", "must be a string")
    tokens = sticking.split()
    bad = [t for t in tokens if not _TOKEN.match(t)]
    _need(not bad, path, "sticking", f"cannot read token {bad[0]!r} (e.g. '>lR', 'llR', 'Rz')" if bad else "")
    expected = _sticking_of(strokes)
    _need(tokens == expected, path, "sticking", f"{sticking!r} does not match the strokes ({' '.join(expected)!r})")
    desc = raw.get("description", "")
    _need(isinstance(desc, str), path, "description", "must be a string")
    return Rudiment(
        slug=slug,
        name=raw["name"].strip(),
        pas_number=pas,
        category=raw["category"],
        subdivision=sub,
        cycle_beats=cycle_beats,
        tempo_min_bpm=float(tempo[0]),
        tempo_max_bpm=float(tempo[1]),
        alternates=alternates,
        sticking=" ".join(tokens),
        strokes=strokes,
        source=path,
        description=desc.strip(),
    )


def load_rudiment(path: str | Path) -> Rudiment:
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise RudimentDataError(path, "<document>", f"not valid YAML: {exc}") from exc
    return parse_rudiment(path, raw)


def load_library(folder: str | Path | None = None) -> dict[str, Rudiment]:
    """All rudiments in `folder` (default: the packaged data), keyed by slug in PAS order.

    Checks that there are exactly the 40 PAS rudiments, one file each.
    """
    if folder is None:
        return dict(_packaged_library())
    return _load_folder(Path(folder))


def _load_folder(folder: Path) -> dict[str, Rudiment]:
    files = sorted(folder.glob("*.yaml"))
    found = {p.stem: load_rudiment(p) for p in files}
    missing = [s for s in RUDIMENT_SLUGS if s not in found]
    if missing or len(found) != len(RUDIMENT_SLUGS):
        raise RudimentDataError(
            folder,
            "<library>",
            f"expected the 40 PAS rudiments; missing {missing}, unexpected {sorted(set(found) - set(RUDIMENT_SLUGS))}",
        )
    return {s: found[s] for s in RUDIMENT_SLUGS}


@functools.cache
def _packaged_library() -> tuple[tuple[str, Rudiment], ...]:
    return tuple(_load_folder(DATA_DIR).items())


def get_rudiment(slug: str) -> Rudiment:
    lib = load_library()
    if slug not in lib:
        raise KeyError(f"unknown rudiment {slug!r}; known: {', '.join(lib)}")
    return lib[slug]
