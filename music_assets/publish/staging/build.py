"""Staging the dataset (`stage`), the files it should hold, and the sweep of the rest."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa

from music_assets.publish import layout
from music_assets.publish.staging.base import (
    MEDIA_COLUMNS,
    MEDIA_DIRS,
    MEDIA_TYPE,
    SHARD_STORAGES,
    SOURCE_PATH_COLUMNS,
    StagedData,
    StagingError,
    StagingSettings,
)
from music_assets.publish.staging.deferred import choose_shard_storage
from music_assets.publish.staging.media import media_plan, sync_file
from music_assets.publish.staging.shards import features_schema, row_families, write_auxiliary, write_sample_shards
from music_assets.publish.staging.tables import read_labels, row_splits, sample_table

_DEFAULT_SETTINGS = StagingSettings()


def media_identity(src: Path, st: os.stat_result, data_root: Path, digests: Mapping[str, str]) -> str:
    """A media file's identity in a shard's fingerprint: its size and the sha256 its partition's
    manifest recorded (path relative to the data dir), else its size and modification time. The
    recorded hash makes the fingerprint, kept in the shard's footer, the same in every run that
    renders the same bytes: a modification time is not."""
    try:
        digest = digests.get(src.relative_to(data_root).as_posix())
    except ValueError:  # outside the data dir: no recorded hash
        digest = None
    return f"{st.st_size}:sha256:{digest}" if digest else f"{st.st_size}:{st.st_mtime_ns}"


def stage(
    data_root: Path,
    staging: Path,
    settings: StagingSettings = _DEFAULT_SETTINGS,
    media_digests: Mapping[str, str] | None = None,
) -> StagedData:
    """Build (or bring up to date) the staging folder; return what it holds.

    `media_digests` (path relative to the data dir -> sha256, as the audio and MIDI partitions'
    manifests recorded and the caller verified) identify the media in the shards' fingerprints.
    The card and plots are written separately (`card.write_card`), from the
    returned `StagedData`; `sweep` then removes whatever the dataset no longer
    produces.
    """
    if settings.file_budget < 0:
        raise StagingError(f"file_budget must be >= 0, got {settings.file_budget}")
    if settings.shard_size_mb <= 0:
        raise StagingError(f"shard_size_mb must be > 0, got {settings.shard_size_mb}")
    if settings.shard_storage not in SHARD_STORAGES:
        raise StagingError(f"shard_storage must be one of {', '.join(SHARD_STORAGES)}, got {settings.shard_storage!r}")
    labels_dir = data_root / "rudiments" / "labels"
    labels = read_labels(labels_dir)
    table = sample_table(labels["samples"], labels["exercises"], labels_dir)
    families = row_families(table, labels_dir / "samples.parquet")
    plan = media_plan(table, data_root, labels_dir / "samples.parquet")
    aux_splits = {
        name: row_splits(labels[name], table, labels_dir / f"{name}.parquet") for name in layout.AUXILIARY_TABLES
    }
    n_media = sum(len(v) for v in plan.values())
    embedded = n_media > settings.file_budget
    media_stats = {col: [src.stat() for src, _ in rows] for col, rows in plan.items()}
    media_ids = {
        col: [
            media_identity(src, st, data_root, media_digests or {})
            for (src, _), st in zip(rows, media_stats[col], strict=True)
        ]
        for col, rows in plan.items()
    }
    media_bytes = int(sum(st.st_size for sts in media_stats.values() for st in sts))

    # The staged table: `audio`/`midi` (the files' names; the shards add their bytes) first,
    # upstream data-dir paths dropped.
    rest = [c for c in table.column_names if c not in SOURCE_PATH_COLUMNS.values() and c != "sample_id"]
    names = {col: pa.array([Path(rel).name for _, rel in plan[col]], pa.string()) for col in MEDIA_COLUMNS}
    base = pa.table({"sample_id": table["sample_id"], **names, **{c: table[c] for c in rest}})
    data_schema = features_schema(
        pa.schema(
            [
                base.schema.field("sample_id"),
                *(pa.field(c, MEDIA_TYPE) for c in MEDIA_COLUMNS),
                *(base.schema.field(c) for c in rest),
            ]
        ),
        audio=True,
    )
    out = StagedData(
        staging=staging,
        mode="embedded" if embedded else "files",
        table=base,
        families=families,
        data_schema=data_schema,
        media_files=0 if embedded else n_media,
        media_bytes=media_bytes,
        sample_shard_bytes=media_bytes + base.nbytes,
    )
    staging.mkdir(parents=True, exist_ok=True)
    # The shards already on disk are replaced, so their space counts as free.
    present = sum(p.stat().st_size for ps in layout.split_shards(staging).values() for p in ps if p.is_file())
    out.shard_storage, out.shard_storage_reason = choose_shard_storage(
        settings.shard_storage, out.sample_shard_bytes, shutil.disk_usage(staging).free + present
    )

    if not embedded:
        for col in MEDIA_COLUMNS:
            for src, rel in plan[col]:
                how = sync_file(src, staging / rel)
                setattr(out.media, how, getattr(out.media, how) + 1)

    shard_bytes = settings.shard_size_mb * 1e6
    write_sample_shards(out, plan, media_stats, shard_bytes, data_root, media_ids)
    for name in layout.AUXILIARY_TABLES:
        write_auxiliary(out, name, labels[name], aux_splits[name], shard_bytes)
    return out


def expected_files(staged: StagedData, extra: Sequence[str]) -> set[str]:
    """Every path (relative to staging) the current dataset consists of (with deferred storage, the sample
    shards' plans and the record of their builds instead of the shards)."""
    files = {rel for by_split in staged.shards.values() for rels in by_split.values() for rel in rels}
    if staged.shard_storage == "deferred":
        files = {f"{layout.DEFERRED}/{rel}" for rel in files} | {layout.BUILT_RECORD}
    files |= {rel for by_split in staged.aux_shards.values() for rels in by_split.values() for rel in rels}
    if staged.mode == "files":
        slugs = staged.table["rudiment_slug"].to_pylist()
        for col in MEDIA_COLUMNS:
            files |= {
                f"{MEDIA_DIRS[col]}/{slug}/{name}"
                for slug, name in zip(slugs, staged.table[col].to_pylist(), strict=True)
            }
    return files | set(extra)


def sweep(staging: Path, keep: set[str]) -> list[str]:
    """Delete every file under `staging` not in `keep` (leftover partials included), then empty folders."""
    removed = []
    for dirpath, _dirnames, filenames in os.walk(staging):
        base = Path(dirpath)
        for name in filenames:
            p = base / name
            rel = p.relative_to(staging).as_posix()
            if rel not in keep:
                p.unlink()
                removed.append(rel)
    for dirpath, _dirnames, _filenames in sorted(os.walk(staging), key=lambda t: -len(t[0])):
        d = Path(dirpath)
        if d != staging and not any(d.iterdir()):
            d.rmdir()
    return sorted(removed)
