"""Event tokenizer for drum performances (MIDI <-> token ids).

A performance is one sequence:

    BOS RUDIMENT_<slug> TIER_<tier> TEMPO_<bpm> TIME_SHIFT* note* EOS
    note = GRID* OFFSET VELOCITY NOTE_ON TIME_SHIFT+ NOTE_OFF

- Time is counted in ticks: 1/`ticks_per_beat` of a beat at the header's tempo
  bin, so a tick is 60 / (bin_bpm * ticks_per_beat) s: at most 3.9 ms at the
  slowest bin (40 BPM, 384 ticks), finer at faster ones, which keeps
  professional timing errors representable. Because the tick follows the
  tempo, a rudiment's pattern is (nearly) the same tokens at every tempo.
  Decoding uses the same bin tempo, so the round trip is exact to half a tick.
- Onsets are written against the rudiment's grid, a step of
  `ticks_per_beat / subdivision` ticks (the subdivision its intended strokes
  use, `TokenizerConfig.grid`; `default_subdivision` for a rudiment not in it),
  anchored at the first main stroke (the first onset not followed by another
  within half a step, i.e. not a grace note). Each onset is the grid point
  it is nearest to plus a signed fine offset in ticks: `GRID_<k>` moves the
  grid point k steps on from the previous onset's (several for longer gaps,
  none for a grace note or a stroke on the same point), then `OFFSET_<o>`
  places the onset. So the rhythm of a rudiment is the same few GRID tokens
  at every tempo and for every player, and a player's timing is the OFFSETs:
  a stroke's error is one token, not the difference of two neighbouring
  intervals (what plain time shifts between onsets make of it, which a small
  model does not learn).
- The grid follows the player: a GRID move also shifts the grid point by
  `grid_follow` (a quarter) of the previous stroke's offset, at most 1/8 beat.
  A performance a little faster or slower than its tempo bin (or drifting)
  then keeps small offsets instead of ones that grow stroke by stroke, while a
  stroke's own error still stays in its offset.
- Before the first note, `TIME_SHIFT_<k>` (k = 1 .. `max_shift_ticks`, several
  for longer gaps) advances from time 0 to the first onset; its OFFSET then
  places the grid (the first onset's grid point is the onset minus its offset).
- Each note is written whole, at its onset: `VELOCITY NOTE_ON_<p>`, its
  duration as TIME_SHIFTs, then its `NOTE_OFF_<p>`; the shifts inside a note
  do not move the onsets.
- Onsets are quantized as absolute positions and written against the grid,
  so rounding never accumulates.
- `VELOCITY_<b>` sets the velocity bin of the `NOTE_ON` that must follow it.
- `NOTE_ON_<p>` / `NOTE_OFF_<p>` per pitch over the General MIDI percussion keys.
  Notes sharing an onset are written one after the other (by pitch), each with
  the same OFFSET. A note is cut at the next onset of the same pitch (what a
  drum machine does; the rudiment MIDI already ends a note before the next one
  starts), and decoding cuts a generated note the same way.
- The header conditions generation on the rudiment, the skill tier and the tempo
  (bins of `tempo_step_bpm`).

The vocabulary is fully determined by `TokenizerConfig`; it is stored as JSON next
to the corpus (`Vocab.to_json`, with the sequence `FORMAT`) and checked when read back.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from music_assets.rudiments.constants import RUDIMENT_SLUGS, SKILL_TIERS

PAD, BOS, EOS = "PAD", "BOS", "EOS"
HEADER_LEN = 4  # BOS, rudiment, tier, tempo


class TokenizerError(ValueError):
    pass


MAX_RESOLUTION_MS = 5.0
# The layout of a sequence (see the module docstring). 2: onsets as grid steps plus a fine offset, each
# note written whole (1, unversioned: TIME_SHIFTs between all events in time order). Stored with the
# vocabulary; another value is refused.
FORMAT = 2
DEFAULT_SUBDIVISION = 4


@dataclass(frozen=True)
class TokenizerConfig:
    ticks_per_beat: int = 384  # divisible by 2, 3, 4, 6, 8, 12, 16, 24, 32
    max_shift_ticks: int = 384  # one TIME_SHIFT covers up to a beat
    velocity_bins: int = 32
    pitch_min: int = 35  # General MIDI percussion keys 35..81
    pitch_max: int = 81
    tempo_min_bpm: int = 40
    tempo_max_bpm: int = 260
    tempo_step_bpm: int = 2
    rudiments: tuple[str, ...] = RUDIMENT_SLUGS
    tiers: tuple[str, ...] = SKILL_TIERS
    # (rudiment, subdivision of the beat) pairs: the grid onsets are written against
    grid: tuple[tuple[str, int], ...] = ()
    default_subdivision: int = DEFAULT_SUBDIVISION
    max_grid_steps: int = 32  # one GRID token moves up to this many steps
    grid_follow: float = 0.25  # the share of a stroke's offset the grid moves by at the next grid move

    def __post_init__(self) -> None:
        if self.max_resolution_ms > MAX_RESOLUTION_MS:
            raise TokenizerError(
                f"a tick at {self.tempo_min_bpm} BPM is {self.max_resolution_ms:.2f} ms; it must be <= "
                f"{MAX_RESOLUTION_MS} ms so professional timing stays representable (raise ticks_per_beat)"
            )
        if self.max_shift_ticks < 1 or self.tempo_step_bpm < 1 or self.tempo_min_bpm < 1:
            raise TokenizerError("max_shift_ticks, tempo_step_bpm and tempo_min_bpm must be >= 1")
        if self.pitch_min > self.pitch_max or not (0 <= self.pitch_min and self.pitch_max <= 127):
            raise TokenizerError(f"bad pitch range {self.pitch_min}..{self.pitch_max}")
        if not 1 <= self.velocity_bins <= 127:
            raise TokenizerError("velocity_bins must be in 1..127")
        if self.max_grid_steps < 1:
            raise TokenizerError("max_grid_steps must be >= 1")
        if not 0 <= self.grid_follow < 1:
            raise TokenizerError("grid_follow must be in [0, 1)")
        for slug, sub in (*self.grid, ("default", self.default_subdivision)):
            if sub < 1 or self.ticks_per_beat % sub:
                raise TokenizerError(
                    f"subdivision {sub} of {slug}: it must divide ticks_per_beat "
                    f"({self.ticks_per_beat}) so every grid point is a whole tick"
                )

    def subdivision(self, rudiment: str | None) -> int:
        """The subdivision of the beat that `rudiment`'s onsets are written against."""
        return dict(self.grid).get(rudiment or "", self.default_subdivision)

    @property
    def max_resolution_ms(self) -> float:
        """The longest tick: the one of the slowest tempo bin."""
        return 60000.0 / (self.tempo_min_bpm * self.ticks_per_beat)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenizerConfig:
        d = dict(d)
        for k in ("rudiments", "tiers"):
            if k in d:
                d[k] = tuple(d[k])
        if "grid" in d:
            d["grid"] = tuple((str(slug), int(sub)) for slug, sub in d["grid"])
        return cls(**d)

    @classmethod
    def with_grid(cls, subdivisions: dict[str, int], **kwargs: Any) -> TokenizerConfig:
        """A config whose grid is `subdivisions` (rudiment -> subdivision), in a stable order."""
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


