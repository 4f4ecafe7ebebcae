"""Checkpoints: safetensors files plus a JSON manifest, each written atomically.

A checkpoint is the folder `<root>/step-<8 digits>/` holding one or more
`<name>.safetensors` files and `manifest.json`:

    {"step": ..., "fingerprint": ..., "files": {"model.safetensors": "<sha256>", ...}, ...state}

The manifest is written last, and removed first when a folder is rewritten,
so a folder without a manifest is an interrupted write. A checkpoint is *valid*
when its manifest parses, names the expected fingerprint (the run it belongs to)
and every file it lists exists with the recorded sha256; anything else (a
killed writer, a flipped byte on disk) is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from music_assets.io import atomic_path, read_json, sha256_file, write_json

MANIFEST = "manifest.json"
_DIR_RE = re.compile(r"^step-(\d{8})$")


class CheckpointError(RuntimeError):
    pass


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    manifest: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.manifest["step"])

    def tensors(self, name: str) -> dict[str, torch.Tensor]:
        return load_file(str(self.path / f"{name}.safetensors"))


def checkpoint_dir(root: Path, step: int) -> Path:
    return Path(root) / f"step-{step:08d}"


def save_checkpoint(
    root: str | Path,
    step: int,
    tensors: Mapping[str, Mapping[str, torch.Tensor]],
    state: Mapping[str, Any],
    fingerprint: str,
) -> Checkpoint:
    """Write `tensors` (file name -> tensor dict) and a manifest with `state` for `step`."""
    d = checkpoint_dir(Path(root), step)
    d.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        (d / MANIFEST).unlink()  # a rewrite is invalid until its new manifest lands
    files: dict[str, str] = {}
    for name, group in tensors.items():
        dest = d / f"{name}.safetensors"
        with atomic_path(dest) as tmp:
            save_file({k: v.detach().contiguous().clone() for k, v in group.items()}, str(tmp))
        files[dest.name] = sha256_file(dest)
    manifest = {**dict(state), "step": int(step), "fingerprint": fingerprint, "files": files}
    write_json(d / MANIFEST, manifest)
    return Checkpoint(d, read_json(d / MANIFEST))


def verify_checkpoint(path: str | Path, fingerprint: str | None = None) -> Checkpoint:
    """Return the checkpoint if valid; raise CheckpointError with the reason otherwise."""
    d = Path(path)
    mpath = d / MANIFEST
    if not mpath.is_file():
        raise CheckpointError(f"{d}: no manifest (interrupted write)")
    try:
        manifest = read_json(mpath)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{mpath}: unreadable manifest ({exc})") from exc
    if fingerprint is not None and manifest.get("fingerprint") != fingerprint:
        raise CheckpointError(f"{d}: belongs to another configuration or dataset (fingerprint differs)")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise CheckpointError(f"{mpath}: lists no files")
    for name, digest in files.items():
        f = d / name
        if not f.is_file():
            raise CheckpointError(f"{f}: missing")
        actual = sha256_file(f)
        if actual != digest:
            raise CheckpointError(
                f"{f}: sha256 {actual[:12]}... does not match the manifest's {digest[:12]}... (corrupt)"
            )
    return Checkpoint(d, manifest)


def list_checkpoint_dirs(root: str | Path) -> list[tuple[int, Path]]:
    """Checkpoint folders under `root`, newest step first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _DIR_RE.match(p.name))]
    return sorted(found, reverse=True)


def valid_checkpoints(
    root: str | Path, fingerprint: str | None = None, log: Callable[[str], None] | None = None
) -> list[Checkpoint]:
    """Every valid checkpoint, newest first; invalid ones are reported through `log` and skipped."""
    out: list[Checkpoint] = []
    for _step, d in list_checkpoint_dirs(root):
        try:
            out.append(verify_checkpoint(d, fingerprint))
        except CheckpointError as exc:
            if log:
                log(f"skipping checkpoint: {exc}")
    return out


def latest_valid_checkpoint(
    root: str | Path,
    fingerprint: str | None = None,
    where: Callable[[Checkpoint], bool] | None = None,
    log: Callable[[str], None] | None = None,
) -> Checkpoint | None:
    """The newest valid checkpoint (optionally also satisfying `where`), or None."""
    for ckpt in valid_checkpoints(root, fingerprint, log):
        if where is None or where(ckpt):
            return ckpt
    return None


def prune_checkpoints(root: str | Path, keep_steps: set[int]) -> list[int]:
    """Delete checkpoint folders whose step is not in `keep_steps`; return the deleted steps."""
    deleted = []
    for step, d in list_checkpoint_dirs(root):
        if step not in keep_steps:
            with contextlib.suppress(FileNotFoundError):
                (d / MANIFEST).unlink()  # invalid first, so a kill mid-delete leaves no half checkpoint
            shutil.rmtree(d, ignore_errors=True)
            deleted.append(step)
    return deleted


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Split an optimizer state dict into flat tensors (safetensors) and JSON-able param groups."""
    sd = optimizer.state_dict()
    flat: dict[str, torch.Tensor] = {}
    for pid, st in sd["state"].items():
        for key, val in st.items():
            t = val.detach().clone() if isinstance(val, torch.Tensor) else torch.tensor(val)
            flat[f"state.{pid}.{key}"] = t
    return flat, sd["param_groups"]


def load_optimizer(
    optimizer: torch.optim.Optimizer, flat: Mapping[str, torch.Tensor], groups: list[dict[str, Any]]
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, t in flat.items():
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = t
    optimizer.load_state_dict({"state": state, "param_groups": groups})
