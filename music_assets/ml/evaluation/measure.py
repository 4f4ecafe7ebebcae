"""One model's take sets generated and measured against the reference (`evaluate`, `evaluate_tiers`)."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from music_assets.ml import metrics
from music_assets.ml.classifier import accuracy_report
from music_assets.ml.decoding import Stepper
from music_assets.ml.evaluation.gates import LENGTH_TOLERANCE
from music_assets.ml.evaluation.reference import Reference, frechet_matrix, median, notes_of_midi, take_row
from music_assets.ml.evaluation.takes import (
    GRAMMAR_EVENTS,
    EvalSettings,
    TakeSpec,
    generate_takes,
    one_per_rudiment,
    take_plan,
)
from music_assets.ml.grammar import grammar_report
from music_assets.ml.sampling import SamplingConfig
from music_assets.ml.score import ScoreTemplate
from music_assets.ml.tokenizer import Vocab


def evaluate(
    stepper: Stepper,
    vocab: Vocab,
    templates: Mapping[str, ScoreTemplate],
    subdivisions: Mapping[str, int],
    reference: Reference,
    tier: str,
    sampling: SamplingConfig,
    settings: EvalSettings = EvalSettings(),
    rudiments: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Generate the tier's take set with `stepper` and measure it (the keys of `evaluation/<tier>/<precision>.json`
    but the precision, the gates and the model's sha256, which the caller adds)."""
    return evaluate_tiers(stepper, vocab, templates, subdivisions, reference, [tier], sampling, settings, rudiments)[
        tier
    ]