class Vocab:
    """Token strings <-> ids for one `TokenizerConfig`, plus encode/decode."""

    def __init__(self, config: TokenizerConfig | None = None):
        self.config = config or TokenizerConfig()
        c = self.config
        tokens = [PAD, BOS, EOS]
        tokens += [f"RUDIMENT_{s}" for s in c.rudiments]
        tokens += [f"TIER_{t}" for t in c.tiers]
        tokens += [f"TEMPO_{b}" for b in self.tempo_bins]
        tokens += [f"VELOCITY_{i}" for i in range(c.velocity_bins)]
        tokens += [f"NOTE_ON_{p}" for p in self.pitches]
        tokens += [f"NOTE_OFF_{p}" for p in self.pitches]
        tokens += [f"TIME_SHIFT_{k}" for k in range(1, c.max_shift_ticks + 1)]
        tokens += [f"GRID_{k}" for k in range(1, c.max_grid_steps + 1)]
        tokens += [f"OFFSET_{o}" for o in self.offsets]
        self.tokens: list[str] = tokens
        self.index: dict[str, int] = {t: i for i, t in enumerate(tokens)}
        self.pad_id, self.bos_id, self.eos_id = 0, 1, 2

    # --- layout -----------------------------------------------------------------
    @cached_property
    def pitches(self) -> list[int]:
        return list(range(self.config.pitch_min, self.config.pitch_max + 1))

    @cached_property
    def offsets(self) -> list[int]:
        """Every fine offset (ticks) from a grid point: half the coarsest step (a beat) plus the most the
        grid follows the player (`follow`), either way."""
        most = self.config.ticks_per_beat // 2 + self.config.ticks_per_beat // 8
        return list(range(-most, most + 1))

    def step_ticks(self, rudiment: str | None) -> int:
        """The grid step of `rudiment` in ticks."""
        return self.config.ticks_per_beat // self.config.subdivision(rudiment)

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
        for kind in (
            "RUDIMENT_",
            "TIER_",
            "TEMPO_",
            "VELOCITY_",
            "NOTE_ON_",
            "NOTE_OFF_",
            "TIME_SHIFT_",
            "GRID_",
            "OFFSET_",
        ):
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
        """Per id: pitch for notes, ticks for time shifts and offsets (signed), steps for grid moves,
        bin for velocity/tempo/tier/rudiment index."""
        vals = np.zeros(len(self), dtype=np.int64)
        for name, r in self.ranges.items():
            for j, i in enumerate(r):
                if name in ("NOTE_ON", "NOTE_OFF"):
                    vals[i] = self.pitches[j]
                elif name in ("TIME_SHIFT", "GRID"):
                    vals[i] = j + 1
                elif name == "OFFSET":
                    vals[i] = self.offsets[j]
                elif name == "TEMPO":
                    vals[i] = self.tempo_bins[j]
                else:
                    vals[i] = j
        return vals

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

    def tempo_bin(self, bpm: float) -> int:
        """The tempo bin (BPM) nearest to `bpm`."""
        bins = np.asarray(self.tempo_bins)
        return int(bins[np.argmin(np.abs(bins - float(bpm)))])

    def tempo_token(self, bpm: float) -> int:
        return self.index[f"TEMPO_{self.tempo_bin(bpm)}"]

    def tick_seconds(self, tempo_bin_bpm: float) -> float:
        """The length of one tick at a tempo bin."""
        return 60.0 / (float(tempo_bin_bpm) * self.config.ticks_per_beat)

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

    # --- encode / decode --------------------------------------------------------
    def encode_notes(
        self, notes: list[Note], rudiment: str, tier: str, tempo_bpm: float, source: str = "<notes>"
    ) -> list[int]:
        res = self.tick_seconds(self.tempo_bin(tempo_bpm))
        quant: list[tuple[int, int, int, int]] = []  # (on, off, pitch, velocity)
        for n in notes:
            if not self.config.pitch_min <= n.pitch <= self.config.pitch_max:
                raise TokenizerError(
                    f"{source}: pitch {n.pitch} outside the tokenizer's range "
                    f"{self.config.pitch_min}..{self.config.pitch_max}"
                )
            if n.start < 0 or n.end < n.start:
                raise TokenizerError(f"{source}: invalid note times {n.start}..{n.end}")
            quant.append((int(round(n.start / res)), int(round(n.end / res)), n.pitch, n.velocity))
        quant.sort(key=lambda q: (q[0], q[2], -q[3]))
        notes_q: list[tuple[int, int, int, int]] = []  # (on, off, pitch, velocity), same-pitch overlaps cut
        last_on: dict[int, int] = {}
        for i, (on, off, pitch, vel) in enumerate(quant):
            if last_on.get(pitch) == on:
                continue  # same pitch struck twice in one time step: keep the louder (sorted first)
            last_on[pitch] = on
            nxt = next((q[0] for q in quant[i + 1 :] if q[2] == pitch and q[0] > on), None)
            off = max(off, on + 1)
            if nxt is not None:
                off = min(off, nxt)
            notes_q.append((on, off, pitch, vel))
        ids = self.header(rudiment, tier, tempo_bpm)
        if notes_q:
            step = self.step_ticks(rudiment)
            onsets = sorted({n[0] for n in notes_q})
            # the grid is anchored at the first main stroke: the first onset not followed within half a step
            anchor = next((t for t, u in zip(onsets, onsets[1:], strict=False) if 2 * (u - t) >= step), onsets[-1])
            ids += self.shift_ids(notes_q[0][0])
            point = anchor + (2 * (notes_q[0][0] - anchor) + step) // (2 * step) * step  # nearest, halves up
            offset = None
            for on, off, pitch, vel in notes_q:
                if offset is not None:
                    k = max(0, (2 * (on - point) + step) // (2 * step))  # steps to the nearest grid point
                    if k:
                        ids += self.grid_ids(k)
                        point += k * step + self.follow(offset)
                offset = on - point
                ids.append(self.index[f"OFFSET_{offset}"])
                ids.append(self.index[f"VELOCITY_{self.velocity_bin(vel)}"])
                ids.append(self.index[f"NOTE_ON_{pitch}"])
                ids += self.shift_ids(off - on)
                ids.append(self.index[f"NOTE_OFF_{pitch}"])
        ids.append(self.eos_id)
        return ids

    def follow(self, offset: int) -> int:
        """How far the grid moves with the player after a stroke `offset` ticks off it (see the module docstring)."""
        bound = self.config.ticks_per_beat // 8
        return max(-bound, min(bound, math.floor(self.config.grid_follow * offset + 0.5)))

    def grid_ids(self, steps: int) -> list[int]:
        """The GRID tokens of a move of `steps` grid steps (the longest first; none for 0)."""
        out, max_k = [], self.config.max_grid_steps
        while steps > 0:
            k = min(steps, max_k)
            out.append(self.index[f"GRID_{k}"])
            steps -= k
        return out

    def shift_ids(self, ticks: int) -> list[int]:
        """The TIME_SHIFT tokens of a `ticks` gap (the longest first; none for 0)."""
        out, max_k = [], self.config.max_shift_ticks
        while ticks > 0:
            k = min(ticks, max_k)
            out.append(self.index[f"TIME_SHIFT_{k}"])
            ticks -= k
        return out

    def encode_midi(self, midi: str | os.PathLike[str] | Any, rudiment: str, tier: str) -> list[int]:
        """Tokenize the drum notes of a MIDI file (path or pretty_midi.PrettyMIDI)."""
        notes, tempo = read_drum_midi(midi)
        return self.encode_notes(notes, rudiment, tier, tempo, source=str(midi))

    def decode(self, ids: list[int] | np.ndarray, default_duration_s: float = 0.05) -> Performance:
        """Tokens -> performance, leniently: an orphan or mismatched NOTE_OFF is skipped, a note
        left open is closed after the shifts that followed it (`default_duration_s` if none), a
        NOTE_ON without VELOCITY gets a mid velocity, one without OFFSET sits on its grid point,
        a TIME_SHIFT between notes moves the grid, and a note is cut at the next onset of its
        pitch. Decoding stops at EOS. Ticks follow the header's tempo bin (120 BPM if there is
        none); the grid step follows the header's rudiment."""
        kinds, values = self.kinds, self.values
        perf = Performance(None, None, None)
        res = self.tick_seconds(120)
        step = self.step_ticks(None)
        cursor = 0  # ticks: time 0 until the first onset is placed, then the current grid point
        placed = False  # has an OFFSET placed the grid yet
        last_offset: int | None = None  # the latest OFFSET the grid has not followed yet
        onset: int | None = None  # the onset an OFFSET set for the next NOTE_ON
        pending_vel: int | None = None
        note: list[int] | None = None  # the open note: [pitch, onset, velocity, duration so far]
        raw_notes: list[tuple[int, int, int, int]] = []  # (onset, duration or -1, pitch, velocity), ticks

        for raw in ids:
            i = int(raw)
            if i < 0 or i >= len(self.tokens):
                raise TokenizerError(f"token id {i} outside the vocabulary (size {len(self.tokens)})")
            kind = KIND_NAMES[kinds[i]]
            if kind == "EOS":
                break
            if kind == "RUDIMENT":
                perf.rudiment = self.tokens[i][len("RUDIMENT_") :]
                step = self.step_ticks(perf.rudiment)
            elif kind == "TIER":
                perf.tier = self.tokens[i][len("TIER_") :]
            elif kind == "TEMPO":
                perf.tempo_bpm = float(values[i])
                res = self.tick_seconds(perf.tempo_bpm)
            elif kind == "TIME_SHIFT":
                if note is not None:
                    note[3] += int(values[i])
                else:
                    cursor += int(values[i])
            elif kind == "GRID":
                if last_offset is not None:
                    cursor += self.follow(last_offset)  # the grid follows the last stroke, once a move
                    last_offset = None
                cursor += int(values[i]) * step
            elif kind == "OFFSET":
                if not placed:
                    cursor -= int(values[i])  # the first onset is where the lead-in ends: its grid point is before it
                    placed = True
                onset = cursor + int(values[i])
                last_offset = int(values[i])
            elif kind == "VELOCITY":
                pending_vel = self.bin_velocity(int(values[i]))
            elif kind == "NOTE_ON":
                if note is not None:
                    raw_notes.append((note[1], note[3], note[0], note[2]))
                note = [
                    int(values[i]),
                    max(0, cursor if onset is None else onset),
                    pending_vel if pending_vel is not None else 64,
                    0,
                ]
                pending_vel = onset = None
            elif kind == "NOTE_OFF":
                if note is not None and note[0] == int(values[i]):
                    raw_notes.append((note[1], note[3], note[0], note[2]))
                    note = None
        if note is not None:
            raw_notes.append((note[1], note[3] if note[3] > 0 else -1, note[0], note[2]))
        next_on: dict[int, float] = {}
        for on, dur, pitch, vel in sorted(raw_notes, key=lambda n: (-n[0], n[2])):
            start = on * res
            end = start + default_duration_s if dur < 0 else (on + max(dur, 1)) * res
            if pitch in next_on and next_on[pitch] > start:
                end = min(end, next_on[pitch])
            next_on[pitch] = start
            perf.notes.append(Note(start, end, pitch, vel))
        perf.notes.sort(key=lambda n: (n.start, n.pitch))
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
                "(materialize token_corpus again)"
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
    "VELOCITY",
    "NOTE_ON",
    "NOTE_OFF",
    "TIME_SHIFT",
    "GRID",
    "OFFSET",
)


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
