"""Tokens of a score-conditioned drum performance (format 3).

A performance is one sequence:

    BOS RUDIMENT_<slug> TIER_<tier> TEMPO_<bpm> event* EOS
    event = GRID_<k> STROKE_<kind> OFFSET_<ms> VELOCITY_<bin>

Every event is exactly four tokens. The first two are the *score* (what the
rudiment's written strokes say, `music_assets.ml.score`); the last two are the
*performance* (how the player played that stroke):

- `GRID_<k>`: a primary stroke sits k steps of the rudiment's grid after the
  previous primary (the first: after step 0); a child stroke (a grace note or a
  buzz bounce) has `GRID_0`;
- `STROKE_<kind>`: the written stroke: hand (as written, R = the lead hand),
  accent, diddle, buzz (`STROKE_L_ACCENT_DIDDLE1`), or a child
  (`STROKE_FLAM_GRACE1`, `STROKE_DRAG_GRACE2`, `STROKE_BOUNCE3`);
- `OFFSET_<ms>`: a primary's onset minus its intended time (`LEAD_IN_SEC` plus
  its grid position at the tempo); a child's onset minus its primary's onset
  (so a flam grace's offset is minus the flam spacing). In steps of
  `offset_step_ms`, clamped to +-`max_offset_ms`. Milliseconds rather than
  beats: a player's timing error does not scale with the tempo;
- `VELOCITY_<bin>`: the MIDI velocity in `velocity_bins` bins.

The header conditions on the rudiment, the skill tier and the tempo (bins of
`tempo_step_bpm`; decoding places the grid at the exact tempo it is given, by
default the bin's). Every note is the snare (General MIDI 38) and lasts
`NOTE_SEC` or until the next onset, as in the dataset, so durations are not
tokens.

Models are trained to predict only the performance tokens (`Vocab.predicted`);
the score tokens are given. Generation (`music_assets.ml.decoding`) feeds the
score of the requested rudiment and samples each OFFSET and VELOCITY over its
own kind's tokens only, so the rudiment is the one asked for by construction
and the model's job is the human part: timing, dynamics, grace-note spacing.

The vocabulary is fully determined by `TokenizerConfig`; it is stored as JSON next
to the corpus (`Vocab.to_json`, with the sequence `FORMAT`) and checked when read back.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from music_assets.ml.score import LEAD_IN_SEC, ScoreEvent, stroke_kinds
from music_assets.rudiments.constants import RUDIMENT_SLUGS, SKILL_TIERS
from music_assets.rudiments.performance import NOTE_SEC, SNARE_PITCH

PAD, BOS, EOS = "PAD", "BOS", "EOS"
HEADER_LEN = 4  # BOS, rudiment, tier, tempo
EVENT_LEN = 4  # GRID, STROKE, OFFSET, VELOCITY
# The layout of a sequence (see the module docstring). 3: score-conditioned events. 2 (grid steps,
# offsets in ticks and whole notes, generated freely) and 1 (time shifts) are no longer read.
FORMAT = 3
DEFAULT_SUBDIVISION = 4
PRIMARY_KINDS, CHILD_KINDS = stroke_kinds()


class TokenizerError(ValueError):
    pass


@dataclass(frozen=True)
class TokenizerConfig:
    velocity_bins: int = 32
    tempo_min_bpm: int = 40
    tempo_max_bpm: int = 260
    tempo_step_bpm: int = 2
    offset_step_ms: int = 2  # timing resolution; 2 ms adds 0.6 ms (rms) to a 7 ms timing spread
    max_offset_ms: int = 600  # a beginner drifting over 24 slow beats reaches about +-500 ms
    max_grid_steps: int = 48  # the longest rest between two strokes, in grid steps
    rudiments: tuple[str, ...] = RUDIMENT_SLUGS
    tiers: tuple[str, ...] = SKILL_TIERS
    # (rudiment, grid steps per beat): the grid its primaries are written on (from the library)
    grid: tuple[tuple[str, int], ...] = ()
    default_subdivision: int = DEFAULT_SUBDIVISION

    def __post_init__(self) -> None:
        if self.tempo_step_bpm < 1 or self.tempo_min_bpm < 1 or self.tempo_max_bpm < self.tempo_min_bpm:
            raise TokenizerError("tempo_min_bpm <= tempo_max_bpm and tempo_step_bpm must be >= 1")
        if not 1 <= self.velocity_bins <= 127:
            raise TokenizerError("velocity_bins must be in 1..127")
        if self.offset_step_ms < 1 or self.max_offset_ms < self.offset_step_ms:
            raise TokenizerError("offset_step_ms must be >= 1 and <= max_offset_ms")
        if self.max_grid_steps < 1:
            raise TokenizerError("max_grid_steps must be >= 1")
        for slug, sub in (*self.grid, ("default", self.default_subdivision)):
            if sub < 1:
                raise TokenizerError(f"grid of {slug}: {sub} steps per beat")

    def subdivision(self, rudiment: str | None) -> int:
        """Grid steps per beat of `rudiment`."""
        return dict(self.grid).get(rudiment or "", self.default_subdivision)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenizerConfig:
        d = dict(d)
        for k in ("rudiments", "tiers"):
            if k in d:
                d[k] = tuple(d[k])
        if "grid" in d:
            d["grid"] = tuple((str(slug), int(sub)) for slug, sub in d["grid"])
        try:
            return cls(**d)
        except TypeError as exc:
            raise TokenizerError(f"tokenizer config: {exc}") from exc

    @classmethod
    def with_grid(cls, subdivisions: dict[str, int], **kwargs: Any) -> TokenizerConfig:
        """A config whose grid is `subdivisions` (rudiment -> steps per beat), in a stable order."""
        return cls(grid=tuple(sorted((str(k), int(v)) for k, v in subdivisions.items())), **kwargs)


@dataclass
class Note:
    start: float  # seconds
    end: float
    pitch: int
    velocity: int


@dataclass
class Performance:
    """A decoded token sequence: its header and notes (times in seconds)."""

    rudiment: str | None
    tier: str | None
    tempo_bpm: float | None
    notes: list[Note] = field(default_factory=list)


@dataclass(frozen=True)
class Event:
    """One stroke as tokens carry it: the score part and the performance part."""

    grid_steps: int
    kind: str
    offset_ms: float
    velocity: int


class Vocab:
    """Token strings <-> ids for one `TokenizerConfig`, plus encode/decode."""

    def __init__(self, config: TokenizerConfig | None = None):
        self.config = config or TokenizerConfig()
        c = self.config
        tokens = [PAD, BOS, EOS]
        tokens += [f"RUDIMENT_{s}" for s in c.rudiments]
        tokens += [f"TIER_{t}" for t in c.tiers]
        tokens += [f"TEMPO_{b}" for b in self.tempo_bins]
        tokens += [f"GRID_{k}" for k in range(c.max_grid_steps + 1)]
        tokens += [f"STROKE_{k}" for k in (*PRIMARY_KINDS, *CHILD_KINDS)]
        tokens += [f"OFFSET_{o}" for o in self.offsets]
        tokens += [f"VELOCITY_{i}" for i in range(c.velocity_bins)]
        self.tokens: list[str] = tokens
        self.index: dict[str, int] = {t: i for i, t in enumerate(tokens)}
        self.pad_id, self.bos_id, self.eos_id = 0, 1, 2

    # --- layout -----------------------------------------------------------------
    @cached_property
    def offsets(self) -> list[int]:
        """Every offset token's value (ms)."""
        c = self.config
        most = c.max_offset_ms // c.offset_step_ms * c.offset_step_ms
        return list(range(-most, most + 1, c.offset_step_ms))

    @cached_property
    def tempo_bins(self) -> list[int]:
        c = self.config
        return list(range(c.tempo_min_bpm, c.tempo_max_bpm + 1, c.tempo_step_bpm))

    def __len__(self) -> int:
        return len(self.tokens)

    @cached_property
    def ranges(self) -> dict[str, range]:
        """Id range of each token type (contiguous by construction)."""
        out: dict[str, range] = {}
        for kind in ("RUDIMENT_", "TIER_", "TEMPO_", "GRID_", "STROKE_", "OFFSET_", "VELOCITY_"):
            ids = [i for i, t in enumerate(self.tokens) if t.startswith(kind)]
            out[kind.rstrip("_")] = range(ids[0], ids[-1] + 1)
        return out

    @cached_property
    def kinds(self) -> np.ndarray:
        """Token type code per id: see `KIND_NAMES`."""
        kinds = np.zeros(len(self), dtype=np.int8)
        kinds[self.bos_id], kinds[self.eos_id] = KIND_NAMES.index("BOS"), KIND_NAMES.index("EOS")
        for name, r in self.ranges.items():
            kinds[r.start : r.stop] = KIND_NAMES.index(name)
        return kinds

    @cached_property
    def values(self) -> np.ndarray:
        """Per id: steps for grid moves, ms for offsets, bin for velocity, BPM for tempo, index otherwise."""
        vals = np.zeros(len(self), dtype=np.int64)
        for name, r in self.ranges.items():
            for j, i in enumerate(r):
                if name == "OFFSET":
                    vals[i] = self.offsets[j]
                elif name == "TEMPO":
                    vals[i] = self.tempo_bins[j]
                else:
                    vals[i] = j  # GRID_<j>, VELOCITY_<j>, the j-th rudiment, tier or stroke
        return vals

    @cached_property
    def predicted(self) -> np.ndarray:
        """Per id: True for the tokens a model predicts (OFFSET, VELOCITY); the rest is given."""
        k = self.kinds
        return (k == KIND_NAMES.index("OFFSET")) | (k == KIND_NAMES.index("VELOCITY"))

    @cached_property
    def child_ids(self) -> frozenset[int]:
        return frozenset(self.index[f"STROKE_{k}"] for k in CHILD_KINDS)

    # --- bins -------------------------------------------------------------------
    def velocity_bin(self, velocity: int) -> int:
        v = min(127, max(1, int(velocity)))
        return min(self.config.velocity_bins - 1, (v - 1) * self.config.velocity_bins // 127)

    def bin_velocity(self, b: int) -> int:
        """The centre velocity of bin `b` (its decoded value)."""
        nb = self.config.velocity_bins
        lo = math.ceil(b * 127 / nb) + 1
        hi = math.ceil((b + 1) * 127 / nb)
        return int(round((lo + hi) / 2))

    def offset_id(self, ms: float) -> int:
        c = self.config
        o = int(round(float(ms) / c.offset_step_ms)) * c.offset_step_ms
        o = max(self.offsets[0], min(self.offsets[-1], o))
        return self.index[f"OFFSET_{o}"]

    def tempo_bin(self, bpm: float) -> int:
        """The tempo bin (BPM) nearest to `bpm`."""
        bins = np.asarray(self.tempo_bins)
        return int(bins[np.argmin(np.abs(bins - float(bpm)))])

    def tempo_token(self, bpm: float) -> int:
        return self.index[f"TEMPO_{self.tempo_bin(bpm)}"]

    def header(self, rudiment: str, tier: str, tempo_bpm: float) -> list[int]:
        for kind, val in (("RUDIMENT", rudiment), ("TIER", tier)):
            if f"{kind}_{val}" not in self.index:
                raise TokenizerError(f"unknown {kind.lower()} {val!r}")
        return [
            self.bos_id,
            self.index[f"RUDIMENT_{rudiment}"],
            self.index[f"TIER_{tier}"],
            self.tempo_token(tempo_bpm),
        ]

    def score_ids(self, events: Sequence[ScoreEvent]) -> list[tuple[int, int]]:
        """The (GRID, STROKE) ids of each score event."""
        out = []
        for e in events:
            if not 0 <= e.grid_steps <= self.config.max_grid_steps:
                raise TokenizerError(f"a grid move of {e.grid_steps} steps (at most {self.config.max_grid_steps})")
            out.append((self.index[f"GRID_{e.grid_steps}"], self.index[f"STROKE_{e.kind}"]))
        return out

    # --- encode / decode --------------------------------------------------------
    def encode(self, events: Sequence[Event], rudiment: str, tier: str, tempo_bpm: float) -> list[int]:
        """Header, events, EOS (offsets clamped to the vocabulary's range)."""
        ids = self.header(rudiment, tier, tempo_bpm)
        score = self.score_ids([ScoreEvent(e.grid_steps, e.kind, -1, 0) for e in events])
        for (g, s), e in zip(score, events, strict=True):
            ids += [g, s, self.offset_id(e.offset_ms), self.index[f"VELOCITY_{self.velocity_bin(e.velocity)}"]]
        ids.append(self.eos_id)
        return ids

    def decode(self, ids: Sequence[int] | np.ndarray, tempo_bpm: float | None = None) -> Performance:
        """Tokens -> notes, leniently (a sequence sampled without the grammar mask may be malformed).

        A note is made at each VELOCITY token from the GRID, STROKE and OFFSET
        seen since the previous note (missing ones: no move, a primary, no
        offset); tokens of the wrong kind are skipped; decoding stops at EOS.
        The grid is placed at `tempo_bpm` (default: the header's tempo bin, or
        120 BPM without one) with the header rudiment's steps per beat. Notes
        are snare hits of `NOTE_SEC`, cut at the next onset.
        """
        kinds, values = self.kinds, self.values
        perf = Performance(None, None, None)
        k_of = {name: i for i, name in enumerate(KIND_NAMES)}
        steps_per_beat = self.config.subdivision(None)
        step = 0  # the current primary's grid point
        primary_onset: float | None = None
        grid = kind = offset = None
        onsets: list[tuple[float, int]] = []
        for raw in ids:
            i = int(raw)
            if i < 0 or i >= len(self.tokens):
                raise TokenizerError(f"token id {i} outside the vocabulary (size {len(self.tokens)})")
            k = int(kinds[i])
            if k == k_of["EOS"]:
                break
            if k == k_of["RUDIMENT"]:
                perf.rudiment = self.tokens[i][len("RUDIMENT_") :]
                steps_per_beat = self.config.subdivision(perf.rudiment)
            elif k == k_of["TIER"]:
                perf.tier = self.tokens[i][len("TIER_") :]
            elif k == k_of["TEMPO"]:
                perf.tempo_bpm = float(values[i])
            elif k == k_of["GRID"]:
                grid = int(values[i])
            elif k == k_of["STROKE"]:
                kind = i
            elif k == k_of["OFFSET"]:
                offset = int(values[i])
            elif k == k_of["VELOCITY"]:
                bpm = float(tempo_bpm or perf.tempo_bpm or 120.0)
                if kind is not None and kind in self.child_ids:
                    anchor = (
                        primary_onset if primary_onset is not None else LEAD_IN_SEC + step * 60.0 / bpm / steps_per_beat
                    )
                    onset = anchor + (offset or 0) / 1000.0
                else:
                    step += grid or 0
                    onset = LEAD_IN_SEC + step * 60.0 / bpm / steps_per_beat + (offset or 0) / 1000.0
                    primary_onset = onset
                onsets.append((max(0.0, onset), self.bin_velocity(int(values[i]))))
                grid = kind = offset = None
        if tempo_bpm is not None:
            perf.tempo_bpm = float(tempo_bpm)
        onsets.sort(key=lambda o: o[0])
        for j, (start, vel) in enumerate(onsets):
            nxt = onsets[j + 1][0] if j + 1 < len(onsets) else math.inf
            end = min(start + NOTE_SEC, nxt) if nxt > start else start + 0.001
            perf.notes.append(Note(start, max(end, start + 0.001), SNARE_PITCH, vel))
        return perf

    def to_pretty_midi(self, perf: Performance) -> Any:
        import pretty_midi  # noqa: PLC0415

        pm = pretty_midi.PrettyMIDI(initial_tempo=float(perf.tempo_bpm or 120.0))
        inst = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
        inst.notes = [
            pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=n.start, end=n.end) for n in perf.notes
        ]
        pm.instruments.append(inst)
        return pm

    # --- persistence ------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "config": asdict(self.config), "tokens": self.tokens}

    @classmethod
    def from_json(cls, obj: dict[str, Any], source: str = "vocab") -> Vocab:
        if obj.get("format") != FORMAT:
            raise TokenizerError(
                f"{source}: sequence format {obj.get('format', 1)}, this version reads {FORMAT} "
                "(materialize token_corpus and the models again)"
            )
        vocab = cls(TokenizerConfig.from_dict(obj["config"]))
        if vocab.tokens != obj["tokens"]:
            raise TokenizerError(f"{source}: the token list does not match its config (written by another version?)")
        return vocab


