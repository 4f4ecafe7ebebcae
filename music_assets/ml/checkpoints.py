"""Checkpoints: safetensors files plus a JSON manifest, each written atomically.

A checkpoint is the folder `<root>/step-<8 digits>/` holding one or more
`<name>.safetensors` files and `manifest.json`:

    {"step": ..., "fingerprint": ..., "files": {"model.safetensors": "<sha256>", ...}, ...state}

The manifest is written last, and removed first when a folder is rewritten,
so a folder without a manifest is an interrupted write. A checkpoint is *valid*
when its manifest parses, names the expected fingerprint (the run it belongs to)
and every file it lists exists with the recorded sha256; anything else (a
killed writer, a flipped byte on disk) is skipped with the reason.

Checkpoints of another configuration are never deleted by a run that starts
fresh: `set_aside` moves them to `<root>/superseded/<fingerprint>/`,
`restore_superseded` brings them back when that configuration runs again, and
`prune_superseded` keeps the last two sets once the current configuration has
a checkpoint of its own.
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


SUPERSEDED = "superseded"
KEEP_SUPERSEDED = 2  # checkpoint sets of earlier configurations kept once the current one has its own


def _fingerprint_of(d: Path) -> str:
    try:
        fp = read_json(d / MANIFEST).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        fp = None
    return str(fp)[:16] if fp else "unreadable"


def set_aside(root: str | Path) -> Path:
    """Move every checkpoint folder under `root` to `root/superseded/<fingerprint>/` (nothing deleted).

    Called when a run of another configuration starts fresh: its checkpoints would otherwise be
    overwritten step by step, and a run that then fails would have destroyed them for nothing.
    """
    root = Path(root)
    target = root / SUPERSEDED
    for _step, d in list_checkpoint_dirs(root):
        dest = target / _fingerprint_of(d) / d.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():  # an older copy of the same step of the same configuration
            shutil.rmtree(dest)
        d.replace(dest)
    return target


def restore_superseded(root: str | Path, fingerprint: str) -> bool:
    """Move the set-aside checkpoints of `fingerprint` back under `root` (setting aside what is there)."""
    root = Path(root)
    src = root / SUPERSEDED / fingerprint[:16]
    if not src.is_dir() or not any(valid_checkpoints(src, fingerprint)):
        return False
    set_aside(root)
    for _step, d in list_checkpoint_dirs(src):
        d.replace(root / d.name)
    shutil.rmtree(src, ignore_errors=True)
    return True


def prune_superseded(root: str | Path, keep: int = KEEP_SUPERSEDED) -> list[str]:
    """Delete all but the `keep` most recently set-aside checkpoint sets; return the deleted ones."""
    base = Path(root) / SUPERSEDED
    if not base.is_dir():
        return []
    sets = sorted((p for p in base.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for p in sets[keep:]:
        shutil.rmtree(p, ignore_errors=True)
    return [p.name for p in sets[keep:]]


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
