"""Grammar score: how well-formed a token sequence is, in [0, 1].

    score = closed / (note_ons + orphan_offs + illegal_transitions)

- `closed`: NOTE_ONs closed by their NOTE_OFF (a NOTE_OFF of the same pitch
  after the note's duration shifts: each note is written whole, see `tokenizer.py`).
- `note_ons`: every NOTE_ON. A NOTE_ON that is never closed (still open at the
  end, or followed by another NOTE_ON before its NOTE_OFF) is an *unterminated*
  note: it sits in the denominator but not in `closed`.
- `orphan_offs`: NOTE_OFFs that do not close the open note (none is open, or
  it has another pitch).
- `illegal_transitions`: tokens whose type may not follow the previous token's
  type (the grammar in `tokenizer.py`: header BOS RUDIMENT TIER TEMPO, then
  TIME_SHIFTs only before the first note and inside notes, GRID moves then one
  OFFSET before every note, VELOCITY always directly before NOTE_ON, a duration
  shift after NOTE_ON, inside a note nothing but shifts, its NOTE_OFF or EOS, no
  header token in the body, nothing but PAD after EOS), a note closed with no
  duration, and a missing EOS (counted once).

A sequence with no NOTE_ON and no errors scores 0: an empty performance is not a
performance. Like MidiTok's `tokens_errors` the score is a per-sequence ratio,
but it is oriented the other way (1 = perfect) and normalised by notes rather
than by tokens, so a long run of TIME_SHIFTs cannot dilute a broken note.

The collapse patterns of a degenerate model all score near 0: one token
repeated (no notes, or every NOTE_ON illegal / re-struck), NOTE_ONs closed by
NOTE_OFFs of another pitch (every off an orphan, every on unterminated), a
sequence that never ends (open notes and the missing EOS count).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from music_assets.ml.tokenizer import KIND_NAMES, Vocab

_K = {name: i for i, name in enumerate(KIND_NAMES)}
# Where a note may start: GRID moves, its OFFSET; or the end. (NOTE_OFF here is an orphan, counted as such.)
_BETWEEN_NOTES = frozenset({_K["GRID"], _K["OFFSET"], _K["NOTE_OFF"], _K["EOS"]})
# Inside a note (after its NOTE_ON and a duration shift): more duration, its NOTE_OFF, or the end.
IN_NOTE_NEXT = frozenset({_K["TIME_SHIFT"], _K["NOTE_OFF"], _K["EOS"]})
# Before the first note: the lead-in shifts, then the first note's grid moves and OFFSET.
LEAD_IN_NEXT = frozenset({_K["TIME_SHIFT"], _K["GRID"], _K["OFFSET"]})
# Allowed token types after each type outside a note, after the lead-in; None = the start of the sequence.
ALLOWED: dict[int | None, frozenset[int]] = {
    None: frozenset({_K["BOS"]}),
    _K["BOS"]: frozenset({_K["RUDIMENT"]}),
    _K["RUDIMENT"]: frozenset({_K["TIER"]}),
    _K["TIER"]: frozenset({_K["TEMPO"]}),
    _K["TEMPO"]: LEAD_IN_NEXT | {_K["EOS"]},
    _K["TIME_SHIFT"]: _BETWEEN_NOTES,  # a shift between notes is itself illegal (no transition leads to it)
    _K["GRID"]: frozenset({_K["GRID"], _K["OFFSET"]}),
    _K["OFFSET"]: frozenset({_K["VELOCITY"]}),
    _K["VELOCITY"]: frozenset({_K["NOTE_ON"]}),
    _K["NOTE_ON"]: frozenset({_K["TIME_SHIFT"], _K["NOTE_OFF"]}),
    _K["NOTE_OFF"]: _BETWEEN_NOTES,
    _K["EOS"]: frozenset(),
    _K["PAD"]: frozenset(),
}


@dataclass(frozen=True)
class GrammarReport:
    note_ons: int
    closed: int
    unterminated: int
    orphan_offs: int
    illegal_transitions: int
    has_eos: bool

    @property
    def score(self) -> float:
        denom = self.note_ons + self.orphan_offs + self.illegal_transitions
        return self.closed / denom if denom else 0.0

    def as_dict(self) -> dict[str, float | int | bool]:
        return {**asdict(self), "score": self.score}


def grammar_report(ids: Iterable[int], vocab: Vocab) -> GrammarReport:
    """Parse one sequence (ids, PAD allowed only after EOS) and count its errors."""
    kinds, values = vocab.kinds, vocab.values
    prev: int | None = None
    note: list[int] | None = None  # the open note: [pitch, duration so far]
    started = False  # has a note been placed (its OFFSET seen)
    note_ons = closed = unterminated = orphans = illegal = 0
    has_eos = False
    for raw in ids:
        i = int(raw)
        k = int(kinds[i])
        if has_eos:
            if k != _K["PAD"]:
                illegal += 1
            continue
        if prev == _K["TIME_SHIFT"]:
            allowed = IN_NOTE_NEXT if note is not None else ALLOWED[prev] if started else LEAD_IN_NEXT
        else:
            allowed = ALLOWED[prev]
        if k not in allowed:
            illegal += 1
        if k == _K["TIME_SHIFT"]:
            if note is not None:
                note[1] += int(values[i])
        elif k == _K["OFFSET"]:
            started = True
        elif k == _K["NOTE_ON"]:
            note_ons += 1
            if note is not None:
                unterminated += 1  # the previous note was never closed
            note = [int(values[i]), 0]
        elif k == _K["NOTE_OFF"]:
            if note is not None and note[0] == int(values[i]):
                if note[1] == 0:
                    illegal += 1  # zero-length note
                closed += 1
                note = None
            else:
                orphans += 1
        elif k == _K["EOS"]:
            has_eos = True
        prev = k
    unterminated += int(note is not None)
    if not has_eos:
        illegal += 1
    return GrammarReport(note_ons, closed, unterminated, orphans, illegal, has_eos)


def grammar_score(ids: Iterable[int], vocab: Vocab) -> float:
    """The grammar score of one sequence (see the module docstring)."""
    return grammar_report(ids, vocab).score


def mean_grammar_score(sequences: Sequence[Iterable[int]] | np.ndarray, vocab: Vocab) -> float:
    """Mean per-sequence score: every generated sequence weighs the same."""
    if len(sequences) == 0:
        raise ValueError("no sequences to score")
    return float(np.mean([grammar_score(s, vocab) for s in sequences]))
