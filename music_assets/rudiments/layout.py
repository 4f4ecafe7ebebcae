"""Where the rudiment dataset's files live under the data dir (the contract in CONTRACTS.md).

Every function takes the data-dir root explicitly or reads `MUSIC_ASSETS_DATA_DIR`
at call time.
"""

from __future__ import annotations

from pathlib import Path

from music_assets.paths import data_dir


def _root(root: Path | None) -> Path:
    return Path(root) if root is not None else data_dir()


def rudiments_root(root: Path | None = None) -> Path:
    return _root(root) / "rudiments"


def profiles_path(root: Path | None = None) -> Path:
    return rudiments_root(root) / "profiles.parquet"


def splits_path(root: Path | None = None) -> Path:
    return rudiments_root(root) / "splits.json"


def library_path(root: Path | None = None) -> Path:
    return rudiments_root(root) / "library.parquet"


def midi_dir(slug: str, root: Path | None = None) -> Path:
    return rudiments_root(root) / "midi" / slug


def midi_relpath(slug: str, sample_id: str) -> str:
    """The `midi_path` column: POSIX, relative to the data dir."""
    return f"rudiments/midi/{slug}/{sample_id}.mid"


def performance_dir(slug: str, root: Path | None = None) -> Path:
    return rudiments_root(root) / "performances" / slug


def labels_dir(root: Path | None = None) -> Path:
    return rudiments_root(root) / "labels"


PARTITION_TABLES: tuple[str, ...] = ("samples", "strokes", "measures", "exercises")
AUDIO_TABLE = "audio"
