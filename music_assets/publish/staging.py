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

Every parquet file carries a fingerprint of what it was built from (rows,
media sizes and modification times) in its footer; a re-run with unchanged
inputs rewrites nothing. Files in the staging folder that the current dataset
does not produce (old shards, removed samples, the other layout's media) are
deleted, so the folder is exactly the dataset.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from music_assets.io import PARTIAL_SUFFIX, write_bytes, write_parquet
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


class StagingError(ValueError):
    """Bad or missing input; the message names the file and the reason."""


@dataclass(frozen=True)
class StagingSettings:
    """How the staging folder is built (the card's wording lives in `card.CardSettings`)."""

    file_budget: int = 50_000  # browsable media files above this: parquet only ("embedded")
    shard_size_mb: float = 500.0  # upper bound of every parquet shard


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
    return dest.with_name(f".{dest.name}.{os.getpid()}-{secrets.token_hex(4)}{PARTIAL_SUFFIX}")


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
            src = data_root / rel
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


def _write_if_changed(path: Path, fingerprint: bytes, build, row_group_size: int | None, out: StagedData) -> None:
    """Write the table `build()` returns unless `path` already holds one with this fingerprint."""
    rel = path.relative_to(out.staging).as_posix()
    if _existing_fingerprint(path) == fingerprint:
        out.parquet_unchanged.append(rel)
        return
    table = build()
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


def _write_sample_shards(
    out: StagedData,
    plan: dict[str, list[tuple[Path, str]]],
    media_stats: dict[str, list[os.stat_result]],
    shard_bytes: float,
) -> None:
    """Write `data/<family>/{split}-NNNNN-of-NNNNN.parquet` with the media embedded (unless unchanged)."""
    base, schema, staging = out.table, out.data_schema, out.staging
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

                def build(part=part, rows=rows):
                    cols = {c: part[c] for c in part.column_names}
                    for col in MEDIA_COLUMNS:
                        cols[col] = _embedded_column([plan[col][i][0] for i in rows])
                    return pa.table(cols).cast(schema)

                _write_if_changed(staging / rel, _fingerprint(part, schema, stats), build, SAMPLE_ROWS_PER_GROUP, out)
                rels.append(rel)
    for split in SPLITS:
        n = int(np.count_nonzero(splits == split))
        if n:
            out.split_rows[split] = n


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
    )
    staging.mkdir(parents=True, exist_ok=True)

    if not embedded:
        for col in MEDIA_COLUMNS:
            for src, rel in plan[col]:
                how = sync_file(src, staging / rel)
                setattr(out.media, how, getattr(out.media, how) + 1)

    shard_bytes = settings.shard_size_mb * 1e6
    _write_sample_shards(out, plan, media_stats, shard_bytes)
    for name in layout.AUXILIARY_TABLES:
        _write_auxiliary(out, name, labels[name], aux_splits[name], shard_bytes)
    return out


def expected_files(staged: StagedData, extra: Sequence[str]) -> set[str]:
    """Every path (relative to staging) the current dataset consists of."""
    files = {rel for by_split in staged.shards.values() for rels in by_split.values() for rel in rels}
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
