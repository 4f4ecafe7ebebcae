"""The parquet shards of the staging folder, each rewritten only when its content fingerprint changes."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from music_assets.io import write_bytes, write_parquet
from music_assets.publish import layout
from music_assets.publish.staging.base import (
    FINGERPRINT_KEY,
    LAYOUT_VERSION,
    MEDIA_COLUMNS,
    PLAN_COLUMNS,
    PLAN_KEY,
    StagedData,
    StagingError,
    first_few,
)
from music_assets.rudiments.constants import SPLITS
from music_assets.rudiments.library import load_library

# The Hub's viewer reads a row group at a time; with audio embedded, about 100 rows or less.
SAMPLE_ROWS_PER_GROUP = 100
AUXILIARY_ROWS_PER_GROUP = 100_000


def _fingerprint(table: pa.Table, schema: pa.Schema, media: Sequence[str] = ()) -> bytes:
    """What a shard is made of: its rows, its schema and the identity of every media file it embeds
    (`build.media_identity`), so an unchanged shard is not rebuilt."""
    h = hashlib.sha256(f"music_assets staging {LAYOUT_VERSION}\n".encode())
    h.update(schema.serialize().to_pybytes())
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    h.update(sink.getvalue().to_pybytes())
    for identity in media:
        h.update(f"{identity}\n".encode())
    return h.hexdigest().encode()


def _existing_fingerprint(path: Path) -> bytes | None:
    try:
        return (pq.read_schema(path).metadata or {}).get(FINGERPRINT_KEY)
    except Exception:  # noqa: BLE001 - unreadable or missing: rewrite it
        return None


def write_shard(path: Path, table: pa.Table, fingerprint: bytes, row_group_size: int | None) -> None:
    meta = dict(table.schema.metadata or {})
    meta[FINGERPRINT_KEY] = fingerprint
    # Content-defined chunking lets the Hub's Xet storage deduplicate unchanged pages on re-upload.
    write_parquet(
        path,
        table.replace_schema_metadata(meta),
        row_group_size=row_group_size,
        use_content_defined_chunking=True,
        write_page_index=True,
    )


def _write_if_changed(path: Path, fingerprint: bytes, build, row_group_size: int | None, out: StagedData) -> None:
    """Write the table `build()` returns unless `path` already holds one with this fingerprint."""
    rel = path.relative_to(out.staging).as_posix()
    if _existing_fingerprint(path) == fingerprint:
        out.parquet_unchanged.append(rel)
        return
    write_shard(path, build(), fingerprint, row_group_size)
    out.parquet_written.append(rel)


def features_schema(schema: pa.Schema, audio: bool) -> pa.Schema:
    """`schema` with the `datasets` features in its metadata (`audio` as the Audio feature when `audio`)."""
    import datasets  # noqa: PLC0415 - slow import, only when staging

    features = datasets.Features.from_arrow_schema(schema.remove_metadata())
    if audio:
        features["audio"] = datasets.Audio()
    return features.arrow_schema


def write_bytes_if_changed(path: Path, data: bytes) -> bool:
    """Write `data` atomically unless `path` already holds exactly these bytes."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    write_bytes(path, data)
    return True


def _shard_bounds(row_bytes: np.ndarray, shard_bytes: float) -> list[tuple[int, int]]:
    """Contiguous [start, stop) row ranges of at most `shard_bytes` each (one row at least)."""
    bounds = []
    start, acc = 0, 0.0
    for i, b in enumerate(row_bytes):
        if i > start and acc + b > shard_bytes:
            bounds.append((start, i))
            start, acc = i, 0.0
        acc += float(b)
    if start < len(row_bytes):
        bounds.append((start, len(row_bytes)))
    return bounds


def _embedded_column(files: Sequence[Path]) -> pa.Array:
    data = [f.read_bytes() for f in files]
    return pa.StructArray.from_arrays(
        [pa.array(data, pa.binary()), pa.array([f.name for f in files], pa.string())], names=["bytes", "path"]
    )


def row_families(table: pa.Table, samples_path: Path) -> list[str]:
    """The PAS family (roll, diddle, flam, drag) of each row, from the rudiment library."""
    library = load_library()
    slugs = table["rudiment_slug"].to_pylist()
    unknown = sorted({s for s in slugs if s not in library}, key=str)
    if unknown:
        raise StagingError(f"{samples_path}: unknown rudiment_slug {first_few(unknown)} (not in the rudiment library)")
    return [library[s].category for s in slugs]


def shard_table(part: pa.Table, files: dict[str, Sequence[Path]], schema: pa.Schema) -> pa.Table:
    """A sample shard's table: `part`'s rows with each media column's files embedded (bytes and name)."""
    cols = {c: part[c] for c in part.column_names}
    for col in MEDIA_COLUMNS:
        cols[col] = _embedded_column(files[col])
    return pa.table(cols).cast(schema)


