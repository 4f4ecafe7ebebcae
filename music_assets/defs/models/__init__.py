"""The models group: the corpus (`corpus`), base model (`base`) and tier adapters (`lora`), gathered with
their shared settings (`common`) in `training`; their ONNX exports and
quantized variants (`export`), the rudiment classifier and model evaluation with champion/challenger
promotion (`evaluation`), the Hub model repository (`hf_model`) and the weekly retrain (`automation`)."""

import dagster as dg

from music_assets.defs.models import automation, evaluation, export, hf_model, training

defs = dg.Definitions.merge(training.defs, export.defs, evaluation.defs, hf_model.defs, automation.defs)
