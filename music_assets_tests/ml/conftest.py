"""A tiny rudiment dataset and token corpus shared by the model tests (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from music_assets.ml.corpus import build_corpus
from music_assets.ml.score import library_templates
from music_assets.ml.timing import subdivisions_from_strokes
from music_assets.ml.tokenizer import TokenizerConfig, Vocab
from music_assets_tests.ml.fake_dataset import write_fake_dataset


def corpus_from_labels(root: Path, max_seq_len: int = 512) -> Path:
    """Tokenize `root`'s labels into `root/models/corpus` as token_corpus does; returns the corpus dir."""
    labels = root / "rudiments" / "labels"
    samples = pd.read_parquet(labels / "samples.parquet")
    strokes = pd.read_parquet(labels / "strokes.parquet", columns=["sample_id", "intended_time_ms", "is_grace"])
    templates = library_templates()
    vocab = Vocab(TokenizerConfig.with_grid({slug: t.steps_per_beat for slug, t in templates.items()}))
    out = root / "models" / "corpus"
    build_corpus(
        samples,
        labels / "strokes.parquet",
        out,
        vocab,
        templates,
        max_seq_len,
        subdivisions_from_strokes(strokes, samples),
    )
    return out


def build_tiny_corpus(root: Path) -> Path:
    """The fake labels + MIDI under `root`, tokenized into `root/models/corpus`; returns the corpus dir."""
    write_fake_dataset(root)
    return corpus_from_labels(root)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_corpus(tmp_path_factory.mktemp("tiny_data"))


TINY_MODEL = {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "dropout": 0.0}


@pytest.fixture(scope="session")
def tiny_base(tiny_corpus: Path) -> Path:
    """A tiny base model trained on the tiny corpus (it learns the sequence layout); returns its folder."""
    from music_assets.ml.generation import SamplingConfig
    from music_assets.ml.training import TrainConfig
    from music_assets.ml.workflows import train_base

    out = tiny_corpus.parent / "base"
    cfg = TrainConfig(
        max_steps=120,
        batch_size=8,
        learning_rate=1e-2,
        warmup_steps=10,
        checkpoint_every=60,
        watch_samples=2,
        watch_max_new_tokens=16,
        num_threads=1,
    )
    train_base(tiny_corpus, out, TINY_MODEL, cfg, SamplingConfig(), log=lambda _m: None)
    return out
