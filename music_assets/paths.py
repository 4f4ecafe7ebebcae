"""The data dir from the environment: the front of `music_assets.layout` for the Dagster side.

`MUSIC_ASSETS_DATA_DIR` (default: `data/` in the checkout) is the root of every
artifact, read at call time so tests can point it elsewhere. Only the
definitions, the operations modules and the scripts read it here; domain code
takes the root as an argument and asks `music_assets.layout` for the paths
under it (the tree is described in docs/design.md).
"""

from __future__ import annotations

import os
from pathlib import Path

from music_assets import layout

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR_ENV = "MUSIC_ASSETS_DATA_DIR"


def data_dir() -> Path:
    """The artifact root, absolute."""
    return Path(os.environ.get(DATA_DIR_ENV) or REPO_ROOT / "data").resolve()


def raw_audio_dir() -> Path:
    return layout.raw_audio_dir(data_dir())


def catalog_dir() -> Path:
    return layout.catalog_dir(data_dir())


def sources_dir() -> Path:
    return layout.sources_dir(data_dir())


def rudiments_dir() -> Path:
    return layout.rudiments_dir(data_dir())


def hf_staging_dir() -> Path:
    return layout.hf_staging_dir(data_dir())


def models_dir() -> Path:
    return layout.models_dir(data_dir())


def hf_model_staging_dir() -> Path:
    """The model repository as it will be pushed to the Hub (`hf_model`)."""
    return layout.hf_model_staging_dir(data_dir())


def training_sets_dir() -> Path:
    """<data dir>/training_sets/: annotations/, captions/, style_presets.parquet and one folder per set."""
    return layout.training_sets_dir(data_dir())


def manifests_dir() -> Path:
    """Per-partition manifests (file hashes, config fingerprint): `music_assets.integrity`."""
    return layout.manifests_dir(data_dir())


def locks_dir() -> Path:
    """Lock files of partitions being written: `music_assets.locks`."""
    return layout.locks_dir(data_dir())


def dagster_home() -> Path:
    return Path(os.environ.get("DAGSTER_HOME") or data_dir() / "dagster_home").resolve()


def generated_dirs() -> list[Path]:
    """Folders under the data dir that hold outputs (never scanned as inputs)."""
    return layout.generated_dirs(data_dir())
