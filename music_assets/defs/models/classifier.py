"""rudiment_classifier (models group): every real performance measured from its MIDI, and the classifier
that model_evaluation uses to tell which rudiment a take plays, fitted on the train players."""

import dagster as dg

from music_assets.defs import owners
from music_assets.defs import table_metadata as tm
from music_assets.paths import data_dir, models_dir, rudiments_dir
from music_assets.progress import ProgressLog


class RudimentClassifierConfig(dg.Config):
    seed: int = 0  # the random forest's


@dg.asset(
    owners=owners.MODELS,
    code_version="1",
    group_name="models",
    deps=[dg.AssetKey("rudiment_labels"), dg.AssetKey("token_corpus")],
    kinds={"python", "scikitlearn"},
)
def rudiment_classifier(context: dg.AssetExecutionContext, config: RudimentClassifierConfig) -> dg.MaterializeResult:
    """Every real performance measured from its MIDI file, and the rudiment classifier fitted on the train players
    (onsets and velocities only, tempo-invariant) with its accuracy on the held-out test players."""
    from music_assets.ml import evaluation  # noqa: PLC0415
    from music_assets.ml.corpus import Corpus, read_samples  # noqa: PLC0415

    corpus = Corpus(models_dir() / "corpus")
    samples = read_samples(rudiments_dir() / "labels" / "samples.parquet")
    takes = evaluation.real_takes(
        samples,
        data_dir(),
        corpus.templates,
        corpus.subdivisions,
        progress=ProgressLog(context.log.info, "measuring", "real takes"),
    )
    out = models_dir() / "classifier"
    report = evaluation.write_reference(out, takes, seed=config.seed)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(out)),
            **tm.parquet_columns({"real_takes": out / "real_takes.parquet"}, main="real_takes"),
            "heldout_accuracy": report["heldout_accuracy"],
            "train_takes": report["train_takes"],
            "test_takes": report["test_takes"],
            "heldout_by_tier": dg.MetadataValue.json({k: round(v, 4) for k, v in report["heldout_per_tier"].items()}),
            "heldout_per_rudiment": tm.table(
                [("rudiment", "string"), ("accuracy", "float")],
                [{"rudiment": k, "accuracy": v} for k, v in report["heldout_per_rudiment"].items()],
            ),
            "heldout_confusion": confusion_table([("test players", report["confusion"])], include_diagonal=True),
            "real_tiers": tm.table(
                [
                    ("tier", "string"),
                    ("takes", "int"),
                    ("timing_sd_ms", "float"),
                    ("velocity_cv", "float"),
                    ("frechet_scale", "float"),
                ],
                [{"tier": t, **v} for t, v in report["real"].items()],
            ),
        }
    )


def confusion_table(sets: list[tuple[str, dict[str, dict[str, int]]]], include_diagonal: bool) -> dg.MetadataValue:
    rows = [
        {"model": name, "requested": truth, "recognised_as": pred, "takes": n}
        for name, confusion in sets
        for truth, preds in confusion.items()
        for pred, n in preds.items()
        if include_diagonal or pred != truth
    ]
    return tm.table([("model", "string"), ("requested", "string"), ("recognised_as", "string"), ("takes", "int")], rows)
