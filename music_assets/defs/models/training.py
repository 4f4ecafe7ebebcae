"""The models group: token corpus, base transformer, per-tier LoRA adapters, and their gates.

Thin wiring over `music_assets.ml.workflows`; torch, peft and friends are
imported inside the bodies so loading the code location stays fast. Training
steps take the `training` concurrency pool (one at a time across runs) and use
every core. Re-materializing after a kill resumes from the newest valid
checkpoint of the same configuration.

The models are written as candidates under `models/candidate/` and read their
inputs from the candidate where there is one, else from the promoted models
(`music_assets.ml.promotion`); `model_evaluation` promotes a candidate set once
it measures not worse than the models in place.
"""

import base64
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, model_validator

from music_assets.audio import soundfonts
from music_assets.checks import CheckResult
from music_assets.defs import owners
from music_assets.defs import table_metadata as tm
from music_assets.defs.check_results import asset_check_result, materialize_with_checks
from music_assets.defs.guards import clear_errors, writing
from music_assets.defs.partitions import backfill_policy, tier_partitions
from music_assets.integrity import confine
from music_assets.ml.train_config import BASE_TRAINING, LORA_TRAINING
from music_assets.paths import models_dir, rudiments_dir
from music_assets.progress import ProgressLog
from music_assets.rudiments.constants import SKILL_TIERS, SPLITS

GRAMMAR_GATE = 0.95
MAX_TRUNCATED_FRACTION = 0.05
POOL = "training"


def _png_md(path: Path, alt: str) -> dg.MetadataValue:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{data})")


def _listening_md(items: list[dict[str, Any]]) -> dg.MetadataValue:
    return tm.rows_table(
        ["rudiment", "tier", "tempo", "notes", "seconds", "FLAC", "MIDI"],
        [[i["rudiment"], i["tier"], i["tempo_bpm"], i["notes"], i["seconds"], i["flac"], i["midi"]] for i in items],
    )


# --- token_corpus --------------------------------------------------------------------------
class TokenCorpusConfig(dg.Config):
    velocity_bins: int = Field(default=32, ge=1, le=127)
    tempo_step_bpm: int = Field(default=2, ge=1)
    offset_step_ms: int = Field(default=2, ge=1)  # timing resolution of OFFSET tokens
    max_offset_ms: int = Field(default=600, ge=1)
    max_grid_steps: int = Field(default=48, ge=1)
    max_seq_len: int = Field(default=1024, ge=8)


@dg.asset(
    owners=owners.MODELS,
    code_version="1",
    group_name="models",
    deps=[dg.AssetKey("rudiment_labels")],
    kinds={"python", "numpy"},
)
def token_corpus(context: dg.AssetExecutionContext, config: TokenCorpusConfig) -> dg.MaterializeResult:
    """Every split's rudiment performances as score-conditioned tokens (memory-mappable arrays), the vocabulary
    and every rudiment's written score."""
    import pandas as pd  # noqa: PLC0415

    from music_assets.defs.rudiments.assets import verified_labels  # noqa: PLC0415
    from music_assets.ml.corpus import build_corpus, read_samples  # noqa: PLC0415
    from music_assets.ml.score import library_templates  # noqa: PLC0415
    from music_assets.ml.timing import subdivisions_from_strokes  # noqa: PLC0415
    from music_assets.ml.tokenizer import TokenizerConfig, Vocab  # noqa: PLC0415

    labels = rudiments_dir() / "labels"
    with clear_errors():  # the tables as rudiment_labels wrote them, and every MIDI file they name
        verified_labels("token_corpus", files_of=("rudiment_performances",))
    samples = read_samples(labels / "samples.parquet")
    strokes_path = labels / "strokes.parquet"
    if not strokes_path.is_file():
        raise FileNotFoundError(f"{strokes_path}: not found (materialize rudiment_labels first)")
    strokes = pd.read_parquet(strokes_path, columns=["sample_id", "intended_time_ms", "is_grace"])
    timing_grid = subdivisions_from_strokes(strokes, samples)  # each rudiment's timing grid, for the timing measure
    del strokes
    templates = library_templates()
    vocab = Vocab(
        TokenizerConfig.with_grid(
            {slug: t.steps_per_beat for slug, t in templates.items()},
            velocity_bins=config.velocity_bins,
            tempo_step_bpm=config.tempo_step_bpm,
            offset_step_ms=config.offset_step_ms,
            max_offset_ms=config.max_offset_ms,
            max_grid_steps=config.max_grid_steps,
        )
    )
    out = models_dir() / "corpus"
    with writing(context):
        summary = build_corpus(
            samples,
            strokes_path,
            out,
            vocab,
            templates,
            config.max_seq_len,
            timing_grid,
            source=str(labels / "samples.parquet"),
            progress=ProgressLog(context.log.info, "tokenizing", "performances"),
        )
    rows = [
        [
            split,
            s["sequences"],
            s["tokens"],
            round(s["mean_length"], 1),
            s["max_length"],
            s["truncated"],
            ", ".join(f"{k} {v}" for k, v in s["by_tier"].items()),
        ]
        for split, s in summary["splits"].items()
    ]
    context.log.info(f"corpus: {summary['splits']}")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(out)),
            "vocab_size": len(vocab),
            "offset_step_ms": config.offset_step_ms,
            "sequences": sum(s["sequences"] for s in summary["splits"].values()),
            "tokens": sum(s["tokens"] for s in summary["splits"].values()),
            "splits": tm.rows_table(
                ["split", "sequences", "tokens", "mean length", "max length", "truncated", "by tier"], rows
            ),
            **tm.parquet_columns({s: out / f"{s}.index.parquet" for s in SPLITS}, main="train"),
        }
    )


