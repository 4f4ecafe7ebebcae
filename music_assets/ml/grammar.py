"""Grammar score: how well-formed a token sequence is, in [0, 1].

    score = well_formed_events / (events + illegal_tokens)

The layout (`tokenizer.py`, format 3): the header BOS RUDIMENT TIER TEMPO,
then events of exactly four tokens GRID STROKE OFFSET VELOCITY, then EOS and
nothing but PAD after it. The body is read in four-token events (decoding
writes every event in four positions, whatever was sampled there):

- `events`: every four-token group of the body;
- `well_formed`: the events whose four tokens have the four kinds in order and
  whose child stroke (a grace note, a bounce) has `GRID_0` and follows a stroke;
- `illegal_tokens`: every token of the wrong kind (in the header, in an event,
  a partial event before EOS, a non-PAD token after EOS), a child with a grid
  move or without a stroke before it, and a missing EOS (counted once).

A sequence with no events scores 0: an empty performance is not a performance.
Sampled with the grammar mask (`decoding.perform`) every take scores 1 by
construction; the gates sample without it, so the score measures what the
model has learnt: a model that puts its mass on the wrong kind of token, or
never ends, scores near 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from music_assets.ml.tokenizer import EVENT_LEN, HEADER_LEN, KIND_NAMES, Vocab

_K = {name: i for i, name in enumerate(KIND_NAMES)}
HEADER_KINDS = (_K["BOS"], _K["RUDIMENT"], _K["TIER"], _K["TEMPO"])
EVENT_KINDS = (_K["GRID"], _K["STROKE"], _K["OFFSET"], _K["VELOCITY"])


@dataclass(frozen=True)
class GrammarReport:
    events: int
    well_formed: int
    illegal_tokens: int
    has_eos: bool

    @property
    def score(self) -> float:
        denom = self.events + self.illegal_tokens
        return self.well_formed / denom if denom else 0.0

    def as_dict(self) -> dict[str, float | int | bool]:
        return {**asdict(self), "score": self.score}


def grammar_report(ids: Iterable[int], vocab: Vocab) -> GrammarReport:
    """Parse one sequence (ids, PAD allowed only after EOS) and count its errors."""
    kinds, values = vocab.kinds, vocab.values
    seq = [int(i) for i in ids]
    eos = next((j for j, i in enumerate(seq) if i == vocab.eos_id), None)
    body_end = len(seq) if eos is None else eos
    illegal = sum(1 for j, i in enumerate(seq[: min(HEADER_LEN, body_end)]) if kinds[i] != HEADER_KINDS[j])
    illegal += HEADER_LEN - min(HEADER_LEN, body_end)  # a header cut short
    if eos is None:
        illegal += 1
    else:
        illegal += sum(1 for i in seq[eos + 1 :] if i != vocab.pad_id)
    body = seq[HEADER_LEN:body_end]
    whole = len(body) // EVENT_LEN
    illegal += len(body) - whole * EVENT_LEN  # a partial event
    well = 0
    previous_ok = False  # is there a stroke before this one
    for j in range(whole):
        event = body[j * EVENT_LEN : (j + 1) * EVENT_LEN]
        bad = sum(1 for i, k in zip(event, EVENT_KINDS, strict=True) if kinds[i] != k)
        if not bad and event[1] in vocab.child_ids and (values[event[0]] != 0 or not previous_ok):
            bad = 1  # a grace note or bounce with a grid move, or with no stroke before it
        illegal += bad
        well += int(bad == 0)
        previous_ok = kinds[event[1]] == _K["STROKE"]
    return GrammarReport(whole, well, illegal, eos is not None)


def grammar_score(ids: Iterable[int], vocab: Vocab) -> float:
    """The grammar score of one sequence (see the module docstring)."""
    return grammar_report(ids, vocab).score


def mean_grammar_score(sequences: Sequence[Iterable[int]] | np.ndarray, vocab: Vocab) -> float:
    """Mean per-sequence score: every generated sequence weighs the same."""
    if len(sequences) == 0:
        raise ValueError("no sequences to score")
    return float(np.mean([grammar_score(s, vocab) for s in sequences]))
