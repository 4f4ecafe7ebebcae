"""LoRA settings files, the ACE-Step rank, save_pretrained and reload onto a fresh base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from music_assets.ml.corpus import Corpus
from music_assets.ml.lora import LoraSettingsError, apply_lora, load_lora_settings, save_adapter
from music_assets.ml.training import lm_loss, make_batch
from music_assets.ml.workflows import load_base, load_tier_model


def _train_steps(model: torch.nn.Module, corpus_dir: Path, steps: int) -> None:
    corpus = Corpus(corpus_dir)
    seqs = corpus.split("train").sequences("advanced")[:4]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = lm_loss(model, *make_batch(seqs, corpus.vocab.pad_id, corpus.vocab.predicted))
        loss.backward()
        opt.step()
        opt.zero_grad()


def test_packaged_settings() -> None:
    default = load_lora_settings("default")
    assert (default["r"], default["lora_alpha"], default["use_rslora"], default["lora_dropout"]) == (16, 32, True, 0.05)
    assert default["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    ace = load_lora_settings("ace_step")
    assert (ace["r"], ace["lora_alpha"], ace["use_rslora"]) == (256, 32, True)


def test_bad_settings_files(tmp_path: Path) -> None:
    with pytest.raises(LoraSettingsError, match="no LoRA settings file"):
        load_lora_settings("nope")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"r": 8, "target_modules": ["q_proj"], "rank_typo": 3}))
    with pytest.raises(LoraSettingsError, match="unknown LoraConfig fields \\['rank_typo'\\]"):
        load_lora_settings(bad)


def test_ace_step_rank_trains_a_step(tiny_base: Path, tiny_corpus: Path) -> None:
    base, _, _ = load_base(tiny_base)
    model = apply_lora(base, load_lora_settings("ace_step"))
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.shape[1] == 256 and not p.any() for p in lora_b)
    assert not any(p.requires_grad for n, p in model.named_parameters() if "lora_" not in n)
    _train_steps(model, tiny_corpus, 1)
    assert any(p.any() for p in lora_b)


def test_adapter_reloads_onto_a_fresh_base_with_identical_outputs(
    tiny_base: Path, tiny_corpus: Path, tmp_path: Path
) -> None:
    base, _, _ = load_base(tiny_base)
    model = apply_lora(base, load_lora_settings("default"))
    _train_steps(model, tiny_corpus, 3)
    model.eval()
    save_adapter(model, tmp_path / "adapter")
    assert {p.name for p in (tmp_path / "adapter").iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}
    ids = torch.tensor(Corpus(tiny_corpus).split("validation").sequences()[0][:40].astype("int64"))[None]
    with torch.no_grad():
        expected = model(ids)[0]
        reloaded, _ = load_tier_model(tiny_base, tmp_path / "adapter")
        assert torch.equal(reloaded(ids)[0], expected)
        merged, _ = load_tier_model(tiny_base, tmp_path / "adapter", merge=True)
        assert type(merged).__name__ == "DrumTransformer"
        torch.testing.assert_close(merged(ids)[0], expected, atol=1e-5, rtol=1e-5)
        plain, _, _ = load_base(tiny_base)
        assert not torch.allclose(plain(ids)[0], expected)  # the adapter does change the model
