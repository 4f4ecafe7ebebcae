"""The training run of the kill-and-resume test (run in a subprocess, and in the test process)."""

from __future__ import annotations

import sys
from pathlib import Path

from music_assets.ml.corpus import Corpus
from music_assets.ml.model import ModelConfig
from music_assets.ml.training import TrainConfig, Trainer
from music_assets.ml.workflows import init_model, prompts_for

MAX_STEPS = 160
CONFIG = TrainConfig(
    max_steps=MAX_STEPS,
    batch_size=4,
    learning_rate=5e-3,
    warmup_steps=5,
    checkpoint_every=20,
    keep_last=3,
    watch_samples=2,
    watch_max_new_tokens=40,
    watch_threshold=0.5,  # a tiny model sampled without the grammar mask: this keeps rollbacks out of this test
    num_threads=1,
    seed=3,
)


def make_trainer(
    corpus_dir: Path, ckpt_dir: Path, log=lambda _m: None, config: TrainConfig = CONFIG, progress=None
) -> Trainer:
    corpus = Corpus(corpus_dir)
    vocab = corpus.vocab
    train, val = corpus.split("train").sequences(), corpus.split("validation").sequences()
    cfg = ModelConfig(vocab_size=len(vocab), d_model=32, n_layers=1, n_heads=2, d_ff=64, dropout=0.1, max_seq_len=512)
    return Trainer(
        init_model(cfg, seed=3),
        train,
        val,
        vocab,
        config,
        ckpt_dir,
        watch_prompts=prompts_for(val, 2, vocab),
        log=log,
        progress=progress,
    )


if __name__ == "__main__":
    make_trainer(Path(sys.argv[1]), Path(sys.argv[2])).fit()
