"""lora_adapters: one adapter per skill tier on the base model (the sequence is
`music_assets.ml.adapters`), with its gates and checkpoint comparison."""

from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, model_validator

from music_assets.defs import owners
from music_assets.defs import table_metadata as tm
from music_assets.defs.check_results import materialize_with_checks
from music_assets.defs.guards import writing
from music_assets.defs.models.base import base_model
from music_assets.defs.models.common import (
    GRAMMAR_GATE,
    POOL,
    TrainingRunConfig,
    checkpoint_settings,
    listening_md,
    png_md,
    sampling_of,
)
from music_assets.defs.partitions import backfill_policy, tier_partitions
from music_assets.integrity import confine
from music_assets.ml.train_config import LORA_TRAINING
from music_assets.paths import models_dir
from music_assets.progress import ProgressLog
from music_assets.rudiments.constants import SKILL_TIERS


class LoraAdaptersConfig(TrainingRunConfig):
    lora_config: str = "default"  # a file stem in music_assets/ml/lora_configs/ or a path to a JSON file
    # the adapters' shipped settings (and why this learning rate): music_assets.ml.training.LORA_TRAINING
    max_steps: int = LORA_TRAINING.max_steps
    learning_rate: float = LORA_TRAINING.learning_rate
    warmup_steps: int = LORA_TRAINING.warmup_steps
    grad_clip: float = LORA_TRAINING.grad_clip
    checkpoint_every: int = LORA_TRAINING.checkpoint_every
    rollback_lr_factor: float = LORA_TRAINING.rollback_lr_factor
    max_rollbacks: int = LORA_TRAINING.max_rollbacks
    timing_quantile_low: float = Field(default=0.05, ge=0, le=1)
    timing_quantile_high: float = Field(default=0.95, ge=0, le=1)
    listening_samples: int = 2
    # ckpt_path (from TrainingRunConfig) may hold `{tier}`: models/candidate/lora/{tier}/checkpoints/step-00000075

    @model_validator(mode="after")
    def _quantiles_ordered(self) -> "LoraAdaptersConfig":
        if not self.timing_quantile_low < self.timing_quantile_high:
            raise ValueError(
                f"timing_quantile_low {self.timing_quantile_low} must be < timing_quantile_high "
                f"{self.timing_quantile_high}"
            )
        return self


_LORA_CHECKS = [  # reported per tier partition (`checks.materialize_with_checks`)
    dg.AssetCheckSpec(
        "grammar_score",
        asset="lora_adapters",
        blocking=True,
        partitions_def=tier_partitions,
        description=f"the adapter's grammar score (sampled without the grammar mask) >= {GRAMMAR_GATE}",
    ),
    dg.AssetCheckSpec(
        "val_loss_not_worse_than_base",
        asset="lora_adapters",
        blocking=True,
        partitions_def=tier_partitions,
        description="the adapter's validation loss on its tier <= the base model's on that tier",
    ),
    dg.AssetCheckSpec(
        "timing_realism",
        asset="lora_adapters",
        blocking=False,
        partitions_def=tier_partitions,
        description="the median timing deviation of the adapter's generated performances inside its tier's "
        "real range (5-95 % of the tier's train and validation performances, same "
        "measure), and the four tiers' medians ordered beginner > intermediate > "
        "advanced > professional",
    ),
]


