"""The generated side: the fixed, seeded take set of a tier (`take_plan`) and its batched decoding."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from music_assets.ml.decoding import Stepper, TakeRequest, perform, prompt_for
from music_assets.ml.evaluation.reference import BEATS_PER_BAR, Reference
from music_assets.ml.sampling import SamplingConfig
from music_assets.ml.score import ScoreTemplate
from music_assets.ml.tokenizer import Vocab
from music_assets.seeding import stable_rng


@dataclass(frozen=True)
class EvalSettings:
    tempos: int = 2  # per rudiment, from the tier's real tempos
    seeds: int = 4  # takes per tempo
    seed: int = 0
    grammar_takes: int = 40  # takes decoded without the mask for the grammar score (one per rudiment)
    batch_size: int = 256
    max_beats: int | None = None  # cap on the takes' length (None: as long as the dataset's performances)


@dataclass(frozen=True)
class TakeSpec:
    rudiment: str
    tier: str
    tempo_bpm: float
    beats: int
    seed_index: int

    def request(self) -> TakeRequest:
        return TakeRequest(self.rudiment, self.tier, self.tempo_bpm, self.beats)


def take_plan(reference: Reference, rudiments: Sequence[str], tier: str, settings: EvalSettings) -> list[TakeSpec]:
    """The fixed take set of one tier (see the module docstring)."""
    plan = []
    for slug in rudiments:
        real = reference.tempos(slug, tier)
        if not real:
            continue
        n = settings.tempos
        tempos = [real[min(len(real) - 1, int((i + 0.5) * len(real) / n))] for i in range(n)]
        beats = math.ceil(reference.beats(slug) / BEATS_PER_BAR) * BEATS_PER_BAR
        if settings.max_beats is not None:
            beats = min(beats, settings.max_beats)
        plan += [TakeSpec(slug, tier, t, beats, s) for t in tempos for s in range(settings.seeds)]
    return plan


def take_rng(settings: EvalSettings, spec: TakeSpec) -> np.random.Generator:
    return stable_rng(settings.seed, "take", spec.rudiment, spec.tier, spec.tempo_bpm, spec.beats, spec.seed_index)


def generate_takes(
    stepper: Stepper,
    vocab: Vocab,
    templates: Mapping[str, ScoreTemplate],
    plan: Sequence[TakeSpec],
    sampling: SamplingConfig,
    settings: EvalSettings,
    masked: bool = True,
    max_events: int | None = None,
) -> list[list[int]]:
    """The plan's takes, in one batched decoding (`max_events`: each take cut to that many strokes)."""
    prompts = [prompt_for(vocab, templates, s.request()) for s in plan]
    if max_events is not None:
        prompts = [(h, score[:max_events]) for h, score in prompts]
    rngs = [take_rng(settings, s) for s in plan]
    return perform(stepper, vocab, prompts, sampling, rngs, masked=masked, batch_size=settings.batch_size)


GRAMMAR_EVENTS = 32  # strokes of each take sampled without the mask: the layout is the same at every stroke


def one_per_rudiment(plan: Sequence[TakeSpec]) -> list[TakeSpec]:
    seen, out = set(), []
    for s in plan:
        if s.rudiment not in seen:
            seen.add(s.rudiment)
            out.append(s)
    return out
