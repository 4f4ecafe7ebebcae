"""What the sources group's assets share: the group, the files it writes, the music roots setting."""

# No `from __future__ import annotations`: Dagster resolves the Config annotations at definition time.
import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from music_assets import layout, paths
from music_assets.integrity import confined_child

GROUP = "sources"
ROOTS_ENV = "MUSIC_ASSETS_AUDIO_ROOTS"
SOURCE_FILES = dg.AssetKey("source_files")


def catalog_file() -> Path:
    return layout.audio_catalog_path(paths.data_dir())


def selected_file() -> Path:
    return layout.selected_sources_path(paths.data_dir())


def prepared_dir() -> Path:
    return layout.prepared_dir(paths.sources_dir())


def prepared_file(source_id: str) -> Path:
    """The prepared FLAC of a partition key, confined to the data dir (a key is data: it may try to escape)."""
    return confined_child(prepared_dir(), source_id, what="prepared_sources partition key", suffix=".flac")


PREPARED_ASSET = "prepared_sources"


def default_roots() -> list[str]:
    return [str(paths.raw_audio_dir())]


class AudioRoots(dg.ConfigurableResource):
    """The music folders the sources group catalogs: one setting for `dagster asset materialize`
    / `dg launch` of audio_catalog, runs from the UI, raw_audio_sensor and daily_audio_catalog.

    `roots` when set (in code, or a run's `resources.audio_roots.config`), else the environment
    variable named by `env_var` ($MUSIC_ASSETS_AUDIO_ROOTS: folders separated by os.pathsep, `:`
    on Linux and macOS; `~` expands, relative paths are taken from the current directory), else
    <data dir>/raw_audio. Read through dg.EnvVar when used, so the code server, the sensor and
    the run all see the deployment's value. A run's `ops.audio_catalog.config.roots` overrides
    it for that run only: the sensor and the schedule keep cataloging these folders.
    """

    roots: list[str] = Field(default=[], description="Folders to catalog; empty: from env_var, else the default.")
    env_var: str = Field(default=ROOTS_ENV, description="Environment variable holding os.pathsep-separated folders.")

    def setting(self) -> str:
        """Where the folders come from, for logs and metadata."""
        if self.roots:
            return "audio_roots resource config"
        return f"${self.env_var}" if (dg.EnvVar(self.env_var).get_value() or "").strip() else "default"

    def paths(self) -> list[str]:
        chosen = self.roots or (dg.EnvVar(self.env_var).get_value() or "").split(os.pathsep)
        out = [os.path.abspath(os.path.expanduser(p.strip())) for p in chosen if p.strip()]
        return out or default_roots()


def _read_parquet(path: Path):
    import pyarrow.parquet as pq  # noqa: PLC0415

    if not path.is_file():
        raise dg.Failure(description=f"{path} does not exist: materialize its upstream asset first")
    return pq.read_table(path)
