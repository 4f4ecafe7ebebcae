"""Issue 22, item 4: a corrupted LoRA adapter must not be merged and exported.

Before: flipped bytes in adapter_model.safetensors were merged and exported, and onnx_parity passed
(it compared the export with the corrupted merge). Base weights and ONNX files were verified by
sha256 on load; the adapter was not. Now the adapter's manifest records every file's sha256 when it
is saved, and loading it (to evaluate, merge, export or as the parity reference) verifies them.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from music_assets.io import sha256_file
from music_assets.ml.generation import SamplingConfig
from music_assets.ml.lora import load_lora_settings
from music_assets.ml.training import TrainConfig
from music_assets.ml.workflows import train_adapter

TIER = "beginner"


@pytest.fixture(scope="module")
def adapter(tiny_base: Path, tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny adapter trained and saved by the real training workflow; returns its lora/<tier> folder."""
    out = tmp_path_factory.mktemp("lora") / TIER
    cfg = TrainConfig(
        max_steps=4,
        batch_size=4,
        warmup_steps=1,
        checkpoint_every=2,
        watch_samples=2,
        watch_threshold=0.0,
        watch_max_new_tokens=8,
        save_step_zero=True,
        num_threads=1,
    )
    train_adapter(tiny_base, tiny_corpus, out, TIER, load_lora_settings("default"), cfg, SamplingConfig(), log=print)
    return out


def _flip_a_weight(weights: Path) -> None:
    """Flip one bit in the tensor data of a safetensors file (after its JSON header): it still loads."""
    data = bytearray(weights.read_bytes())
    header = struct.unpack("<Q", data[:8])[0]
    data[8 + header + (len(data) - 8 - header) // 2] ^= 0x10
    weights.write_bytes(bytes(data))


def test_a_flipped_byte_in_the_adapter_stops_the_export(
    adapter: Path, tiny_base: Path, tiny_corpus: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    from music_assets.ml.export import export_tier
    from music_assets.ml.workflows import load_tier_model

    folder = tmp_path / TIER
    shutil.copytree(adapter, folder)
    weights = folder / "adapter" / "adapter_model.safetensors"
    recorded = sha256_file(weights)  # as saved
    _flip_a_weight(weights)
    load_file(str(weights))  # the damage keeps the file loadable: only its hash tells

    out = tmp_path / "onnx" / TIER
    with pytest.raises(Exception, match="sha256") as err:
        export_tier(tiny_base, folder / "adapter", tiny_corpus, out, TIER)
    text = str(err.value)
    assert str(weights) in text and f"does not match {recorded}" in text
    assert not (out / "model.onnx").exists()  # nothing exported
    with pytest.raises(Exception, match="sha256"):  # nor evaluated, nor used as the parity reference
        load_tier_model(tiny_base, folder / "adapter")

    # recovery: the adapter as saved loads again
    shutil.copy2(adapter / "adapter" / "adapter_model.safetensors", weights)
    model, _ = load_tier_model(tiny_base, folder / "adapter", merge=True)
    assert type(model).__name__ == "DrumTransformer"
    # the hashes are recorded where a user looks too: the adapter's training.json
    assert json.loads((folder / "training.json").read_text())["adapter_sha256"]["adapter_model.safetensors"] == recorded