@dg.asset_check(asset=token_corpus, blocking=True)
def token_corpus_covers_tiers() -> dg.AssetCheckResult:
    """Every skill tier has train and validation sequences, and few sequences were truncated."""
    from music_assets.ml.corpus import Corpus  # noqa: PLC0415

    corpus = Corpus(models_dir() / "corpus")
    missing = [
        f"{tier}/{split}"
        for tier in SKILL_TIERS
        for split in ("train", "validation")
        if not corpus.summary["splits"][split]["by_tier"].get(tier)
    ]
    total = sum(s["sequences"] for s in corpus.summary["splits"].values())
    truncated = sum(s["truncated"] for s in corpus.summary["splits"].values())
    frac = truncated / total if total else 1.0
    return asset_check_result(
        CheckResult(
            passed=not missing and frac <= MAX_TRUNCATED_FRACTION,
            metadata={
                "missing_tier_splits": ", ".join(missing) or "none",
                "truncated_fraction": frac,
                "sequences": total,
                "splits": ", ".join(SPLITS),
            },
        )
    )


# --- base_model -----------------------------------------------------------------------------
class GenerationConfig(dg.Config):
    """How evaluation and listening takes are generated (also the defaults written to model.json)."""

    temperature: float = Field(default=1.0, gt=0)
    top_k: int = Field(default=0, ge=0)
    # the full distribution: a player's timing spread *is* the model's spread of OFFSET tokens, and the
    # grammar mask already keeps every sampled token of the right kind. Nucleus sampling (top_p 0.95,
    # the default of the free-running models before) made every tier tighter than it plays.
    top_p: float = Field(default=1.0, gt=0, le=1)
    eval_samples: int = Field(default=64, ge=1)
    listening_samples: int = Field(default=3, ge=0)
    soundfont: str = str(soundfonts.DEFAULT.path)


class TrainingRunConfig(GenerationConfig):
    """The training settings both models share; each asset sets its own defaults."""

    max_steps: int
    batch_size: int = BASE_TRAINING.batch_size
    learning_rate: float
    warmup_steps: int
    grad_clip: float
    checkpoint_every: int
    watch_samples: int = BASE_TRAINING.watch_samples
    watch_threshold: float = BASE_TRAINING.watch_threshold
    seed: int = BASE_TRAINING.seed
    num_threads: int = BASE_TRAINING.num_threads  # 0 = every core (up to 8)
    # the evaluation of every kept checkpoint (and of the promoted model) in one table: tempos per rudiment
    # and tier of the take set (0 = no table)
    compare_checkpoints: int = 1
    # use this checkpoint folder's weights instead of the best checkpoint's (relative to the data dir, e.g.
    # models/candidate/base/checkpoints/step-00000750; see the checkpoint table)
    ckpt_path: str | None = None

    @model_validator(mode="after")
    def _valid_training(self) -> "TrainingRunConfig":
        self.train_config()  # TrainConfig checks every range: a bad value fails here, before any file is touched
        return self

    def train_config(self, **extra: Any):
        from music_assets.ml.train_config import TrainConfig  # noqa: PLC0415

        return TrainConfig(
            max_steps=self.max_steps,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            warmup_steps=self.warmup_steps,
            grad_clip=self.grad_clip,
            checkpoint_every=self.checkpoint_every,
            watch_samples=self.watch_samples,
            watch_threshold=self.watch_threshold,
            seed=self.seed,
            num_threads=self.num_threads,
            **extra,
        )


