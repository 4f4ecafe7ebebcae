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

import dagster as dg

from music_assets.defs.models.base import BaseModelConfig, base_model, checkpoint_table
from music_assets.defs.models.common import (
    GRAMMAR_GATE,
    MAX_TRUNCATED_FRACTION,
    POOL,
    GenerationConfig,
    TrainingRunConfig,
)
from music_assets.defs.models.corpus import TokenCorpusConfig, token_corpus, token_corpus_covers_tiers
from music_assets.defs.models.lora import LoraAdaptersConfig, lora_adapters

__all__ = [
    "GRAMMAR_GATE",
    "MAX_TRUNCATED_FRACTION",
    "POOL",
    "BaseModelConfig",
    "GenerationConfig",
    "LoraAdaptersConfig",
    "TokenCorpusConfig",
    "TrainingRunConfig",
    "base_model",
    "checkpoint_table",
    "defs",
    "lora_adapters",
    "token_corpus",
    "token_corpus_covers_tiers",
]

defs = dg.Definitions(assets=[token_corpus, base_model, lora_adapters], asset_checks=[token_corpus_covers_tiers])
