"""What the models group's training assets share: the gates' constants, the run settings every
model exposes (sampling, training, listening), and their metadata helpers."""

import base64
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, model_validator

from music_assets.audio import soundfonts
from music_assets.defs import table_metadata as tm
from music_assets.ml.train_config import BASE_TRAINING

GRAMMAR_GATE = 0.95
MAX_TRUNCATED_FRACTION = 0.05
POOL = "training"


def png_md(path: Path, alt: str) -> dg.MetadataValue:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{data})")


def listening_md(items: list[dict[str, Any]]) -> dg.MetadataValue:
    return tm.rows_table(
        ["rudiment", "tier", "tempo", "notes", "seconds", "FLAC", "MIDI"],
        [[i["rudiment"], i["tier"], i["tempo_bpm"], i["notes"], i["seconds"], i["flac"], i["midi"]] for i in items],
    )


class GenerationConfig(dg.Config):
    """How evaluation and listening takes are generated (also the defaults written to model.json)."""

    temperature: float = Field(default=1.0, gt=0)
    top_k: int = Field(default=0, ge=0)
    # the full distribution: a player's timing spread *is* the model's spread of OFFSET tokens, and the
    # grammar mask already keeps every sampled token of the right kind. Nucleus sampling (top_p 0.95,
    # the default of the free-running models before) made every tier tighter than it plays.
    top_p: float = Field(default=1.0, gt=0, le=1)
    eval_samples: int = Field(default=64, ge=1)
    listening_samples: int = Field(default=3, ge=0)
    soundfont: str = str(soundfonts.DEFAULT.path)


class TrainingRunConfig(GenerationConfig):
    """The training settings both models share; each asset sets its own defaults."""

    max_steps: int
    batch_size: int = BASE_TRAINING.batch_size
    learning_rate: float
    warmup_steps: int
    grad_clip: float
    checkpoint_every: int
    watch_samples: int = BASE_TRAINING.watch_samples
    watch_threshold: float = BASE_TRAINING.watch_threshold
    seed: int = BASE_TRAINING.seed
    num_threads: int = BASE_TRAINING.num_threads  # 0 = every core (up to 8)
    # the evaluation of every kept checkpoint (and of the promoted model) in one table: tempos per rudiment
    # and tier of the take set (0 = no table)
    compare_checkpoints: int = 1
    # use this checkpoint folder's weights instead of the best checkpoint's (relative to the data dir, e.g.
    # models/candidate/base/checkpoints/step-00000750; see the checkpoint table)
    ckpt_path: str | None = None

    @model_validator(mode="after")
    def _valid_training(self) -> "TrainingRunConfig":
        self.train_config()  # TrainConfig checks every range: a bad value fails here, before any file is touched
        return self

    def train_config(self, **extra: Any):
        from music_assets.ml.train_config import TrainConfig  # noqa: PLC0415

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


def sampling_of(config: GenerationConfig):
    from music_assets.ml.generation import SamplingConfig  # noqa: PLC0415

    return SamplingConfig(temperature=config.temperature, top_k=config.top_k, top_p=config.top_p)


def checkpoint_settings(config: TrainingRunConfig):
    from music_assets.ml.evaluation import EvalSettings  # noqa: PLC0415

    # two bars a take: enough to tell the checkpoints apart, a third of the time of the full lengths
    return EvalSettings(tempos=config.compare_checkpoints, seeds=1, seed=config.seed, grammar_takes=8, max_beats=8)
