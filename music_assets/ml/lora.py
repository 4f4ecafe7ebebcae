"""LoRA adapters (peft) on the drum transformer.

Settings live in JSON files in `lora_configs/` (any `peft.LoraConfig` field):
`default.json` (r=16, alpha=32, rsLoRA, dropout 0.05 on q/k/v/o) and
`ace_step.json` (r=256, alpha=32, rsLoRA, the ACE-Step recipe). A setting is
chosen by file stem or by path.

peft wraps the custom `nn.Module` directly (no transformers config needed);
adapters are written with `save_adapter` (`save_pretrained`, then a
`manifest.json` with the sha256 of every file) and read back onto a fresh base
with `load_adapter`, which verifies those hashes first: a flipped byte in
`adapter_model.safetensors` fails with the file's path and both hashes instead
of being merged and exported.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch

CONFIG_DIR = Path(__file__).resolve().parent / "lora_configs"
ADAPTER_MANIFEST = "manifest.json"


class LoraSettingsError(ValueError):
    pass


def lora_settings_path(name_or_path: str | os.PathLike[str]) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".json" or p.is_absolute() or len(p.parts) > 1:
        path = p
    else:
        path = CONFIG_DIR / f"{name_or_path}.json"
    if not path.is_file():
        known = sorted(f.stem for f in CONFIG_DIR.glob("*.json"))
        raise LoraSettingsError(f"{path}: no LoRA settings file (packaged: {known})")
    return path


def load_lora_settings(name_or_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a LoRA settings file (keys must be `peft.LoraConfig` fields)."""
    from peft import LoraConfig  # noqa: PLC0415

    path = lora_settings_path(name_or_path)
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LoraSettingsError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(settings, dict):
        raise LoraSettingsError(f"{path}: expected a JSON object")
    fields = {f.name for f in dataclasses.fields(LoraConfig)}
    unknown = sorted(set(settings) - fields)
    if unknown:
        raise LoraSettingsError(f"{path}: unknown LoraConfig fields {unknown}")
    if not settings.get("target_modules"):
        raise LoraSettingsError(f"{path}: target_modules is required")
    return settings


def apply_lora(base: torch.nn.Module, settings: dict[str, Any]) -> torch.nn.Module:
    """Wrap `base` in a PeftModel; only the LoRA weights require grad."""
    from peft import LoraConfig, get_peft_model  # noqa: PLC0415

    return get_peft_model(base, LoraConfig(**settings))


def _sort_config_lists(path: Path) -> None:
    """peft writes `target_modules` (a set) in the order of Python's per-process string hashing; sorted,
    the file is the same bytes in every run. Written as peft writes it (indent 2, sorted keys)."""
    doc = json.loads(path.read_text())
    for key in ("target_modules", "modules_to_save"):
        if isinstance(doc.get(key), list):
            doc[key] = sorted(doc[key])
    path.write_text(json.dumps(doc, indent=2, sort_keys=True))


def save_adapter(model: torch.nn.Module, adapter_dir: str | os.PathLike[str]) -> dict[str, str]:
    """`save_pretrained` into `adapter_dir`, then its manifest: file name -> sha256 (returned)."""
    from music_assets.io import sha256_file, write_json  # noqa: PLC0415

    folder = Path(adapter_dir)
    model.save_pretrained(str(folder))
    _sort_config_lists(folder / "adapter_config.json")
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != ADAPTER_MANIFEST}
    write_json(folder / ADAPTER_MANIFEST, {"files": files})
    return files


def verify_adapter(adapter_dir: str | os.PathLike[str]) -> dict[str, str]:
    """The adapter's files and sha256s as `save_adapter` recorded them, after checking each one.

    Raises `music_assets.integrity.IntegrityError` naming the file and both hashes, or the missing
    manifest (an adapter saved some other way, or whose save was interrupted).
    """
    from music_assets.integrity import IntegrityError, verify_sha256  # noqa: PLC0415
    from music_assets.io import read_json  # noqa: PLC0415

    folder = Path(adapter_dir)
    manifest = folder / ADAPTER_MANIFEST
    try:
        files = read_json(manifest)["files"]
    except FileNotFoundError:
        raise IntegrityError(
            f"{manifest}: missing, so the adapter's files cannot be verified (saved by an older version or "
            "interrupted); re-materialize lora_adapters for this tier"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{manifest}: unreadable ({exc}); re-materialize lora_adapters") from exc
    unlisted = sorted(
        p.name for p in folder.iterdir() if p.is_file() and p.name not in files and p.name != ADAPTER_MANIFEST
    )
    if unlisted:
        raise IntegrityError(f"{folder}: file(s) {unlisted} are not listed in {manifest} (not what was saved)")
    for name, digest in sorted(files.items()):
        verify_sha256(folder / name, digest, str(manifest))
    return dict(files)


def load_adapter(base: torch.nn.Module, adapter_dir: str | os.PathLike[str]) -> torch.nn.Module:
    """A saved adapter on `base` (which must hold the base weights it was trained on), once its files
    match the sha256 recorded when it was saved (`verify_adapter`)."""
    from peft import PeftModel  # noqa: PLC0415

    if not (Path(adapter_dir) / "adapter_config.json").is_file():
        raise LoraSettingsError(f"{adapter_dir}: no adapter_config.json (not a saved adapter)")
    verify_adapter(adapter_dir)
    return PeftModel.from_pretrained(base, str(adapter_dir))