KIND_NAMES: tuple[str, ...] = (
    "PAD",
    "BOS",
    "EOS",
    "RUDIMENT",
    "TIER",
    "TEMPO",
    "GRID",
    "STROKE",
    "OFFSET",
    "VELOCITY",
)


def score_of(ids: Sequence[int] | np.ndarray, vocab: Vocab) -> tuple[list[int], list[tuple[int, int]]]:
    """(header, [(GRID id, STROKE id), ...]) of a well-formed sequence: the score it performs."""
    ids = [int(i) for i in ids]
    header = ids[:HEADER_LEN]
    body = ids[HEADER_LEN:]
    if body and body[-1] == vocab.eos_id:
        body = body[:-1]
    if len(body) % EVENT_LEN:
        raise TokenizerError(f"a body of {len(body)} tokens is not whole events of {EVENT_LEN}")
    return header, [(body[j], body[j + 1]) for j in range(0, len(body), EVENT_LEN)]


def read_drum_midi(midi: str | os.PathLike[str] | Any) -> tuple[list[Note], float]:
    """The drum notes (channel 10) and the first tempo of a MIDI file or pretty_midi.PrettyMIDI."""
    import pretty_midi  # noqa: PLC0415

    if isinstance(midi, pretty_midi.PrettyMIDI):
        pm, source = midi, "<PrettyMIDI>"
    else:
        source = str(midi)
        if not Path(midi).is_file():
            raise TokenizerError(f"{source}: MIDI file not found")
        try:
            pm = pretty_midi.PrettyMIDI(source)
        except Exception as exc:  # noqa: BLE001 - mido/pretty_midi raise many types on bad files
            raise TokenizerError(f"{source}: not a readable MIDI file ({exc})") from exc
    drums = [inst for inst in pm.instruments if inst.is_drum]
    if not drums:
        raise TokenizerError(f"{source}: no drum track (channel 10)")
    _, tempi = pm.get_tempo_changes()
    tempo = float(tempi[0]) if len(tempi) else 120.0
    notes = [Note(float(n.start), float(n.end), int(n.pitch), int(n.velocity)) for d in drums for n in d.notes]
    if not notes:
        raise TokenizerError(f"{source}: the drum track has no notes")
    return notes, tempo