def evaluate_tiers(
    stepper: Stepper,
    vocab: Vocab,
    templates: Mapping[str, ScoreTemplate],
    subdivisions: Mapping[str, int],
    reference: Reference,
    tiers: Sequence[str],
    sampling: SamplingConfig,
    settings: EvalSettings = EvalSettings(),
    rudiments: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """`evaluate` for several tiers of one model (the base model plays every tier), decoded in one batch."""
    rudiments = list(rudiments or templates)
    plans = {tier: take_plan(reference, rudiments, tier, settings) for tier in tiers}
    for tier, plan in plans.items():
        if not plan:
            raise ValueError(f"no real takes of tier {tier!r} to take tempos from")
    every = [s for tier in tiers for s in plans[tier]]
    seqs = generate_takes(stepper, vocab, templates, every, sampling, settings)
    checks = [s for tier in tiers for s in one_per_rudiment(plans[tier])[: settings.grammar_takes]]
    unmasked = generate_takes(
        stepper, vocab, templates, checks, sampling, settings, masked=False, max_events=GRAMMAR_EVENTS
    )
    out, at = {}, 0
    for tier in tiers:
        n = len(plans[tier])
        grammar = [grammar_report(s, vocab) for spec, s in zip(checks, unmasked, strict=True) if spec.tier == tier]
        out[tier] = _measure(
            vocab, templates, subdivisions, reference, tier, plans[tier], seqs[at : at + n], grammar, sampling, settings
        )
        at += n
    return out


def _measure(
    vocab: Vocab,
    templates: Mapping[str, ScoreTemplate],
    subdivisions: Mapping[str, int],
    reference: Reference,
    tier: str,
    plan: Sequence[TakeSpec],
    seqs: Sequence[list[int]],
    grammar: Sequence[Any],
    sampling: SamplingConfig,
    settings: EvalSettings,
) -> dict[str, Any]:
    """The measures of one tier's takes (the keys of its evaluation file but the caller's)."""
    measured = [_measure_take(vocab, templates, subdivisions, spec, seq) for spec, seq in zip(plan, seqs, strict=True)]
    rows = [row for row, _ in measured]
    truth = [spec.rudiment for spec in plan]
    degenerate_why = [row["degenerate"] for row in rows]
    groups: dict[tuple[str, float], list[tuple[tuple[float, ...], tuple[int, ...]]]] = {}
    for spec, (_, notes) in zip(plan, measured, strict=True):
        groups.setdefault((spec.rudiment, spec.tempo_bpm), []).append(notes)
    predicted = _classify(reference, [row["features"] for row in rows])
    acc = accuracy_report(truth, predicted)
    df = pd.DataFrame(rows)
    real = reference.realism(tier)
    frechet = _frechet(reference, tier, df)
    lengths = [
        r.get("length_beats") is not None and abs(r["length_beats"] / r["beats"] - 1.0) <= LENGTH_TOLERANCE
        for r in rows
    ]
    heldout = reference.heldout
    return {
        "tier": tier,
        "takes": len(plan),
        "conditioning_accuracy": acc["accuracy"],
        "classifier_heldout_accuracy": heldout["accuracy"],
        "classifier_heldout_accuracy_tier": heldout["per_tier"].get(tier, heldout["accuracy"]),
        "per_rudiment_accuracy": acc["per_rudiment"],
        "confusion": acc["confusion"],
        "timing_sd_ms": median(df.get("timing_sd_ms")),
        "real_timing_sd_ms": median(real["timing_sd_ms"]),
        "velocity_cv": median(df.get("velocity_cv")),
        "real_velocity_cv": median(real["velocity_cv"]),
        "frechet_distance": frechet,
        "frechet_scale": reference.frechet_scale(tier),
        "degenerate_rate": float(np.mean([w is not None for w in degenerate_why])),
        "degenerate_examples": sorted({f"{r['rudiment']}: {r['degenerate']}" for r in rows if r["degenerate"]})[:10],
        "distinct_rate": metrics.distinct_rate(list(groups.values())),
        "length_within_25pct": float(np.mean(lengths)),
        "grammar_score": float(np.mean([g.score for g in grammar])),
        "grammar_takes": len(grammar),
        "grammar_score_masked": float(np.mean([grammar_report(s, vocab).score for s in seqs])),
        "sampling": asdict(sampling),
        "settings": asdict(settings),
        "take_rows": [
            {k: r.get(k) for k in ("rudiment", "tempo_bpm", "beats", "seed_index", "timing_sd_ms", "velocity_cv")}
            | {"predicted": p, "degenerate": r["degenerate"]}
            for r, p in zip(rows, predicted, strict=True)
        ],
    }


def _measure_take(
    vocab: Vocab,
    templates: Mapping[str, ScoreTemplate],
    subdivisions: Mapping[str, int],
    spec: TakeSpec,
    seq: list[int],
) -> tuple[dict[str, Any], tuple[tuple[float, ...], tuple[int, ...]]]:
    """One take decoded to MIDI, read back and measured: its row (`degenerate`: why, or None) and its notes."""
    perf = vocab.decode(seq, tempo_bpm=spec.tempo_bpm)
    ended = bool(seq) and seq[-1] == vocab.eos_id
    if perf.notes:
        midi = io.BytesIO()
        vocab.to_pretty_midi(perf).write(midi)
        onsets, velocities, tempo = notes_of_midi(midi.getvalue())
    else:
        onsets, velocities, tempo = [], [], spec.tempo_bpm
    t = templates[spec.rudiment]
    sub = int(subdivisions.get(spec.rudiment, t.steps_per_beat))
    stats = metrics.take_stats(onsets, velocities, tempo, sub, t.cycle_beats) if onsets else None
    why = "no notes" if stats is None else None
    if stats is not None:
        why = metrics.is_degenerate(
            stats, spec.beats, metrics.written_interval_ratio(t, spec.tempo_bpm, spec.beats), ended
        )
    row = take_row(onsets, velocities, tempo, t, sub) if stats is not None else {"features": None}
    return {**asdict(spec), **row, "degenerate": why}, (tuple(onsets), tuple(velocities))


def _classify(reference: Reference, feats: Sequence[Any]) -> list[str]:
    """The classifier's rudiment for each take; "<too short>" for a take without features."""
    classifiable = [i for i, f in enumerate(feats) if f is not None]
    predicted = ["<too short>"] * len(feats)
    for i, p in zip(
        classifiable, reference.classifier.predict(np.array([feats[i] for i in classifiable])), strict=True
    ):
        predicted[i] = p
    return predicted


def _frechet(reference: Reference, tier: str, df: pd.DataFrame) -> float:
    """The Frechet distance between the takes' performance features and the real tier's (inf under two takes)."""
    gen_frechet = frechet_matrix(df) if "f_log_timing_sd" in df else np.zeros((0, len(metrics.FRECHET_FEATURES)))
    if len(gen_frechet) >= 2:
        (x,) = metrics.standardize(gen_frechet, scale=reference.feature_scale)
        return metrics.frechet_distance(*metrics.gaussian(x), *reference.tier_frechet(tier))
    return math.inf
