"""Score-conditioned, grammar-masked decoding, shared by the torch models and the ONNX runner.

A take is a request (rudiment, tier, tempo, length): its prompt is the header
(BOS, rudiment, tier, tempo) and the rudiment's score expanded for that tempo
and length (`score.expand`), one (GRID, STROKE) pair per stroke. Decoding
feeds the score and samples the performance: for every stroke, the model's
next-token distribution after its GRID and STROKE is restricted to OFFSET
tokens, and after the OFFSET to VELOCITY tokens (the *mask*; with
`masked=False` the whole vocabulary is sampled, which is how the grammar gates
measure what a model has learnt). So a masked take is well formed and plays
exactly the requested strokes by construction; the model decides their timing
and dynamics.

Every take has four tokens per stroke, so a batch of takes advances in
lockstep, one stroke per two model calls (the VELOCITY of the last stroke, the
next GRID and STROKE, then the OFFSET), and a finished take leaves the batch.
Each take draws from its own generator, so its tokens do not depend on the
other takes in the batch. A take longer than the model's context goes on with
a sliding window: the header and the latest strokes are fed again from an
empty cache.

The model side is a `Stepper`: `step(ids, past) -> (last-position logits,
past)` and `select(past, rows)`. `generation.TorchStepper` and
`onnx_runtime.OnnxDrumModel` implement it; this module is numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from music_assets.ml.sampling import SamplingConfig
from music_assets.ml.score import ScoreTemplate, expand
from music_assets.ml.tokenizer import EVENT_LEN, HEADER_LEN, KIND_NAMES, TokenizerError, Vocab

Prompt = tuple[list[int], list[tuple[int, int]]]  # header ids, (GRID id, STROKE id) per stroke


class Stepper(Protocol):
    max_seq_len: int

    def step(self, ids: np.ndarray, past: Any) -> tuple[np.ndarray, Any]:
        """Logits (batch, vocab) at the last of `ids` (batch, n) after the cache `past` (None: empty)."""
        ...

    def select(self, past: Any, rows: np.ndarray) -> Any:
        """The cache of the batch rows `rows` only."""
        ...


@dataclass(frozen=True)
class TakeRequest:
    rudiment: str
    tier: str
    tempo_bpm: float
    beats: float


def prompt_for(vocab: Vocab, templates: Mapping[str, ScoreTemplate], request: TakeRequest) -> Prompt:
    """The header and score of a take."""
    if request.rudiment not in templates:
        raise TokenizerError(f"unknown rudiment {request.rudiment!r}; known: {', '.join(sorted(templates))}")
    header = vocab.header(request.rudiment, request.tier, request.tempo_bpm)
    score = vocab.score_ids(expand(templates[request.rudiment], request.tempo_bpm, request.beats))
    return header, score


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def filter_logits(logits: np.ndarray, s: SamplingConfig) -> np.ndarray:
    """(batch, vocab) logits after temperature, top-k and top-p (dropped entries are -inf)."""
    logits = logits.astype(np.float64) / s.temperature
    if s.top_k and s.top_k < logits.shape[-1]:
        kth = -np.partition(-logits, s.top_k - 1, axis=-1)[:, s.top_k - 1 : s.top_k]
        logits = np.where(logits < kth, -np.inf, logits)
    if s.top_p < 1.0:
        order = np.argsort(-logits, axis=-1, kind="stable")
        probs = softmax(np.take_along_axis(logits, order, axis=-1))
        # drop a token when the mass before it already reaches top_p (the first always stays)
        drop_sorted = (np.cumsum(probs, axis=-1) - probs) >= s.top_p
        drop = np.empty_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, axis=-1)
        logits = np.where(drop, -np.inf, logits)
    return logits


def sample_rows(logits: np.ndarray, s: SamplingConfig, uniforms: np.ndarray) -> np.ndarray:
    """One token id per row of (batch, vocab) logits, by inverse-CDF sampling with one uniform per row."""
    cdf = np.cumsum(softmax(filter_logits(logits, s)), axis=-1)
    u = uniforms.reshape(-1, 1) * cdf[:, -1:]
    # the first index whose cdf exceeds u: never a token of probability 0
    return np.minimum((cdf <= u).sum(axis=-1), cdf.shape[-1] - 1).astype(np.int64)


def kind_mask(vocab: Vocab, kind: str) -> np.ndarray:
    """True for the ids of one token kind (OFFSET, VELOCITY...)."""
    return vocab.kinds == KIND_NAMES.index(kind)


def perform(
    stepper: Stepper,
    vocab: Vocab,
    prompts: Sequence[Prompt],
    sampling: SamplingConfig,
    rngs: Sequence[np.random.Generator] | None,
    *,
    masked: bool = True,
    greedy: bool = False,
    batch_size: int = 256,
) -> list[list[int]]:
    """Decode every prompt's performance; each take: header, four tokens per stroke, EOS.

    `rngs` holds one generator per prompt (ignored, may be None, with
    `greedy`: the most likely token of the allowed kind).
    """
    if not greedy and (rngs is None or len(rngs) != len(prompts)):
        raise ValueError("one generator per prompt is needed to sample")
    out: list[list[int]] = [[] for _ in prompts]
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i][1]))  # similar lengths share a batch
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        done = _perform_batch(
            stepper,
            vocab,
            [prompts[i] for i in rows],
            sampling,
            None if greedy else [rngs[i] for i in rows],  # type: ignore[index]
            masked,
            greedy,
        )
        for i, seq in zip(rows, done, strict=True):
            out[i] = seq
    return out


def _perform_batch(
    stepper: Stepper,
    vocab: Vocab,
    prompts: Sequence[Prompt],
    sampling: SamplingConfig,
    rngs: Sequence[np.random.Generator] | None,
    masked: bool,
    greedy: bool,
) -> list[list[int]]:
    offset_ok, velocity_ok = kind_mask(vocab, "OFFSET"), kind_mask(vocab, "VELOCITY")
    headers = [list(map(int, h)) for h, _ in prompts]
    if any(len(h) != HEADER_LEN for h in headers):
        raise TokenizerError(f"every prompt needs a header of {HEADER_LEN} tokens")
    scores = [s for _, s in prompts]
    out = [list(h) for h in headers]
    active = np.array([i for i, s in enumerate(scores) if s], dtype=np.int64)
    for i, s in enumerate(scores):
        if not s:
            out[i].append(vocab.eos_id)
    if not len(active):
        return out
    window_events = max(1, (stepper.max_seq_len - HEADER_LEN - 3) // EVENT_LEN // 2)

    def choose(logits: np.ndarray, allowed: np.ndarray, rows: np.ndarray) -> np.ndarray:
        logits = np.asarray(logits, dtype=np.float64)
        if masked:
            logits = np.where(allowed[None, :], logits, -np.inf)
        if greedy:
            return logits.argmax(-1).astype(np.int64)
        u = np.array([rngs[i].random() for i in rows])  # type: ignore[index]
        return sample_rows(logits, sampling, u)

    pending = np.array([headers[i] + list(scores[i][0]) for i in active], dtype=np.int64)
    past: Any = None
    past_len, e = 0, 0
    while len(active):
        if past is not None and past_len + pending.shape[1] + 1 > stepper.max_seq_len:
            keep = window_events * EVENT_LEN
            pending = np.array(
                [headers[i] + out[i][HEADER_LEN:][-keep:] + list(scores[i][e]) for i in active], dtype=np.int64
            )
            past, past_len = None, 0
        logits, past = stepper.step(pending, past)
        past_len += pending.shape[1]
        offset = choose(logits, offset_ok, active)
        logits, past = stepper.step(offset[:, None], past)
        past_len += 1
        velocity = choose(logits, velocity_ok, active)
        for j, i in enumerate(active.tolist()):
            out[i] += [*scores[i][e], int(offset[j]), int(velocity[j])]
        e += 1
        going = np.array([len(scores[i]) > e for i in active.tolist()], dtype=bool)
        for i in active[~going].tolist():
            out[i].append(vocab.eos_id)
        if not going.all():
            active, velocity = active[going], velocity[going]
            if not len(active):
                break
            past = stepper.select(past, np.flatnonzero(going))
        pending = np.array([[int(v), *scores[i][e]] for v, i in zip(velocity, active.tolist(), strict=True)])
    return out
