"""What the training_sets group's assets share: the group, its folders and files, the selected sources."""

# No `from __future__ import annotations`: Dagster resolves the Config annotations at definition time.
from pathlib import Path

import dagster as dg

from music_assets import paths
from music_assets.defs.automation import per_source_condition
from music_assets.defs.sources.assets import selected_file
from music_assets.integrity import confined_child

GROUP = "training_sets"
FOLLOW = dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
# per-source partitions: new, changed upstream or a new code version; never every source at each catalog refresh
PER_SOURCE = per_source_condition()


def annotations_dir() -> Path:
    return paths.training_sets_dir() / "annotations"


def captions_dir() -> Path:
    return paths.training_sets_dir() / "captions"


def annotation_file(key: str) -> Path:
    """The annotation of one source partition; the key stays one name inside the data dir."""
    return confined_child(annotations_dir(), key, what="track_annotations partition key", suffix=".json")


def caption_file(key: str) -> Path:
    return confined_child(captions_dir(), key, what="track_captions partition key", suffix=".json")


def presets_file() -> Path:
    return paths.training_sets_dir() / "style_presets.parquet"


def selected_rows() -> dict[str, dict]:
    import pyarrow.parquet as pq  # noqa: PLC0415

    if not selected_file().is_file():
        return {}
    return {r["source_id"]: r for r in pq.read_table(selected_file()).to_pylist() if r["selected"]}


def remove_stale(folder: Path, current: set[str]) -> list[str]:
    stale = sorted(p.stem for p in folder.glob("*.json") if p.stem not in current) if folder.is_dir() else []
    for name in stale:
        (folder / f"{name}.json").unlink(missing_ok=True)
    return stale
