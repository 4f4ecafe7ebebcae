"""Grammar score: how well-formed a token sequence is, in [0, 1].

    score = closed / (note_ons + orphan_offs + illegal_transitions)

- `closed`: NOTE_ONs closed by a later NOTE_OFF of the same pitch (the first open
  note of that pitch).
- `note_ons`: every NOTE_ON. A NOTE_ON that is never closed (still open at the
  end, or struck again before its NOTE_OFF) is an *unterminated* note: it sits
  in the denominator but not in `closed`.
- `orphan_offs`: NOTE_OFFs with no open note of their pitch.
- `illegal_transitions`: tokens whose type may not follow the previous token's
  type (the grammar in `tokenizer.py`: header BOS RUDIMENT TIER TEMPO, then
  VELOCITY always directly before NOTE_ON, no header token in the body,
  nothing but PAD after EOS), a note closed in the same time step it opened,
  and a missing EOS (counted once).

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
_BODY_NEXT = {_K["TIME_SHIFT"], _K["VELOCITY"], _K["NOTE_OFF"], _K["EOS"]}
# Allowed token types after each type; None = the start of the sequence.
ALLOWED: dict[int | None, frozenset[int]] = {
    None: frozenset({_K["BOS"]}),
    _K["BOS"]: frozenset({_K["RUDIMENT"]}),
    _K["RUDIMENT"]: frozenset({_K["TIER"]}),
    _K["TIER"]: frozenset({_K["TEMPO"]}),
    _K["TEMPO"]: frozenset({_K["TIME_SHIFT"], _K["VELOCITY"], _K["EOS"]}),
    _K["TIME_SHIFT"]: frozenset(_BODY_NEXT),
    _K["VELOCITY"]: frozenset({_K["NOTE_ON"]}),
    _K["NOTE_ON"]: frozenset({_K["TIME_SHIFT"], _K["VELOCITY"], _K["NOTE_OFF"]}),
    _K["NOTE_OFF"]: frozenset(_BODY_NEXT),
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
    now = 0
    open_at: dict[int, int] = {}  # pitch -> time step it opened
    note_ons = closed = unterminated = orphans = illegal = 0
    has_eos = False
    for raw in ids:
        i = int(raw)
        k = int(kinds[i])
        if has_eos:
            if k != _K["PAD"]:
                illegal += 1
            continue
        if k not in ALLOWED[prev]:
            illegal += 1
        if k == _K["TIME_SHIFT"]:
            now += int(values[i])
        elif k == _K["NOTE_ON"]:
            note_ons += 1
            p = int(values[i])
            if p in open_at:
                unterminated += 1  # struck again before its NOTE_OFF
            open_at[p] = now
        elif k == _K["NOTE_OFF"]:
            p = int(values[i])
            if p in open_at:
                if open_at.pop(p) == now:
                    illegal += 1  # zero-length note
                closed += 1
            else:
                orphans += 1
        elif k == _K["EOS"]:
            has_eos = True
        prev = k
    unterminated += len(open_at)
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
