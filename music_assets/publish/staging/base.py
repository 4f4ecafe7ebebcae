"""What staging is configured with and what it holds: settings, the staged data, constants, errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from music_assets.publish import layout
from music_assets.rudiments.constants import SPLITS

LABEL_TABLES = ("samples", "strokes", "measures", "exercises")
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "samples": ("sample_id", "rudiment_slug", "profile_id", "skill_tier", "split", "midi_path", "audio_path"),
    "strokes": ("sample_id",),
    "measures": ("sample_id",),
    "exercises": ("sample_id",),
}


# Upstream paths relative to the data dir; the staged table replaces them with `audio`/`midi`.
SOURCE_PATH_COLUMNS = {"audio": "audio_path", "midi": "midi_path"}
MEDIA_COLUMNS = ("audio", "midi")
MEDIA_DIRS = {"audio": layout.AUDIO, "midi": layout.MIDI}
FINGERPRINT_KEY = b"music_assets.fingerprint"


# Bump when the staged bytes change for the same inputs (forces a rewrite).
LAYOUT_VERSION = "2"
MEDIA_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
SHARD_STORAGES = ("auto", "local", "deferred")


# auto: local while the embedded shards take at most this share of the free disk.
LOCAL_SHARE_OF_FREE_DISK = 0.5


# A deferred shard's plan: per media column, the source file (relative to the data dir) and its stat.
PLAN_COLUMNS = {col: (f"_{col}_source", f"_{col}_size", f"_{col}_mtime_ns") for col in MEDIA_COLUMNS}
PLAN_KEY = b"music_assets.deferred"  # schema metadata of a plan: data_root, data schema, media bytes


class StagingError(ValueError):
    """Bad or missing input; the message names the file and the reason."""


@dataclass(frozen=True)
class StagingSettings:
    """How the staging folder is built (the card's wording lives in `card.CardSettings`)."""

    file_budget: int = 50_000  # browsable media files above this: parquet only ("embedded")
    shard_size_mb: float = 500.0  # upper bound of every parquet shard
    shard_storage: str = "auto"  # "local", "deferred" (built at upload) or "auto" (see the module docstring)


@dataclass
class MediaStats:
    linked: int = 0
    copied: int = 0
    unchanged: int = 0

    @property
    def written(self) -> int:
        return self.linked + self.copied


@dataclass
class StagedData:
    """What was staged, for the card and the asset's metadata."""

    staging: Path
    mode: str  # "files" (parquet + browsable media files) or "embedded" (parquet only)
    table: pa.Table  # one row per sample, `audio`/`midi` as the embedded files' names (no bytes)
    families: list[str]  # the rudiment family of each row of `table`
    data_schema: pa.Schema  # schema of the sample shards, with the `datasets` features
    media_files: int  # staged as separate files (0 when embedded)
    media_bytes: int
    # family -> split -> sample shard paths relative to staging
    shards: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    split_rows: dict[str, int] = field(default_factory=dict)  # samples per split, every family
    aux_schemas: dict[str, pa.Schema] = field(default_factory=dict)
    aux_shards: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # table -> split -> paths
    media: MediaStats = field(default_factory=MediaStats)
    parquet_written: list[str] = field(default_factory=list)
    parquet_unchanged: list[str] = field(default_factory=list)
    shard_storage: str = "local"  # "local" or "deferred"
    shard_storage_reason: str = ""
    sample_shard_bytes: int = 0  # estimated size of the sample shards (media plus the table)

    def split_shards(self) -> dict[str, list[str]]:
        """Sample shards of each split across the families."""
        out: dict[str, list[str]] = {}
        for by_split in self.shards.values():
            for split, rels in by_split.items():
                out.setdefault(split, []).extend(rels)
        return {s: out[s] for s in SPLITS if s in out}


def first_few(values: Sequence[object], n: int = 5) -> str:
    shown = ", ".join(str(v) for v in list(values)[:n])
    return shown + (f" and {len(values) - n} more" if len(values) > n else "")
