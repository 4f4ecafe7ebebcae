"""Checkpoints: checksummed manifest, corrupt and interrupted ones skipped, optimizer state round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from music_assets.ml import checkpoints as ck


def _save(root: Path, step: int, value: float, fp: str = "fp") -> ck.Checkpoint:
    return ck.save_checkpoint(root, step, {"model": {"w": torch.full((4,), value)}}, {"note": value}, fp)


def test_newest_valid_checkpoint_skips_corrupt_and_interrupted_ones(tmp_path: Path) -> None:
    for step in (10, 20, 30, 40):
        _save(tmp_path, step, float(step))
    ckpt = ck.latest_valid_checkpoint(tmp_path, "fp")
    assert ckpt.step == 40 and ckpt.manifest["note"] == 40.0
    assert set(ckpt.manifest["files"]) == {"model.safetensors"}

    # one flipped byte in the newest: detected by its sha256 and skipped
    f = tmp_path / "step-00000040" / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    # the next one was being written when the process died: no manifest yet
    (tmp_path / "step-00000030" / "manifest.json").unlink()
    # a stray temp file from a killed writer is not part of the checkpoint
    (tmp_path / "step-00000020" / ".model.safetensors.123-ab.partial").write_bytes(b"half")
    log: list[str] = []
    ckpt = ck.latest_valid_checkpoint(tmp_path, "fp", log=log.append)
    assert ckpt.step == 20
    assert torch.equal(ckpt.tensors("model")["w"], torch.full((4,), 20.0))
    assert any("step-00000040/model.safetensors" in m and "corrupt" in m for m in log)
    assert any("step-00000030" in m and "interrupted" in m for m in log)
    # a checkpoint of another configuration is never resumed from
    assert ck.latest_valid_checkpoint(tmp_path, "other-fp") is None
    with pytest.raises(ck.CheckpointError, match="corrupt"):
        ck.verify_checkpoint(tmp_path / "step-00000040")


def test_rewrite_and_prune(tmp_path: Path) -> None:
    for step in (1, 2, 3):
        _save(tmp_path, step, 0.0)
    _save(tmp_path, 2, 5.0)  # rewriting a step (after a rollback) replaces it whole
    assert ck.verify_checkpoint(tmp_path / "step-00000002").manifest["note"] == 5.0
    assert ck.prune_checkpoints(tmp_path, {2}) == [3, 1]
    assert [s for s, _ in ck.list_checkpoint_dirs(tmp_path)] == [2]


def test_optimizer_state_round_trip() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.AdamW([p], lr=0.1)
    for _ in range(3):
        (p**2).sum().backward()
        opt.step()
        opt.zero_grad()
    flat, groups = ck.optimizer_tensors(opt)
    q = torch.nn.Parameter(p.detach().clone())
    opt2 = torch.optim.AdamW([q], lr=0.5)
    ck.load_optimizer(opt2, flat, groups)
    for o, x in ((opt, p), (opt2, q)):
        (x**2).sum().backward()
        o.step()
    assert torch.equal(p, q)
