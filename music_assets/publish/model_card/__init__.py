"""The model card of the Hub model repository (`README.md` with YAML front matter), from the evaluation.

Pure functions, no Dagster. The numbers come only from the evaluation files
`model_evaluation` writes (`<data dir>/models/evaluation/<tier>/<precision>.json`
and `summary.json`, see `REQUIRED_KEYS`), and each file must have evaluated
the very model file that is staged: its `model_sha256` must equal the staged
`model.onnx`'s sha256. A missing, malformed or stale evaluation raises
`ModelCardError` naming the file; there is no card with blank or stale numbers.

The card states what the evaluation found, failing gates included: a banner
under the title counts the models that fail a gate, and every failing gate is
listed with its value and threshold. The metrics table has one row per staged
model; `parse_metrics_table` reads it back, so a check can compare the card
written with the evaluation files (`metric_cells` formats a row the same way).

The front matter is built with `huggingface_hub.ModelCardData` (license,
`library_name: onnx`, tags, `datasets:` the dataset repository).

The package, by seam: `evaluations` (reading and checking the evaluation
files), `tables` (the metrics table, written and read back), `sections` (the
generated sections), `render` (the whole card).
"""

from music_assets.publish.model_card.evaluations import (
    PRECISIONS,
    REQUIRED_KEYS,
    RUNNER,
    SUMMARY_FILE,
    Evaluations,
    ModelCardError,
    StagedModel,
    load_evaluations,
    validate_evaluation,
)
from music_assets.publish.model_card.render import ModelCardSettings, front_matter, render_model_card
from music_assets.publish.model_card.sections import TrainingFacts
from music_assets.publish.model_card.tables import METRICS_HEADER, metric_cells, parse_metrics_table

__all__ = [
    "METRICS_HEADER",
    "PRECISIONS",
    "REQUIRED_KEYS",
    "RUNNER",
    "SUMMARY_FILE",
    "Evaluations",
    "ModelCardError",
    "ModelCardSettings",
    "StagedModel",
    "TrainingFacts",
    "front_matter",
    "load_evaluations",
    "metric_cells",
    "parse_metrics_table",
    "render_model_card",
    "validate_evaluation",
]
