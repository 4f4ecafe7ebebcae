"""Tiny trained tier models in the models folder layout, shared by the export tests.

`tiny_models_root` builds, once per test session (per xdist worker), a data dir
with `models/corpus`, `models/base` (a 2-layer, d_model 32 transformer trained
for a few seconds: it keeps the grammar at a low temperature) and
`models/lora/<tier>/adapter` for `TIERS` (peft adapters trained a few steps on
the tier's sequences, so merging them changes the weights). Tests copy what
they need into their own data dir; `export_tiny_tier` adds `models/onnx/<tier>`
(also built once).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from music_assets_tests.ml.fake_dataset import write_fake_dataset

TIERS = ("advanced", "professional")  # neighbours in SKILL_TIERS: "advanced...professional" is a range of two
MODEL = {"d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64, "dropout": 0.1}
# Sampling at which the tiny model keeps the grammar when sampled without the mask, and one at which
# it breaks it.
GOOD_SAMPLING = {"temperature": 0.5, "top_k": 3}
BAD_SAMPLING = {"temperature": 3.0}

_built: dict[str, Path] = {}


def tiny_models_root(factory: pytest.TempPathFactory) -> Path:
    if "root" not in _built:
        from music_assets.ml.generation import SamplingConfig
        from music_assets.ml.training import TrainConfig
        from music_assets.ml.workflows import train_base

        root = factory.mktemp("tiny_tier_models")
        models = root / "models"
        corpus = _build_corpus(root)
        base_cfg = TrainConfig(
            max_steps=200,
            batch_size=8,
            learning_rate=5e-3,
            warmup_steps=10,
            checkpoint_every=200,
            watch_samples=2,
            watch_max_new_tokens=16,
            num_threads=1,
        )
        train_base(corpus, models / "base", MODEL, base_cfg, SamplingConfig(), log=lambda _m: None)
        for tier in TIERS:
            _train_adapter(models, tier)
        _built["root"] = root
    return _built["root"]


def _build_corpus(root: Path) -> Path:
    """The fake rudiment dataset with more players than the model tests' corpus (more to learn from)."""
    from music_assets_tests.ml.conftest import corpus_from_labels

    write_fake_dataset(root, num_profiles=20)
    return corpus_from_labels(root)


def _train_adapter(models: Path, tier: str, steps: int = 8) -> None:
    """A `default` LoRA adapter, a few Adam steps on the tier's train sequences, saved with `save_adapter`
    (the Trainer's checkpoints and watch are not needed here, and cost seconds)."""
    import torch

    from music_assets.io import write_json
    from music_assets.ml.corpus import Corpus
    from music_assets.ml.lora import apply_lora, load_lora_settings, save_adapter
    from music_assets.ml.training import lm_loss, make_batch
    from music_assets.ml.workflows import load_base
    from music_assets.seeding import stable_seed

    base, vocab, meta = load_base(models / "base")
    seqs = Corpus(models / "corpus").split("train").sequences(tier)
    with torch.random.fork_rng(devices=[]):  # LoRA init and dropout draw from the global generator
        torch.manual_seed(stable_seed("tiny adapter", tier) & 0x7FFF_FFFF)
        model = apply_lora(base, load_lora_settings("default"))
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=5e-3)
        model.train()
        for _ in range(steps):
            inputs, targets = make_batch(seqs, vocab.pad_id, vocab.predicted)
            opt.zero_grad()
            lm_loss(model, inputs, targets).backward()
            opt.step()
    save_adapter(model, models / "lora" / tier / "adapter")
    write_json(models / "lora" / tier / "training.json", {"tier": tier, "base_weights_sha256": meta["weights_sha256"]})


def export_tiny_tier(factory: pytest.TempPathFactory, tier: str = TIERS[0]) -> Path:
    """`models/onnx/<tier>` of the tiny models (exported once); returns the data dir."""
    from music_assets.ml.export import export_tier

    root = tiny_models_root(factory)
    out = root / "models" / "onnx" / tier
    if not (out / "model.json").is_file():
        m = root / "models"
        export_tier(m / "base", m / "lora" / tier / "adapter", m / "corpus", out, tier)
    return root


def copy_models(src_root: Path, dest_root: Path, *parts: str) -> None:
    """Copy `models/<part>` folders from one data dir to another."""
    for part in parts:
        shutil.copytree(src_root / "models" / part, dest_root / "models" / part, dirs_exist_ok=True)