class BaseModelConfig(TrainingRunConfig):
    d_model: int = Field(default=128, ge=1)
    n_layers: int = Field(default=4, ge=1)
    n_heads: int = Field(default=4, ge=1)
    d_ff: int = Field(default=512, ge=1)
    dropout: float = Field(default=0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "BaseModelConfig":
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} must be a multiple of n_heads {self.n_heads}")
        return self

    max_steps: int = BASE_TRAINING.max_steps
    learning_rate: float = BASE_TRAINING.learning_rate
    warmup_steps: int = BASE_TRAINING.warmup_steps
    grad_clip: float = BASE_TRAINING.grad_clip
    checkpoint_every: int = BASE_TRAINING.checkpoint_every


def _sampling(config: GenerationConfig):
    from music_assets.ml.generation import SamplingConfig  # noqa: PLC0415

    return SamplingConfig(temperature=config.temperature, top_k=config.top_k, top_p=config.top_p)


def checkpoint_table(rows: list[dict[str, Any]], tiers: list[str]) -> dg.MetadataValue:
    """One row per checkpoint (and the promoted model): validation loss, and per tier the conditioning
    accuracy and the timing SD against the real tier's."""
    cols = [("checkpoint", "string"), ("chosen", "bool"), ("val_loss", "float"), ("mean_accuracy", "float")]
    for t in tiers:
        cols += [(f"{t}_accuracy", "float"), (f"{t}_timing_sd_ms", "float"), (f"{t}_real_timing_sd_ms", "float")]
    out = []
    for r in rows:
        rec: dict[str, Any] = {
            "checkpoint": r["checkpoint"],
            "chosen": bool(r.get("chosen")),
            "val_loss": r.get("val_loss"),
            "mean_accuracy": float(sum(v["conditioning_accuracy"] for v in r["tiers"].values()) / len(r["tiers"])),
        }
        for t, v in r["tiers"].items():
            rec[f"{t}_accuracy"] = v["conditioning_accuracy"]
            rec[f"{t}_timing_sd_ms"] = round(v["timing_sd_ms"], 2)
            rec[f"{t}_real_timing_sd_ms"] = round(v["real_timing_sd_ms"], 2)
        out.append(rec)
    return tm.table(cols, out)


def _checkpoint_settings(config: TrainingRunConfig):
    from music_assets.ml.evaluation import EvalSettings  # noqa: PLC0415

    # two bars a take: enough to tell the checkpoints apart, a third of the time of the full lengths
    return EvalSettings(tempos=config.compare_checkpoints, seeds=1, seed=config.seed, grammar_takes=8, max_beats=8)


