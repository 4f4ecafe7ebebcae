"""The models group: token corpus, base transformer, per-tier LoRA adapters, and their gates.

Thin wiring over `music_assets.ml.workflows`; torch, peft and friends are
imported inside the bodies so loading the code location stays fast. Training
steps take the `training` concurrency pool (one at a time across runs) and use
every core. Re-materializing after a kill resumes from the newest valid
checkpoint of the same configuration.
"""

import base64
import math
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, model_validator

from music_assets.defs.checks import materialize_with_checks
from music_assets.defs.guards import clear_errors, writing
from music_assets.defs.partitions import backfill_policy, tier_partitions
from music_assets.paths import data_dir, models_dir, rudiments_dir
from music_assets.progress import ProgressLog
from music_assets.rudiments.constants import SKILL_TIERS, SPLITS

GRAMMAR_GATE = 0.95
MAX_TRUNCATED_FRACTION = 0.05
POOL = "training"


def _png_md(path: Path, alt: str) -> dg.MetadataValue:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{data})")


def md_table(header: list[str], rows: list[list[Any]]) -> dg.MetadataValue:
    """A markdown table for asset metadata; floats to 4 significant digits."""

    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return dg.MetadataValue.md("\n".join(lines))


def _listening_md(items: list[dict[str, Any]]) -> dg.MetadataValue:
    return md_table(
        ["rudiment", "tier", "tempo", "notes", "seconds", "FLAC", "MIDI"],
        [[i["rudiment"], i["tier"], i["tempo_bpm"], i["notes"], i["seconds"], i["flac"], i["midi"]] for i in items],
    )


# --- token_corpus --------------------------------------------------------------------------
class TokenCorpusConfig(dg.Config):
    ticks_per_beat: int = Field(default=384, ge=1)  # TIME_SHIFT and OFFSET unit: 1/384 beat, <= 3.9 ms at 40 BPM
    max_shift_ticks: int = Field(default=384, ge=1)
    max_grid_steps: int = Field(default=32, ge=1)
    velocity_bins: int = Field(default=32, ge=1, le=127)
    tempo_step_bpm: int = Field(default=2, ge=1)
    max_seq_len: int = Field(default=1024, ge=8)


