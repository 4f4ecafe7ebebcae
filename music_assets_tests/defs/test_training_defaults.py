"""The Dagster training configs and the domain's shipped settings are one set of numbers."""

from __future__ import annotations

import dataclasses

from music_assets.defs.models.training import BaseModelConfig, LoraAdaptersConfig
from music_assets.ml.train_config import BASE_TRAINING, LORA_TRAINING


def test_the_asset_configs_default_to_the_shipped_training_settings() -> None:
    assert BaseModelConfig().train_config() == BASE_TRAINING
    lora = LoraAdaptersConfig()
    extra = {"rollback_lr_factor": lora.rollback_lr_factor, "max_rollbacks": lora.max_rollbacks, "save_step_zero": True}
    assert lora.train_config(**extra) == LORA_TRAINING
    # every setting a run exposes in the UI is one the domain knows
    fields = {f.name for f in dataclasses.fields(BASE_TRAINING)}
    assert {"max_steps", "checkpoint_every", "learning_rate"} <= fields
