"""token_corpus: the labelled performances as token sequences per split, and its gate."""

import dagster as dg
from pydantic import Field

from music_assets.checks import CheckResult
from music_assets.defs import owners
from music_assets.defs import table_metadata as tm
from music_assets.defs.check_results import asset_check_result
from music_assets.defs.guards import clear_errors, writing
from music_assets.defs.models.common import MAX_TRUNCATED_FRACTION
from music_assets.paths import models_dir, rudiments_dir
from music_assets.progress import ProgressLog
from music_assets.rudiments.constants import SKILL_TIERS, SPLITS


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