@dg.asset(group_name="models", deps=[dg.AssetKey("rudiment_labels")], kinds={"python", "numpy"})
def token_corpus(context: dg.AssetExecutionContext, config: TokenCorpusConfig) -> dg.MaterializeResult:
    """Every split's rudiment MIDI as event tokens (memory-mappable arrays) plus the vocabulary."""
    import pandas as pd  # noqa: PLC0415

    from music_assets.defs.rudiments import verified_labels  # noqa: PLC0415
    from music_assets.ml.corpus import build_corpus, read_samples  # noqa: PLC0415
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
    if "tempo_bpm" not in samples.columns:
        raise ValueError(f"{labels / 'samples.parquet'}: missing column tempo_bpm")
    subdivisions = subdivisions_from_strokes(strokes, samples)  # each rudiment's grid, for the tokens and the timing
    vocab = Vocab(
        TokenizerConfig.with_grid(
            subdivisions,
            ticks_per_beat=config.ticks_per_beat,
            max_shift_ticks=config.max_shift_ticks,
            velocity_bins=config.velocity_bins,
            tempo_step_bpm=config.tempo_step_bpm,
            max_grid_steps=config.max_grid_steps,
        )
    )
    out = models_dir() / "corpus"
    with writing(context):
        summary = build_corpus(
            samples,
            data_dir(),
            out,
            vocab,
            config.max_seq_len,
            subdivisions,
            source=str(labels / "samples.parquet"),
            progress=ProgressLog(context.log.info, "tokenizing", "files"),
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
            "max_time_resolution_ms": round(vocab.config.max_resolution_ms, 3),
            "sequences": sum(s["sequences"] for s in summary["splits"].values()),
            "tokens": sum(s["tokens"] for s in summary["splits"].values()),
            "splits": md_table(
                ["split", "sequences", "tokens", "mean length", "max length", "truncated", "by tier"], rows
            ),
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
    return dg.AssetCheckResult(
        passed=not missing and frac <= MAX_TRUNCATED_FRACTION,
        metadata={
            "missing_tier_splits": ", ".join(missing) or "none",
            "truncated_fraction": frac,
            "sequences": total,
            "splits": ", ".join(SPLITS),
        },
    )


# --- base_model -----------------------------------------------------------------------------
class GenerationConfig(dg.Config):
    """How evaluation and listening samples are generated (also the defaults written to model.json)."""

    temperature: float = Field(default=1.0, gt=0)
    top_k: int = Field(default=0, ge=0)
    # nucleus sampling: the demo-size models leave a few percent of probability on tokens of the wrong
    # kind or far-off grid moves; cutting that tail keeps performances whole (grammar) and in time.
    # 0.9 also cut the tails of the loose tiers' timing (beginner and intermediate came out a third
    # tighter than they play); 0.95 keeps them and still cuts the stray tokens
    top_p: float = Field(default=0.95, gt=0, le=1)
    eval_samples: int = Field(default=64, ge=1)
    listening_samples: int = Field(default=3, ge=0)
    soundfont: str = "/usr/share/sounds/sf2/TimGM6mb.sf2"


class TrainingRunConfig(GenerationConfig):
    """The training settings both models share; each asset sets its own defaults."""

    max_steps: int
    batch_size: int = 8
    learning_rate: float
    warmup_steps: int
    grad_clip: float
    checkpoint_every: int
    watch_samples: int = 8
    watch_threshold: float = 0.8
    seed: int = 0
    num_threads: int = 0  # 0 = every core (up to 8)

    @model_validator(mode="after")
    def _valid_training(self) -> "TrainingRunConfig":
        self.train_config()  # TrainConfig checks every range: a bad value fails here, before any file is touched
        return self

    def train_config(self, **extra: Any):
        from music_assets.ml.training import TrainConfig  # noqa: PLC0415

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

    # about 2.5 minutes on 2 cores; at 500 steps the base still mixed the tiers' timing, and the
    # professional adapter could not sharpen it to that tier's
    max_steps: int = 1000
    learning_rate: float = 3e-3
    warmup_steps: int = 40
    grad_clip: float = 1.0
    checkpoint_every: int = 250


def _sampling(config: GenerationConfig):
    from music_assets.ml.generation import SamplingConfig  # noqa: PLC0415

    return SamplingConfig(temperature=config.temperature, top_k=config.top_k, top_p=config.top_p)


@dg.asset(
    group_name="models",
    deps=[token_corpus],
    pool=POOL,
    kinds={"pytorch"},
    check_specs=[
        dg.AssetCheckSpec(
            "grammar_score",
            asset="base_model",
            blocking=True,
            description=f"grammar score of generated sequences >= {GRAMMAR_GATE}",
        )
    ],
)
def base_model(context: dg.AssetExecutionContext, config: BaseModelConfig) -> dg.MaterializeResult:
    """A small decoder-only transformer trained on the train split of the whole corpus."""
    from music_assets.io import write_json  # noqa: PLC0415
    from music_assets.ml import workflows as wf  # noqa: PLC0415
    from music_assets.ml.corpus import Corpus  # noqa: PLC0415

    corpus_dir, out = models_dir() / "corpus", models_dir() / "base"
    train_cfg = config.train_config()
    model_cfg = {
        "d_model": config.d_model,
        "n_layers": config.n_layers,
        "n_heads": config.n_heads,
        "d_ff": config.d_ff,
        "dropout": config.dropout,
    }
    with writing(context):  # one writer of models/base at a time, whatever the pool's limit
        result = wf.train_base(
            corpus_dir,
            out,
            model_cfg,
            train_cfg,
            _sampling(config),
            log=context.log.info,
            progress=ProgressLog(context.log.info, "training", "steps"),
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
    passed = ev["grammar_score"] >= GRAMMAR_GATE
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(out)),
            "parameters": meta["parameters"],
            "val_perplexity": ev["val_perplexity"],
            "val_loss": ev["val_loss"],
            "grammar_score": ev["grammar_score"],
            "rollbacks": result.rollbacks,
            "best_step": result.best_step,
            "resumed_from_step": result.resumed_from if result.resumed_from is not None else -1,
            "train_seconds": round(result.seconds, 1),
            "by_tier": md_table(
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
            "loss_curve": dg.MetadataValue.path(str(out / "loss_curve.png")),
            "loss_curve_plot": _png_md(out / "loss_curve.png", "base model loss curve"),
            "listening": _listening_md(listening),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="grammar_score",
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


# --- lora_adapters ----------------------------------------------------------------------------
class LoraAdaptersConfig(TrainingRunConfig):
    lora_config: str = "default"  # a file stem in music_assets/ml/lora_configs/ or a path to a JSON file
    max_steps: int = 100
    learning_rate: float = 2e-3
    warmup_steps: int = 10
    grad_clip: float = 0.5
    checkpoint_every: int = 25
    rollback_lr_factor: float = 0.5
    max_rollbacks: int = 3
    timing_quantile_low: float = Field(default=0.05, ge=0, le=1)
    timing_quantile_high: float = Field(default=0.95, ge=0, le=1)
    listening_samples: int = 2

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
        description=f"the adapter's grammar score on generated sequences >= {GRAMMAR_GATE}",
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
    group_name="models",
    deps=[base_model],
    pool=POOL,
    kinds={"pytorch"},
    partitions_def=tier_partitions,
    backfill_policy=backfill_policy(),
    check_specs=_LORA_CHECKS,
)
def lora_adapters(context: dg.AssetExecutionContext, config: LoraAdaptersConfig):
    """LoRA adapters (peft) that make the base model play like one skill tier each."""
    from music_assets.io import read_json, write_json  # noqa: PLC0415
    from music_assets.ml import timing  # noqa: PLC0415
    from music_assets.ml import workflows as wf  # noqa: PLC0415
    from music_assets.ml.corpus import Corpus  # noqa: PLC0415
    from music_assets.ml.lora import load_lora_settings  # noqa: PLC0415
    from music_assets.ml.training import evaluate_loss  # noqa: PLC0415

    settings = load_lora_settings(config.lora_config)
    corpus_dir, base_dir = models_dir() / "corpus", models_dir() / "base"
    corpus = Corpus(corpus_dir)
    base, vocab, _ = wf.load_base(base_dir)
    train_cfg = config.train_config(
        rollback_lr_factor=config.rollback_lr_factor, max_rollbacks=config.max_rollbacks, save_step_zero=True
    )
    ranges = wf.real_timing_ranges(corpus, (config.timing_quantile_low, config.timing_quantile_high))
    tier_meta: dict[str, tuple[dict[str, Any], Any, Path]] = {}
    for tier in context.partition_keys:
        out = models_dir() / "lora" / tier
        with writing(context, partitions=[tier]):
            result = wf.train_adapter(
                base_dir,
                corpus_dir,
                out,
                tier,
                settings,
                train_cfg,
                _sampling(config),
                log=lambda m, t=tier: context.log.info(f"[{t}] {m}"),
                progress=ProgressLog(context.log.info, f"[{tier}] training", "steps"),
            )
            model, _ = wf.load_tier_model(base_dir, out / "adapter")  # verifies the adapter's sha256
        ev = wf.evaluate(
            model, vocab, corpus, tier=tier, n_samples=config.eval_samples, sampling=_sampling(config), seed=config.seed
        )
        ev["base_val_loss"] = evaluate_loss(base, corpus.split("validation").sequences(tier), vocab.pad_id)
        ev["rollbacks"] = result.rollbacks
        ev["timing_real"] = ranges.get(tier)
        ev["listening"] = wf.write_listening(
            ev["sequences"], vocab, out / "listening", tier, config.listening_samples, config.soundfont
        )
        write_json(out / "evaluation.json", ev)
        tier_meta[tier] = (ev, result, out)

    # the ordering needs every tier: those not in this run come from their last evaluation on disk
    medians: dict[str, float] = {}
    for tier in SKILL_TIERS:
        path = models_dir() / "lora" / tier / "evaluation.json"
        ev = tier_meta[tier][0] if tier in tier_meta else (read_json(path) if path.is_file() else None)
        if ev and tier in ev["timing_generated"]:
            medians[tier] = ev["timing_generated"][tier]["median_ms"]
    ordered = timing.tiers_ordered(medians, SKILL_TIERS) and len(medians) == len(SKILL_TIERS)

    results: dict[str, list[dg.AssetCheckResult]] = {}
    rows: list[list[Any]] = []
    for tier, (ev, result, _out) in tier_meta.items():
        gen = ev["timing_generated"].get(tier)
        real = ev["timing_real"]
        inside = bool(gen and real and real["low_ms"] <= gen["median_ms"] <= real["high_ms"])
        results[tier] = [
            dg.AssetCheckResult(
                check_name="grammar_score",
                passed=ev["grammar_score"] >= GRAMMAR_GATE,
                metadata={
                    "grammar_score": ev["grammar_score"],
                    "threshold": GRAMMAR_GATE,
                    "samples": config.eval_samples,
                    "min_sequence_score": ev["grammar_min"],
                    "rollbacks": result.rollbacks,
                },
            ),
            dg.AssetCheckResult(
                check_name="val_loss_not_worse_than_base",
                passed=ev["val_loss"] <= ev["base_val_loss"],
                metadata={"val_loss": ev["val_loss"], "base_val_loss": ev["base_val_loss"]},
            ),
            dg.AssetCheckResult(
                check_name="timing_realism",
                passed=inside and ordered,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "inside_real_range": inside,
                    "tiers_ordered": ordered,
                    "generated_median_ms": gen["median_ms"] if gen else "n/a",
                    "real_range_ms": f"{real['low_ms']:.1f}..{real['high_ms']:.1f}" if real else "n/a",
                    "generated_medians_ms": dg.MetadataValue.json({k: round(v, 2) for k, v in medians.items()}),
                },
            ),
        ]
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
                "yes" if inside else "no",
                round(result.seconds, 1),
            ]
        )
    table = md_table(
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
        "rollbacks": sum(r.rollbacks for _, r, _ in tier_meta.values()),
        "grammar_score_min": min(ev["grammar_score"] for ev, _, _ in tier_meta.values()),
        "val_perplexity_max": max(ev["val_perplexity"] for ev, _, _ in tier_meta.values()),
        "path": dg.MetadataValue.path(str(models_dir() / "lora")),
        "listening": _listening_md([i for ev, _, _ in tier_meta.values() for i in ev["listening"]]),
    }
    for tier, (ev, _result, out) in tier_meta.items():
        metadata[f"{tier}/val_perplexity"] = ev["val_perplexity"]
        metadata[f"{tier}/grammar_score"] = ev["grammar_score"]
        metadata[f"{tier}/loss_curve"] = dg.MetadataValue.path(str(out / "loss_curve.png"))
        metadata[f"{tier}/adapter_sha256"] = dg.MetadataValue.json(read_json(out / "training.json")["adapter_sha256"])
        metadata[f"{tier}/loss_curve_plot"] = _png_md(out / "loss_curve.png", f"{tier} adapter loss curve")
    yield from materialize_with_checks(context, metadata, results)


defs = dg.Definitions(assets=[token_corpus, base_model, lora_adapters], asset_checks=[token_corpus_covers_tiers])
