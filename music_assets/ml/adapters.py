"""One skill tier's adapter from training to its gates: train, reload as it will be used, evaluate,
render takes to listen to; then the three gates each tier's adapter must pass.

`lora_adapters` (defs/models/lora.py) runs `train_tier` for each tier of its run and turns
`tier_checks` into its asset checks; the order of the steps is the one the files depend on (the
evaluation reads the adapter back from disk, so what is measured is what was saved).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from music_assets.checks import CheckResult
from music_assets.ml import timing
from music_assets.ml import workflows as wf
from music_assets.ml.corpus import Corpus
from music_assets.ml.sampling import SamplingConfig
from music_assets.ml.train_config import TrainConfig
from music_assets.ml.training import TrainResult, evaluate_loss


@dataclass(frozen=True)
class TierSettings:
    """What every tier of one run shares."""

    base_dir: Path
    corpus_dir: Path
    lora: Mapping[str, Any]  # peft LoraConfig fields
    train: TrainConfig
    sampling: SamplingConfig
    eval_samples: int
    seed: int
    listening_samples: int
    soundfont: str


@dataclass
class TierRun:
    evaluation: dict[str, Any]  # written as the tier's evaluation.json
    result: TrainResult
    folder: Path


def train_tier(
    s: TierSettings,
    tier: str,
    out: Path,
    *,
    base: Any,
    vocab: Any,
    corpus: Corpus,
    real_ranges: Mapping[str, Any],
    log: Callable[[str], None] = print,
    progress: Callable[..., None] | None = None,
    ckpt_path: Path | None = None,
) -> TierRun:
    """Train (or resume) `tier`'s adapter into `out`, reload it from disk (its sha256 verified), evaluate
    it against the base's validation loss and the tier's real timing range, and render its listening takes."""
    result = wf.train_adapter(
        s.base_dir, s.corpus_dir, out, tier, dict(s.lora), s.train, s.sampling, log=log, progress=progress,
        ckpt_path=ckpt_path,
    )  # fmt: skip
    model, _ = wf.load_tier_model(s.base_dir, out / "adapter")
    ev = wf.evaluate(model, vocab, corpus, tier=tier, n_samples=s.eval_samples, sampling=s.sampling, seed=s.seed)
    ev["base_val_loss"] = evaluate_loss(
        base, corpus.split("validation").sequences(tier), vocab.pad_id, predicted=vocab.predicted
    )
    ev["rollbacks"] = result.rollbacks
    ev["timing_real"] = real_ranges.get(tier)
    ev["listening"] = wf.write_listening(
        ev["sequences"], vocab, out / "listening", tier, s.listening_samples, s.soundfont
    )
    return TierRun(ev, result, out)


def generated_medians(
    fresh: Mapping[str, Mapping[str, Any]], stored: Callable[[str], Mapping[str, Any] | None], tiers: Sequence[str]
) -> dict[str, float]:
    """Each tier's generated timing median: from this run's evaluation, else from the one on disk
    (`stored`): the ordering gate needs every tier, a run may train only some."""
    medians: dict[str, float] = {}
    for tier in tiers:
        ev = fresh.get(tier) or stored(tier)
        if ev and tier in ev["timing_generated"]:
            medians[tier] = ev["timing_generated"][tier]["median_ms"]
    return medians


def timing_inside(ev: Mapping[str, Any], tier: str) -> bool:
    """The adapter's generated timing median lies inside its tier's real range."""
    gen, real = ev["timing_generated"].get(tier), ev["timing_real"]
    return bool(gen and real and real["low_ms"] <= gen["median_ms"] <= real["high_ms"])


def tier_checks(
    tier: str,
    run: TierRun,
    medians: Mapping[str, float],
    tiers: Sequence[str],
    grammar_gate: float,
    eval_samples: int,
) -> list[CheckResult]:
    """The adapter's gates: grammar (blocking), validation loss not worse than the base's (blocking), and
    timing realism (a warning): inside the tier's real range, with every tier's medians in tier order."""
    ev, result = run.evaluation, run.result
    gen, real = ev["timing_generated"].get(tier), ev["timing_real"]
    ordered = timing.tiers_ordered(medians, tiers) and len(medians) == len(tiers)
    inside = timing_inside(ev, tier)
    return [
        CheckResult(
            name="grammar_score",
            passed=ev["grammar_score"] >= grammar_gate,
            metadata={
                "grammar_score": ev["grammar_score"],
                "threshold": grammar_gate,
                "samples": eval_samples,
                "min_sequence_score": ev["grammar_min"],
                "rollbacks": result.rollbacks,
            },
        ),
        CheckResult(
            name="val_loss_not_worse_than_base",
            passed=ev["val_loss"] <= ev["base_val_loss"],
            metadata={"val_loss": ev["val_loss"], "base_val_loss": ev["base_val_loss"]},
        ),
        CheckResult(
            name="timing_realism",
            passed=inside and ordered,
            severity="warn",
            metadata={
                "inside_real_range": inside,
                "tiers_ordered": ordered,
                "generated_median_ms": gen["median_ms"] if gen else "n/a",
                "real_range_ms": f"{real['low_ms']:.1f}..{real['high_ms']:.1f}" if real else "n/a",
                "generated_medians_ms": {k: round(v, 2) for k, v in medians.items()},
            },
        ),
    ]
