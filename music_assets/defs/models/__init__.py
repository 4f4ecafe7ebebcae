"""The models group: the corpus, base model and tier adapters (`training`), their ONNX exports and
quantized variants (`export`), the rudiment classifier and model evaluation with champion/challenger
promotion (`evaluation`), and the Hub model repository (`hf_model`)."""

import dagster as dg

from music_assets.defs.models import evaluation, export, hf_model, training

defs = dg.Definitions.merge(training.defs, export.defs, evaluation.defs, hf_model.defs)
