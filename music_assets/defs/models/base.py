"""base_model: the drum transformer trained on every tier, its checkpoints compared, its gate."""

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, model_validator

from music_assets.checks import CheckResult
from music_assets.defs import owners
from music_assets.defs import table_metadata as tm
from music_assets.defs.check_results import materialize_with_checks
from music_assets.defs.guards import writing
from music_assets.defs.models.common import (
    GRAMMAR_GATE,
    POOL,
    TrainingRunConfig,
    checkpoint_settings,
    listening_md,
    png_md,
    sampling_of,
)
from music_assets.defs.models.corpus import token_corpus
from music_assets.integrity import confine
from music_assets.ml.train_config import BASE_TRAINING
from music_assets.paths import models_dir
from music_assets.progress import ProgressLog
from music_assets.rudiments.constants import SKILL_TIERS


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
            sampling_of(config),
            log=context.log.info,
            progress=ProgressLog(context.log.info, "training", "steps"),
            ckpt_path=ckpt,
        )

    model, vocab, meta = wf.load_base(out)  # evaluate what was written, not what is in memory
    corpus = Corpus(corpus_dir)
    ev = wf.evaluate(
        model, vocab, corpus, tier=None, n_samples=config.eval_samples, sampling=sampling_of(config), seed=config.seed
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
            "loss_curve_plot": png_md(out / "loss_curve.png", "base model loss curve"),
            "listening": listening_md(listening),
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
        vocab, corpus, reference, list(SKILL_TIERS), sampling_of(config), checkpoint_settings(config)
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