def _plan_table(
    part: pa.Table, rows: np.ndarray, plan: dict[str, list[tuple[Path, str]]], media_stats, data_root: Path
) -> tuple[pa.Table, int]:
    """A deferred shard's plan: `part` plus, per media column, each source's path (relative to the data
    dir), size and modification time; and the media bytes it stands for."""
    cols = {c: part[c] for c in part.column_names}
    media = 0
    for col, (c_src, c_size, c_mtime) in PLAN_COLUMNS.items():
        stats = [media_stats[col][i] for i in rows]
        cols[c_src] = pa.array([plan[col][i][0].relative_to(data_root).as_posix() for i in rows], pa.string())
        cols[c_size] = pa.array([st.st_size for st in stats], pa.int64())
        cols[c_mtime] = pa.array([st.st_mtime_ns for st in stats], pa.int64())
        media += sum(st.st_size for st in stats)
    return pa.table(cols), media


def write_sample_shards(
    out: StagedData,
    plan: dict[str, list[tuple[Path, str]]],
    media_stats: dict[str, list[os.stat_result]],
    shard_bytes: float,
    data_root: Path,
    media_ids: dict[str, list[str]],
) -> None:
    """Write `data/<family>/{split}-NNNNN-of-NNNNN.parquet` with the media embedded (unless unchanged), or,
    with deferred storage, their plans under `.deferred/`."""
    base, schema, staging = out.table, out.data_schema, out.staging
    deferred = out.shard_storage == "deferred"
    schema_b64 = base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")
    # Rows per shard by media bytes plus the table's own size (parquet compresses the latter).
    row_bytes = np.full(base.num_rows, base.nbytes / max(base.num_rows, 1))
    row_bytes += np.array(
        [a.st_size + m.st_size for a, m in zip(media_stats["audio"], media_stats["midi"], strict=True)]
    )
    splits = np.array(base["split"].to_pylist(), dtype=object)
    families = np.array(out.families, dtype=object)
    for family in [f for f in layout.FAMILIES if f in set(out.families)]:
        for split in SPLITS:
            idx = np.flatnonzero((families == family) & (splits == split))
            if not len(idx):
                continue
            bounds = _shard_bounds(row_bytes[idx], shard_bytes)
            rels = out.shards.setdefault(family, {}).setdefault(split, [])
            for k, (a, b) in enumerate(bounds):
                rows = idx[a:b]
                rel = layout.shard_path(layout.family_dir(family), split, k, len(bounds))
                part = base.take(pa.array(rows))
                fingerprint = _fingerprint(part, schema, [media_ids[col][i] for col in MEDIA_COLUMNS for i in rows])
                if deferred:

                    def build_plan(part=part, rows=rows, rel=rel):
                        table, media = _plan_table(part, rows, plan, media_stats, data_root)
                        info = {
                            "shard": rel,
                            "data_root": os.path.relpath(data_root, staging),
                            "data_schema": schema_b64,
                            "media_bytes": media,
                            "estimated_bytes": media + part.nbytes,
                        }
                        return table.replace_schema_metadata({PLAN_KEY: json.dumps(info).encode()})

                    _write_if_changed(layout.deferred_path(staging, rel), fingerprint, build_plan, None, out)
                else:
                    files = {col: [plan[col][i][0] for i in rows] for col in MEDIA_COLUMNS}
                    _write_if_changed(
                        staging / rel,
                        fingerprint,
                        lambda part=part, files=files: shard_table(part, files, schema),
                        SAMPLE_ROWS_PER_GROUP,
                        out,
                    )
                rels.append(rel)
    for split in SPLITS:
        n = int(np.count_nonzero(splits == split))
        if n:
            out.split_rows[split] = n


def write_auxiliary(out: StagedData, name: str, aux: pa.Table, row_split: pa.Array, shard_bytes: float) -> None:
    """`auxiliary/<name>/{split}-NNNNN-of-NNNNN.parquet`: the table's rows by their sample's split."""
    schema = features_schema(aux.schema, audio=False)
    out.aux_schemas[name] = schema
    out.aux_shards[name] = {}
    row_bytes = aux.nbytes / max(aux.num_rows, 1)
    for split in SPLITS:
        part = aux.filter(pc.equal(row_split, split))
        if part.num_rows == 0:
            continue
        bounds = _shard_bounds(np.full(part.num_rows, row_bytes), shard_bytes)
        rels = out.aux_shards[name][split] = []
        for k, (a, b) in enumerate(bounds):
            rel = layout.shard_path(layout.auxiliary_dir(name), split, k, len(bounds))
            chunk = part.slice(a, b - a)
            _write_if_changed(
                out.staging / rel,
                _fingerprint(chunk, schema),
                lambda chunk=chunk: chunk.cast(schema),
                AUXILIARY_ROWS_PER_GROUP,
                out,
            )
            rels.append(rel)
