"""Build the Hugging Face staging folder from the rudiment labels and media.

Reads `<data>/rudiments/labels/{samples,strokes,measures,exercises}.parquet`
and the MIDI/FLAC files they point to, and writes the folder described in
`layout`: one row per sample in `data/<family>/{split}-NNNNN-of-NNNNN.parquet`
(the sample columns, the exercise scores, and `audio`/`midi` holding each
file's bytes and name as `struct<bytes, path>`, `audio` with the `datasets`
Audio feature), and the stroke and measure tables split the same way under
`auxiliary/<table>/`. Every shard stays under `shard_size_mb`; sample shards
have row groups of at most 100 rows (what the Hub's viewer reads at once).
So `datasets.load_dataset(<folder or repo>)` decodes audio with no download
beyond the parquet files, per family subset and when streaming.

Two layouts, the parquet files identical in both:
- **files** (default): the media are also browsable as files, hard-linked
  into `audio/<slug>/` and `midi/<slug>/` (copied where linking is
  impossible, never symlinked, so the folder uploads or archives as is;
  hard links cost no disk). A file whose staged copy is the same inode, or has
  the same size and modification time, is left alone.
- **embedded**: when those files would pass `file_budget` (the Hub refuses
  repositories of more than 100K files), only the parquet files.

Where the sample shards live (`shard_storage`), independent of the layout:
- **local**: written into the folder, so it is the whole dataset on disk
  (`datasets.load_dataset(folder)` reads it as is).
- **deferred**: the sample shards embed every audio file once more, which a
  100K-sample dataset cannot afford next to the rendered audio. Each shard's
  plan is written instead (`.deferred/<shard path>`: the same rows, with the
  media names and the source files' paths, sizes and modification times but
  no media bytes), and `build_deferred_shard` builds the shard from it,
  byte-identical to the local one, just before `hf_dataset` uploads it and
  deletes it afterwards. A source changed since staging is refused.
- **auto** (default): local while the shards take at most half of the free
  disk, deferred beyond.

Every parquet file carries a fingerprint of what it was built from (rows,
media sizes and modification times) in its footer; a re-run with unchanged
inputs rewrites nothing. Files in the staging folder that the current dataset
does not produce (old shards, removed samples, the other layout's media) are
deleted, so the folder is exactly the dataset.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from music_assets.integrity import PathEscapeError, confine
from music_assets.io import tmp_path, write_bytes, write_parquet
from music_assets.publish import layout
from music_assets.rudiments.constants import RUDIMENT_SLUGS, SPLITS
from music_assets.rudiments.library import load_library

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
# The Hub's viewer reads a row group at a time; with audio embedded, about 100 rows or less.
SAMPLE_ROWS_PER_GROUP = 100
AUXILIARY_ROWS_PER_GROUP = 100_000
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


# ---------------------------------------------------------------- inputs


def _normalize(table: pa.Table) -> pa.Table:
    """Plain string/binary types (never large_*), no pandas or foreign schema metadata."""
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_large_string(t) or pa.types.is_string_view(t):
            t = pa.string()
        elif pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
            t = pa.binary()
        elif pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)):
            t = pa.string()
        fields.append(pa.field(f.name, t, f.nullable))
    return table.cast(pa.schema(fields)).replace_schema_metadata(None).combine_chunks()


def read_labels(labels_dir: Path) -> dict[str, pa.Table]:
    """The four label tables, validated for the columns staging needs."""
    out = {}
    for name in LABEL_TABLES:
        path = labels_dir / f"{name}.parquet"
        if not path.is_file():
            raise StagingError(f"{path}: missing; materialize rudiment_labels first")
        try:
            table = pq.read_table(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for bad files
            raise StagingError(f"{path}: not a readable parquet file: {exc}") from exc
        missing = [c for c in REQUIRED_COLUMNS[name] if c not in table.column_names]
        if missing:
            raise StagingError(f"{path}: missing column(s) {', '.join(missing)}")
        out[name] = _normalize(table)
    return out


def _first(values: Sequence[object], n: int = 5) -> str:
    shown = ", ".join(str(v) for v in list(values)[:n])
    return shown + (f" and {len(values) - n} more" if len(values) > n else "")


def sample_table(samples: pa.Table, exercises: pa.Table, labels_dir: Path) -> pa.Table:
    """Samples joined with their exercise scores, one row each, ordered by split, PAS order, sample_id."""
    s_path, e_path = labels_dir / "samples.parquet", labels_dir / "exercises.parquet"
    if samples.num_rows == 0:
        raise StagingError(f"{s_path}: no samples")
    ids = samples["sample_id"]
    if ids.null_count:
        raise StagingError(f"{s_path}: {ids.null_count} row(s) without a sample_id")
    counts = pc.value_counts(ids)
    dup = [v.as_py() for v, c in zip(counts.field("values"), counts.field("counts"), strict=True) if c.as_py() > 1]
    if dup:
        raise StagingError(f"{s_path}: duplicate sample_id {_first(dup)}")
    bad_split = sorted({s for s in samples["split"].to_pylist() if s not in SPLITS}, key=str)
    if bad_split:
        raise StagingError(f"{s_path}: split must be one of {', '.join(SPLITS)}, got {_first(bad_split)}")
    ex_ids = exercises["sample_id"].to_pylist()
    if len(set(ex_ids)) != len(ex_ids):
        raise StagingError(f"{e_path}: more than one row for some sample_id")
    no_scores = sorted(set(ids.to_pylist()) - set(ex_ids))
    if no_scores:
        raise StagingError(f"{e_path}: no exercise scores for sample(s) {_first(no_scores)}")
    clash = (set(samples.column_names) & set(exercises.column_names)) - {"sample_id"}
    clash |= set(MEDIA_COLUMNS) & set(samples.column_names + exercises.column_names)
    if clash:
        raise StagingError(f"{s_path} / {e_path}: column name(s) {', '.join(sorted(clash))} clash in the staged table")

    joined = samples.join(exercises, keys="sample_id", join_type="left outer", use_threads=False)
    split_rank = pc.index_in(joined["split"], value_set=pa.array(SPLITS))
    slug_rank = pc.fill_null(
        pc.index_in(joined["rudiment_slug"], value_set=pa.array(RUDIMENT_SLUGS)), len(RUDIMENT_SLUGS)
    )
    keys = pa.table({"split": split_rank, "slug": slug_rank, "id": joined["sample_id"]})
    order = pc.sort_indices(keys, sort_keys=[("split", "ascending"), ("slug", "ascending"), ("id", "ascending")])
    # Keep the upstream column order: samples first, then the scores.
    columns = samples.column_names + [c for c in exercises.column_names if c != "sample_id"]
    return joined.take(order).select(columns).combine_chunks()


# ---------------------------------------------------------------- media files


def _tmp_beside(dest: Path) -> Path:
    return tmp_path(dest)


def sync_file(src: Path, dest: Path) -> str:
    """Make `dest` a hard link to (or, across devices, a copy of) `src`; leave it if already the same.

    Returns "unchanged", "linked" or "copied". Same inode, or same size and
    modification time (copies keep the source's mtime), counts as unchanged.
    """
    s = src.stat()
    try:
        d = dest.lstat()
    except FileNotFoundError:
        d = None
    if d is not None and not dest.is_symlink():
        if (d.st_ino, d.st_dev) == (s.st_ino, s.st_dev) or (d.st_size, d.st_mtime_ns) == (s.st_size, s.st_mtime_ns):
            return "unchanged"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_beside(dest)
    try:
        try:
            os.link(src, tmp)
            how = "linked"
        except OSError:  # another device, or a filesystem without hard links
            shutil.copy2(src, tmp)
            how = "copied"
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return how


def _media_plan(table: pa.Table, data_root: Path, samples_path: Path) -> dict[str, list[tuple[Path, str]]]:
    """media column -> [(source file, staged path relative to staging)] per row; every source must exist."""
    plan: dict[str, list[tuple[Path, str]]] = {}
    missing: list[str] = []
    slugs = table["rudiment_slug"].to_pylist()
    ids = table["sample_id"].to_pylist()
    for col, src_col in SOURCE_PATH_COLUMNS.items():
        rows = []
        for slug, sid, rel in zip(slugs, ids, table[src_col].to_pylist(), strict=True):
            if not rel:
                missing.append(f"{sid}: empty {src_col}")
                continue
            try:  # a path from a table is data: it must stay inside the data dir
                src = confine(data_root / rel, [data_root], what=f"{src_col} of {sid} in {samples_path}")
            except PathEscapeError as exc:
                raise StagingError(str(exc)) from None
            if not src.is_file():
                missing.append(str(src))
            rows.append((src, f"{MEDIA_DIRS[col]}/{slug}/{sid}{Path(rel).suffix}"))
        plan[col] = rows
    if missing:
        raise StagingError(f"{samples_path}: {len(missing)} media file(s) missing: {_first(missing)}")
    return plan


# ---------------------------------------------------------------- parquet


def _fingerprint(table: pa.Table, schema: pa.Schema, media: Sequence[os.stat_result] = ()) -> bytes:
    h = hashlib.sha256(f"music_assets staging {LAYOUT_VERSION}\n".encode())
    h.update(schema.serialize().to_pybytes())
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    h.update(sink.getvalue().to_pybytes())
    for st in media:
        h.update(f"{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest().encode()


def _existing_fingerprint(path: Path) -> bytes | None:
    try:
        return (pq.read_schema(path).metadata or {}).get(FINGERPRINT_KEY)
    except Exception:  # noqa: BLE001 - unreadable or missing: rewrite it
        return None


def _write_shard(path: Path, table: pa.Table, fingerprint: bytes, row_group_size: int | None) -> None:
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
    _write_shard(path, build(), fingerprint, row_group_size)
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


def _families(table: pa.Table, samples_path: Path) -> list[str]:
    """The PAS family (roll, diddle, flam, drag) of each row, from the rudiment library."""
    library = load_library()
    slugs = table["rudiment_slug"].to_pylist()
    unknown = sorted({s for s in slugs if s not in library}, key=str)
    if unknown:
        raise StagingError(f"{samples_path}: unknown rudiment_slug {_first(unknown)} (not in the rudiment library)")
    return [library[s].category for s in slugs]


def _shard_table(part: pa.Table, files: dict[str, Sequence[Path]], schema: pa.Schema) -> pa.Table:
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


def _write_sample_shards(
    out: StagedData,
    plan: dict[str, list[tuple[Path, str]]],
    media_stats: dict[str, list[os.stat_result]],
    shard_bytes: float,
    data_root: Path,
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
                stats = [media_stats[col][i] for col in MEDIA_COLUMNS for i in rows]
                fingerprint = _fingerprint(part, schema, stats)
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
                        lambda part=part, files=files: _shard_table(part, files, schema),
                        SAMPLE_ROWS_PER_GROUP,
                        out,
                    )
                rels.append(rel)
    for split in SPLITS:
        n = int(np.count_nonzero(splits == split))
        if n:
            out.split_rows[split] = n


# ---------------------------------------------------------------- deferred shards


def plan_info(path: Path) -> dict | None:
    """The plan metadata of a deferred shard's plan file (None for any other parquet file)."""
    return plan_info_of(pq.read_schema(path).metadata or {})


def plan_info_of(metadata: dict[bytes, bytes]) -> dict | None:
    """plan_info from a parquet schema's metadata already read."""
    raw = metadata.get(PLAN_KEY)
    return json.loads(raw) if raw else None


@dataclass(frozen=True)
class BuiltShard:
    rel: str  # the shard's path relative to staging
    path: Path  # where it was written
    rows: int
    size: int
    sha256: str  # what the Hub reports for an LFS/Xet file
    blob_id: str  # the git object id
    fingerprint: str


def build_deferred_shard(staging: Path, rel: str, dest: Path | None = None, limit: int | None = None) -> BuiltShard:
    """Build the deferred sample shard `rel` from its plan, atomically, into `dest` (default: its place in
    staging): the bytes `local` storage would have written. `limit` builds only the first rows (a preview).

    Raises StagingError, naming the files, when the plan is unreadable or a source file is missing or
    changed since staging (its bytes would not be the ones the card and the checks describe).
    """
    plan_path = layout.deferred_path(staging, rel)
    try:
        table = pq.read_table(plan_path)
        meta = table.schema.metadata or {}
        info = json.loads(meta[PLAN_KEY])
        fingerprint = meta[FINGERPRINT_KEY]
        schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(info["data_schema"])))
    except Exception as exc:  # noqa: BLE001 - missing, unreadable or not a plan
        raise StagingError(f"{plan_path}: not a readable shard plan ({exc}); materialize hf_staging again") from exc
    if limit is not None:
        table = table.slice(0, limit)
    data_root = Path(os.path.normpath(staging / info["data_root"]))
    files: dict[str, list[Path]] = {}
    changed: list[str] = []
    for col, (c_src, c_size, c_mtime) in PLAN_COLUMNS.items():
        files[col] = [data_root / r for r in table[c_src].to_pylist()]
        for f, size, mtime in zip(files[col], table[c_size].to_pylist(), table[c_mtime].to_pylist(), strict=True):
            try:
                st = f.stat()
            except FileNotFoundError:
                changed.append(f"{f} is missing")
                continue
            if (st.st_size, st.st_mtime_ns) != (size, mtime):
                changed.append(f"{f} changed ({st.st_size} bytes now, {size} when staged)")
    if changed:
        raise StagingError(
            f"{plan_path}: {len(changed)} source file(s) of {rel} changed since hf_staging: {_first(changed)}; "
            "materialize hf_staging again"
        )
    part = table.drop_columns([c for cols in PLAN_COLUMNS.values() for c in cols]).replace_schema_metadata(None)
    shard = _shard_table(part, files, schema)
    dest = dest or staging / rel
    _write_shard(dest, shard, fingerprint, SAMPLE_ROWS_PER_GROUP)
    size = dest.stat().st_size
    sha = hashlib.sha256()
    blob = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False)
    with open(dest, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
            blob.update(chunk)
    return BuiltShard(rel, dest, shard.num_rows, size, sha.hexdigest(), blob.hexdigest(), fingerprint.decode())


def read_built_record(staging: Path) -> dict[str, dict]:
    """{shard: {fingerprint, size, sha256, blob_id, rows}} of the deferred shards built so far ({} when none)."""
    try:
        return json.loads((staging / layout.BUILT_RECORD).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}


def record_built(staging: Path, shards: Sequence[BuiltShard]) -> None:
    """Remember what each built shard's bytes were (so a later upload knows them without building)."""
    record = read_built_record(staging)
    for b in shards:
        record[b.rel] = {
            "fingerprint": b.fingerprint,
            "size": b.size,
            "sha256": b.sha256,
            "blob_id": b.blob_id,
            "rows": b.rows,
        }
    write_bytes(staging / layout.BUILT_RECORD, json.dumps(record, indent=1, sort_keys=True).encode())


def choose_shard_storage(setting: str, estimated: int, free: int) -> tuple[str, str]:
    """(storage, why) for the sample shards: `setting` unless "auto", which keeps them local while they take at
    most LOCAL_SHARE_OF_FREE_DISK of `free` (the free disk plus what the current shards occupy)."""
    if setting != "auto":
        return setting, f"shard_storage is {setting}"
    gb = f"{estimated / 1e9:.1f} GB"
    if estimated <= LOCAL_SHARE_OF_FREE_DISK * free:
        return "local", f"auto: the sample shards ({gb}) take at most half of the {free / 1e9:.1f} GB free"
    return "deferred", (
        f"auto: the sample shards ({gb}) would take more than half of the {free / 1e9:.1f} GB free, "
        "so each is built when it is uploaded"
    )


def _row_splits(aux: pa.Table, samples: pa.Table, path: Path) -> pa.Array:
    """The split of each row of a label table (its sample's); every row must belong to a staged sample."""
    where = pc.index_in(aux["sample_id"], value_set=samples["sample_id"])
    if where.null_count:
        orphans = sorted(set(pc.filter(aux["sample_id"], pc.is_null(where)).to_pylist()), key=str)
        raise StagingError(
            f"{path}: {where.null_count} row(s) of sample_id(s) not in samples.parquet: {_first(orphans)}"
        )
    return pc.take(samples["split"], where)


def _write_auxiliary(out: StagedData, name: str, aux: pa.Table, row_split: pa.Array, shard_bytes: float) -> None:
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


# ---------------------------------------------------------------- staging


def stage(data_root: Path, staging: Path, settings: StagingSettings = StagingSettings()) -> StagedData:
    """Build (or bring up to date) the staging folder; return what it holds.

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
    families = _families(table, labels_dir / "samples.parquet")
    plan = _media_plan(table, data_root, labels_dir / "samples.parquet")
    aux_splits = {
        name: _row_splits(labels[name], table, labels_dir / f"{name}.parquet") for name in layout.AUXILIARY_TABLES
    }
    n_media = sum(len(v) for v in plan.values())
    embedded = n_media > settings.file_budget
    media_stats = {col: [src.stat() for src, _ in rows] for col, rows in plan.items()}
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
    _write_sample_shards(out, plan, media_stats, shard_bytes, data_root)
    for name in layout.AUXILIARY_TABLES:
        _write_auxiliary(out, name, labels[name], aux_splits[name], shard_bytes)
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