@dg.asset(
    owners=owners.MODELS,
    code_version="1",
    group_name="models",
    deps=[base_model],
    pool=POOL,
    kinds={"pytorch"},
    partitions_def=tier_partitions,
    backfill_policy=backfill_policy(),
    check_specs=_LORA_CHECKS,
)
def lora_adapters(context: dg.AssetExecutionContext, config: LoraAdaptersConfig):
    """LoRA adapters (peft) that make the base model play like one skill tier each. Written as candidates
    (`models/candidate/lora/<tier>`) on the candidate base if there is one, else on the promoted base."""
    from music_assets.io import read_json, write_json  # noqa: PLC0415
    from music_assets.ml import adapters, promotion  # noqa: PLC0415
    from music_assets.ml import workflows as wf  # noqa: PLC0415
    from music_assets.ml.corpus import Corpus  # noqa: PLC0415
    from music_assets.ml.lora import load_lora_settings  # noqa: PLC0415

    settings = load_lora_settings(config.lora_config)
    models = models_dir()
    ckpts = (
        {t: confine(config.ckpt_path.format(tier=t), what="ckpt_path") for t in context.partition_keys}
        if config.ckpt_path
        else {}
    )
    promotion.recover(models)
    corpus_dir, base_dir = models / "corpus", promotion.effective(models, "base")
    corpus = Corpus(corpus_dir)
    base, vocab, _ = wf.load_base(base_dir)
    shared = adapters.TierSettings(
        base_dir=base_dir,
        corpus_dir=corpus_dir,
        lora=settings,
        train=config.train_config(
            rollback_lr_factor=config.rollback_lr_factor, max_rollbacks=config.max_rollbacks, save_step_zero=True
        ),
        sampling=sampling_of(config),
        eval_samples=config.eval_samples,
        seed=config.seed,
        listening_samples=config.listening_samples,
        soundfont=config.soundfont,
    )
    ranges = wf.real_timing_ranges(corpus, (config.timing_quantile_low, config.timing_quantile_high))
    reference = None
    if config.compare_checkpoints:
        from music_assets.ml.evaluation import load_reference  # noqa: PLC0415

        reference, _ = load_reference(models / "classifier")
    runs: dict[str, adapters.TierRun] = {}
    for tier in context.partition_keys:
        out = promotion.candidate(models, "lora", tier)
        with writing(context, partitions=[tier]):
            run = adapters.train_tier(
                shared,
                tier,
                out,
                base=base,
                vocab=vocab,
                corpus=corpus,
                real_ranges=ranges,
                log=lambda m, t=tier: context.log.info(f"[{t}] {m}"),
                progress=ProgressLog(context.log.info, f"[{tier}] training", "steps"),
                ckpt_path=ckpts.get(tier),
            )
        if config.compare_checkpoints:
            run.evaluation["checkpoints"] = _adapter_checkpoints(
                context, config, models, base_dir, out, corpus, tier, settings, run.result, reference
            )
        write_json(out / "evaluation.json", run.evaluation)
        runs[tier] = run

    def stored(tier: str) -> dict | None:
        path = promotion.effective(models, "lora", tier) / "evaluation.json"
        return read_json(path) if path.is_file() else None

    medians = adapters.generated_medians({t: r.evaluation for t, r in runs.items()}, stored, SKILL_TIERS)
    results = {
        tier: adapters.tier_checks(tier, run, medians, SKILL_TIERS, GRAMMAR_GATE, config.eval_samples)
        for tier, run in runs.items()
    }
    rows: list[list[Any]] = []
    for tier, run in runs.items():
        ev, result = run.evaluation, run.result
        gen, real = ev["timing_generated"].get(tier), ev["timing_real"]
        rows.append(
            [
                tier,
                ev["grammar_score"],
                ev["val_loss"],
                ev["base_val_loss"],
                ev["val_perplexity"],
                result.rollbacks,
                result.best_step,
                gen["median_ms"] if gen else "n/a",
                f"{real['low_ms']:.1f}..{real['high_ms']:.1f} (median {real['median_ms']:.1f})" if real else "n/a",
                "yes" if adapters.timing_inside(ev, tier) else "no",
                round(result.seconds, 1),
            ]
        )
    table = tm.rows_table(
        [
            "tier",
            "grammar",
            "val loss",
            "base val loss",
            "val perplexity",
            "rollbacks",
            "best step",
            "generated timing median (ms)",
            "real range (ms)",
            "inside",
            "train s",
        ],
        rows,
    )
    metadata: dict[str, Any] = {
        "tiers": table,
        "lora_config": dg.MetadataValue.json(settings),
        "rollbacks": sum(r.result.rollbacks for r in runs.values()),
        "grammar_score_min": min(r.evaluation["grammar_score"] for r in runs.values()),
        "val_perplexity_max": max(r.evaluation["val_perplexity"] for r in runs.values()),
        "path": dg.MetadataValue.path(str(promotion.candidate(models, "lora"))),
        "listening": listening_md([i for r in runs.values() for i in r.evaluation["listening"]]),
    }
    if config.compare_checkpoints:
        ckpt_rows = [
            {**r, "checkpoint": f"{tier}: {r['checkpoint']}"}
            for tier, run in runs.items()
            for r in run.evaluation["checkpoints"]
        ]
        metadata["checkpoints"] = _adapter_checkpoint_table(ckpt_rows)
    for tier, run in runs.items():
        ev, out = run.evaluation, run.folder
        metadata[f"{tier}/val_perplexity"] = ev["val_perplexity"]
        metadata[f"{tier}/grammar_score"] = ev["grammar_score"]
        metadata[f"{tier}/loss_curve"] = dg.MetadataValue.path(str(out / "loss_curve.png"))
        metadata[f"{tier}/adapter_sha256"] = dg.MetadataValue.json(read_json(out / "training.json")["adapter_sha256"])
        metadata[f"{tier}/loss_curve_plot"] = png_md(out / "loss_curve.png", f"{tier} adapter loss curve")
    yield from materialize_with_checks(context, metadata, results)


