"""What a user needs of a model, measured on takes it generates, against the dataset's real performances.

One evaluation is one model (a tier, at one precision) generating a fixed,
seeded set of takes (`take_plan`): for every rudiment, `tempos` tempos drawn
from the real players of that tier (so a beginner is asked for beginner tempos)
times `seeds` takes each, as long as the dataset's performances of that
rudiment (whole 4/4 bars). Every take is decoded to MIDI, read back, and
measured from its notes only (`metrics`, `classifier`):

- conditioning accuracy: the share of takes the rudiment classifier (fitted
  on the real train players) recognises as the requested rudiment, per
  rudiment, with the confusion counts;
- tier realism: the median timing SD and within-position velocity CV of the
  takes against the real performances of the tier (train and validation
  players), and the Frechet distance between the takes' performance features
  and the real tier's, with the distance from the real tier to its nearest
  adjacent real tier as the scale;
- degenerate rate, distinct rate (takes asked the same with two seeds), length
  control (share of takes within 25 % of the requested length);
- grammar: the score of takes decoded *without* the grammar mask (what the
  model has learnt; decoded with it, every take is well formed).

`gate_results` turns an evaluation (and the others of its set: the tier order
and the quantized variants need them) into the blocking gates.

The real side (`real_takes`, `Reference`) is computed once from the dataset's
MIDI files and labels by the `rudiment_classifier` asset; the classifier is
refitted from its feature table where it is needed (deterministic, about a
second).

The package, by seam: `reference` (the real side, on disk too), `takes` (the
take set and its decoding), `measure` (`evaluate`, `evaluate_tiers`), `gates`
(thresholds and `gate_results`).
"""

from music_assets.ml.evaluation.gates import PRECISIONS, gate_results
from music_assets.ml.evaluation.measure import evaluate, evaluate_tiers
from music_assets.ml.evaluation.reference import (
    REPORT_FILE,
    TAKES_FILE,
    Reference,
    load_reference,
    notes_of_midi,
    real_takes,
    take_row,
    write_reference,
)
from music_assets.ml.evaluation.takes import GRAMMAR_EVENTS, EvalSettings, TakeSpec, generate_takes, take_plan

__all__ = [
    "GRAMMAR_EVENTS",
    "PRECISIONS",
    "REPORT_FILE",
    "TAKES_FILE",
    "EvalSettings",
    "Reference",
    "TakeSpec",
    "evaluate",
    "evaluate_tiers",
    "gate_results",
    "generate_takes",
    "load_reference",
    "notes_of_midi",
    "real_takes",
    "take_plan",
    "take_row",
    "write_reference",
]
