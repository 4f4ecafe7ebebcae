"""Where artifacts live. Read at call time so tests can point it elsewhere.

`MUSIC_ASSETS_DATA_DIR` (default: `data/` in the checkout) is the root of every
artifact; the sub-paths below are a contract other tools rely on (DESIGN.md).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR_ENV = "MUSIC_ASSETS_DATA_DIR"


def data_dir() -> Path:
    """The artifact root, absolute."""
    return Path(os.environ.get(DATA_DIR_ENV) or REPO_ROOT / "data").resolve()


def raw_audio_dir() -> Path:
    return data_dir() / "raw_audio"


def catalog_dir() -> Path:
    return data_dir() / "catalog"


def sources_dir() -> Path:
    return data_dir() / "sources"


def rudiments_dir() -> Path:
    return data_dir() / "rudiments"


def hf_staging_dir() -> Path:
    return data_dir() / "hf_staging"


def models_dir() -> Path:
    return data_dir() / "models"


def inside_data_dir(path: str | os.PathLike[str]) -> Path:
    """A path from config (relative paths are taken from the data dir), refused unless it stays inside it."""
    root = data_dir()
    p = Path(path)
    resolved = (p if p.is_absolute() else root / p).resolve()
    if not resolved.is_relative_to(root):
        raise ValueError(f"{path}: outside the data dir {root}")
    return resolved


def hf_model_staging_dir() -> Path:
    """The model repository as it will be pushed to the Hub (`hf_model`)."""
    return data_dir() / "hf_model_staging"


def training_sets_dir() -> Path:
    """<data dir>/training_sets/: annotations/, captions/, style_presets.parquet and one folder per set."""
    return data_dir() / "training_sets"


def manifests_dir() -> Path:
    """Per-partition manifests (file hashes, config fingerprint): `music_assets.integrity`."""
    return data_dir() / "manifests"


def locks_dir() -> Path:
    """Lock files of partitions being written: `music_assets.locks`."""
    return data_dir() / ".locks"


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or data_dir() / "dagster_home").resolve()


def generated_dirs() -> list[Path]:
    """Folders under the data dir that hold outputs (never scanned as inputs)."""
    d = data_dir()
    names = ("catalog", "sources", "rudiments", "hf_staging", "hf_model_staging", "models", "training_sets")
    return [d / n for n in (*names, "manifests", ".locks", "dagster_home")]