def _adapter_checkpoints(
    context: dg.AssetExecutionContext,
    config: LoraAdaptersConfig,
    models: Path,
    base_dir: Path,
    out: Path,
    corpus: Any,
    tier: str,
    settings: dict[str, Any],
    result: Any,
    reference: Any,
) -> list[dict[str, Any]]:
    """The evaluation of the tier's every kept checkpoint (the adapter on its base), and of the promoted adapter."""
    from music_assets.ml import workflows as wf  # noqa: PLC0415
    from music_assets.ml.lora import apply_lora  # noqa: PLC0415

    base, vocab, _ = wf.load_base(base_dir)
    measure = wf.conditioning_measure(
        vocab, corpus, reference, [tier], sampling_of(config), checkpoint_settings(config)
    )
    rows = wf.checkpoint_rows(apply_lora(base, settings), out / "checkpoints", measure, chosen_step=result.best_step)
    promoted = models / "lora" / tier / "adapter"
    if promoted.is_dir() and (models / "base" / "model.json").is_file():
        try:
            champion, _ = wf.load_tier_model(models / "base", promoted)
            rows.append(
                {"checkpoint": "promoted", "step": None, "val_loss": None, "chosen": False, **measure(champion)}
            )
        except (wf.ModelFilesError, RuntimeError, ValueError) as exc:
            context.log.warning(f"[{tier}] the promoted adapter is not comparable: {exc}")
    return rows


def _adapter_checkpoint_table(rows: list[dict[str, Any]]) -> dg.MetadataValue:
    out = []
    for r in rows:
        ((tier, v),) = r["tiers"].items()
        out.append(
            {
                "checkpoint": r["checkpoint"],
                "chosen": bool(r.get("chosen")),
                "val_loss": r.get("val_loss"),
                "accuracy": v["conditioning_accuracy"],
                "timing_sd_ms": round(v["timing_sd_ms"], 2),
                "real_timing_sd_ms": round(v["real_timing_sd_ms"], 2),
                "velocity_cv": round(v["velocity_cv"], 4),
                "real_velocity_cv": round(v["real_velocity_cv"], 4),
            }
        )
    cols = [
        ("checkpoint", "string"),
        ("chosen", "bool"),
        ("val_loss", "float"),
        ("accuracy", "float"),
        ("timing_sd_ms", "float"),
        ("real_timing_sd_ms", "float"),
        ("velocity_cv", "float"),
        ("real_velocity_cv", "float"),
    ]
    return tm.table(cols, out)