@dg.asset(
    owners=owners.MODELS,
    code_version="1",
    group_name="models",
    deps=[token_corpus, dg.AssetKey("rudiment_classifier")],
    pool=POOL,
    kinds={"pytorch"},
    check_specs=[
        dg.AssetCheckSpec(
            "grammar_score",
            asset="base_model",
            blocking=True,
            description=f"grammar score of performances sampled without the grammar mask >= {GRAMMAR_GATE}",
        )
    ],
)
def base_model(context: dg.AssetExecutionContext, config: BaseModelConfig) -> Iterator:
    """A small decoder-only transformer trained on the train split of the whole corpus: it plays a rudiment's
    written strokes (timing and velocity of each) at the tier and tempo of its header. Written as a candidate
    (`models/candidate/base`); `model_evaluation` promotes it."""
    from music_assets.io import write_json  # noqa: PLC0415
    from music_assets.ml import promotion  # noqa: PLC0415
    from music_assets.ml import workflows as wf  # noqa: PLC0415
    from music_assets.ml.corpus import Corpus  # noqa: PLC0415

    models = models_dir()
    ckpt = (
        confine(config.ckpt_path, what="ckpt_path") if config.ckpt_path else None
    )  # validated before anything is written
    promotion.recover(models)
    corpus_dir, out = models / "corpus", promotion.candidate(models, "base")
    train_cfg = config.train_config()
    model_cfg = {
        "d_model": config.d_model,
        "n_layers": config.n_layers,
        "n_heads": config.n_heads,
        "d_ff": config.d_ff,
        "dropout": config.dropout,
    }
    with writing(context):  # one writer of models/candidate/base at a time, whatever the pool's limit
        result = wf.train_base(
            corpus_dir,
            out,
            model_cfg,
            train_cfg,
            _sampling(config),
            log=context.log.info,
            progress=ProgressLog(context.log.info, "training", "steps"),
            ckpt_path=ckpt,
        )

    model, vocab, meta = wf.load_base(out)  # evaluate what was written, not what is in memory
    corpus = Corpus(corpus_dir)
    ev = wf.evaluate(
        model, vocab, corpus, tier=None, n_samples=config.eval_samples, sampling=_sampling(config), seed=config.seed
    )
    ev["val_loss_by_tier"] = wf.per_tier_val_loss(model, vocab, corpus)
    real_timing = wf.real_timing_ranges(corpus, (0.05, 0.95))
    listening = wf.write_listening(
        ev["sequences"], vocab, out / "listening", "base", config.listening_samples, config.soundfont
    )
    ev["listening"] = listening
    write_json(out / "evaluation.json", ev)
    metadata: dict[str, Any] = {}
    if config.compare_checkpoints:
        rows = _base_checkpoints(context, config, models, out, corpus, result.best_step)
        write_json(out / "checkpoints.json", rows)
        metadata["checkpoints"] = checkpoint_table(rows, list(SKILL_TIERS))
    passed = ev["grammar_score"] >= GRAMMAR_GATE
    yield from materialize_with_checks(
        context,
        {
            "path": dg.MetadataValue.path(str(out)),
            "parameters": meta["parameters"],
            "val_perplexity": ev["val_perplexity"],
            "val_loss": ev["val_loss"],
            "grammar_score": ev["grammar_score"],
            "grammar_score_masked": ev["grammar_score_masked"],
            "rollbacks": result.rollbacks,
            "best_step": result.best_step,
            "resumed_from_step": result.resumed_from if result.resumed_from is not None else -1,
            "train_seconds": round(result.seconds, 1),
            "by_tier": tm.rows_table(
                ["tier", "val loss", "val perplexity", "generated timing median (ms)", "real timing median (ms)"],
                [
                    [
                        t,
                        v,
                        math.exp(v),
                        ev["timing_generated"].get(t, {}).get("median_ms", "n/a"),
                        real_timing.get(t, {}).get("median_ms", "n/a"),
                    ]
                    for t, v in ev["val_loss_by_tier"].items()
                ],
            ),
            **metadata,
            "loss_curve": dg.MetadataValue.path(str(out / "loss_curve.png")),
            "loss_curve_plot": _png_md(out / "loss_curve.png", "base model loss curve"),
            "listening": _listening_md(listening),
        },
        [
            CheckResult(
                name="grammar_score",
                passed=passed,
                metadata={
                    "grammar_score": ev["grammar_score"],
                    "threshold": GRAMMAR_GATE,
                    "samples": config.eval_samples,
                    "min_sequence_score": ev["grammar_min"],
                    "ended_with_eos": ev["ended_with_eos"],
                    **ev["grammar_totals"],
                },
            )
        ],
    )


def _base_checkpoints(
    context: dg.AssetExecutionContext, config: BaseModelConfig, models: Path, out: Path, corpus: Any, chosen: int
) -> list[dict[str, Any]]:
    """The evaluation of every kept checkpoint of the run, and of the promoted base (the base model plays every
    tier through its header)."""
    from music_assets.ml import evaluation  # noqa: PLC0415
    from music_assets.ml import workflows as wf  # noqa: PLC0415

    reference, _ = evaluation.load_reference(models / "classifier")
    model, vocab, _ = wf.load_base(out)
    measure = wf.conditioning_measure(
        vocab, corpus, reference, list(SKILL_TIERS), _sampling(config), _checkpoint_settings(config)
    )
    rows = wf.checkpoint_rows(model, out / "checkpoints", measure, chosen_step=chosen)
    promoted = models / "base"
    if (promoted / "model.json").is_file():
        try:
            champion, _, _ = wf.load_base(promoted)
            rows.append(
                {"checkpoint": "promoted", "step": None, "val_loss": None, "chosen": False, **measure(champion)}
            )
        except (wf.ModelFilesError, RuntimeError) as exc:  # a promoted base of another shape: no row
            context.log.warning(f"the promoted base is not comparable: {exc}")
    context.log.info(f"checkpoints: {rows}")
    return rows


# --- lora_adapters ----------------------------------------------------------------------------
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
        sampling=_sampling(config),
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
        "listening": _listening_md([i for r in runs.values() for i in r.evaluation["listening"]]),
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
        metadata[f"{tier}/loss_curve_plot"] = _png_md(out / "loss_curve.png", f"{tier} adapter loss curve")
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
    measure = wf.conditioning_measure(vocab, corpus, reference, [tier], _sampling(config), _checkpoint_settings(config))
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


defs = dg.Definitions(assets=[token_corpus, base_model, lora_adapters], asset_checks=[token_corpus_covers_tiers])
