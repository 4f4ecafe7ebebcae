"""The catalog table: its schema, rows reused from the previous catalog, provenance and source ids."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from music_assets.audio.catalog.keys import source_key
from music_assets.audio.catalog.pool import analyze_many
from music_assets.audio.catalog.walker import Entry, WalkStats, audio_format, escape_name, resolve_roots, scan

# Bump when a measurement changes meaning: catalogs written by another version are not reused.
ANALYSIS_VERSION = "2"  # 2: file tags (tag_title, tag_artist, tag_license)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("source_id", "string"),
    ("root", "string"),
    ("rel_path", "string"),
    ("format", "string"),
    ("status", "string"),
    ("error", "string"),
    ("duration_sec", "float64"),
    ("sample_rate", "int32"),
    ("channels", "int32"),
    ("frames", "int64"),
    ("subtype", "string"),
    ("file_size_bytes", "int64"),
    ("mtime", "timestamp"),
    ("mtime_ns", "int64"),
    ("peak_dbfs", "float64"),
    ("rms_dbfs", "float64"),
    ("clipped_ratio", "float64"),
    ("silence_ratio", "float64"),
    ("loudness_lufs", "float64"),
    ("content_hash", "string"),
    ("analyzed", "bool"),
    # provenance (music_assets.audio.provenance): recomputed on every run, never reused
    ("provider", "string"),
    ("license", "string"),
    ("author", "string"),
    ("url", "string"),
    ("acquired", "date32"),
    ("cost", "float64"),
    ("provenance_source", "string"),
    ("provenance_error", "string"),
    ("sidecar", "string"),
    # tags read from the file by the analysis (reused with it: they change only with the file)
    ("tag_title", "string"),
    ("tag_artist", "string"),
    ("tag_license", "string"),
)


_MEASURES = (
    "duration_sec",
    "sample_rate",
    "channels",
    "frames",
    "subtype",
    "peak_dbfs",
    "rms_dbfs",
    "clipped_ratio",
    "silence_ratio",
    "loudness_lufs",
)


@dataclass
class CatalogResult:
    rows: list[dict[str, Any]]
    roots: list[str]
    stats: WalkStats
    reused: int
    analyzed: int
    seconds: float

    def table(self):
        """The rows as a pyarrow Table with the catalog schema; its metadata names the roots walked."""
        table = rows_to_table(self.rows)
        return table.replace_schema_metadata({**table.schema.metadata, ROOTS_METADATA: json.dumps(self.roots)})


ROOTS_METADATA = b"music_assets.roots"


def cataloged_roots(path: str | os.PathLike[str]) -> list[str] | None:
    """The roots a written catalog was made from (real paths); None without a readable catalog."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    try:
        meta = pq.read_schema(path).metadata or {}
        return list(json.loads(meta[ROOTS_METADATA]))
    except (OSError, KeyError, ValueError, TypeError):
        return None


def catalog_schema():
    """The pyarrow schema of audio_catalog.parquet."""
    import pyarrow as pa  # noqa: PLC0415

    types = {
        "string": pa.string(),
        "float64": pa.float64(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "bool": pa.bool_(),
        "date32": pa.date32(),
        "timestamp": pa.timestamp("ns", tz="UTC"),
    }
    return pa.schema(
        [(name, types[t]) for name, t in COLUMNS], metadata={"music_assets.analysis_version": ANALYSIS_VERSION}
    )


def rows_to_table(rows: list[dict[str, Any]]):
    import pyarrow as pa  # noqa: PLC0415

    schema = catalog_schema()
    columns = {name: [r.get(name) for r in rows] for name in schema.names}
    columns["mtime"] = pa.array(columns["mtime_ns"], type=pa.int64()).cast(schema.field("mtime").type)
    return pa.table({n: pa.array(v, type=schema.field(n).type) for n, v in columns.items()}, schema=schema)


def load_previous(path: str | os.PathLike[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """Reusable rows of an earlier catalog, by (root, rel_path); empty if none or another version."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    if not os.path.exists(path):
        return {}
    try:
        table = pq.read_table(path)
    except Exception:  # noqa: BLE001 - an unreadable previous catalog only costs a full re-analysis
        return {}
    meta = table.schema.metadata or {}
    if meta.get(b"music_assets.analysis_version") != ANALYSIS_VERSION.encode():
        return {}
    if set(table.column_names) != {name for name, _ in COLUMNS}:
        return {}
    table = table.drop_columns(["mtime"])
    return {(r["root"], r["rel_path"]): r for r in table.to_pylist() if r["analyzed"]}


def _row_from_entry(e: Entry, **extra: Any) -> dict[str, Any]:
    row = {name: None for name, _ in COLUMNS if name != "mtime"}  # mtime is derived from mtime_ns
    row.update(
        root=e.root,
        rel_path=e.rel_path,
        format=audio_format(e.rel_path),
        status=e.status,
        error=e.error,
        file_size_bytes=e.size,
        mtime_ns=e.mtime_ns,
        analyzed=False,
    )
    row.update(extra)
    return row


def build_catalog(
    roots: Iterable[str | os.PathLike[str]],
    *,
    previous: dict[tuple[str, str], dict[str, Any]] | None = None,
    excluded: Iterable[str | os.PathLike[str]] = (),
    workers: int = 0,
    progress: Callable[..., None] | None = None,
) -> CatalogResult:
    """Walk, reuse unchanged rows from `previous`, analyse the rest, assign source ids.

    `progress(done, total)` counts the files analysed of those to analyse (reused rows are not counted).
    """
    started = time.perf_counter()
    entries, stats = scan(roots, excluded)
    previous = previous or {}
    rows: list[dict[str, Any] | None] = []
    todo: list[tuple[int, Entry]] = []
    reused = 0
    for e in entries:
        if e.status:
            rows.append(_row_from_entry(e))
            continue
        old = previous.get((e.root, e.rel_path))
        if old and old["file_size_bytes"] == e.size and old["mtime_ns"] == e.mtime_ns:
            row = dict(old)
            if row["status"] == "skipped":  # an analysed row is only skipped as a duplicate: decided afresh below
                row.update(status="ok", error=None)
            rows.append(row)
            reused += 1
            continue
        todo.append((len(rows), e))
        rows.append(None)
    for (i, e), result in zip(todo, analyze_many([e.path for _, e in todo], workers, progress=progress), strict=True):
        rows[i] = _row_from_entry(e, **result)
    final = [r for r in rows if r is not None]
    add_provenance(final, entries, stats)
    _assign_source_ids(final)
    return CatalogResult(final, resolve_roots(roots), stats, reused, len(todo), time.perf_counter() - started)


def add_provenance(rows: list[dict[str, Any]], entries: Sequence[Entry], stats: WalkStats) -> None:
    """Set the provenance columns of every row from its sidecar, its root's provenance.csv and its tags.

    Recomputed on every run, reused rows included: a sidecar or CSV edited,
    added or removed shows in the next catalog without decoding the audio again.
    """
    from music_assets.audio import provenance as pv  # noqa: PLC0415

    sidecars = {(e.root, e.rel_path): (e.sidecar, e.sidecar_error) for e in entries}
    tables = {
        root: pv.CsvTable({}, {}, stats.provenance_csv_errors[root])
        if root in stats.provenance_csv_errors
        else pv.read_csv(os.path.join(root, pv.CSV_NAME))
        for root in stats.provenance_csv
    }
    for row in rows:
        errors: list[str | None] = []
        sidecar_path, sidecar_error = sidecars.get((row["root"], row["rel_path"]), (None, None))
        sidecar = None
        if sidecar_path and sidecar_error:
            errors.append(f"{escape_name(os.path.basename(sidecar_path))}: {sidecar_error}")
        elif sidecar_path:
            try:
                sidecar = pv.read_sidecar(sidecar_path)
            except pv.ProvenanceError as exc:
                errors.append(f"{os.path.basename(sidecar_path)}: {exc}")
        table = tables.get(row["root"])
        csv_row = None
        if table is not None:
            errors += [table.error_for_all, table.errors.get(row["rel_path"])]
            csv_row = table.rows.get(row["rel_path"])
        tags = {k: row.get(k) for k in pv.TAG_FIELDS}
        row.update(pv.resolve(sidecar, csv_row, tags))
        row["sidecar"] = os.path.relpath(sidecar_path, row["root"]).replace(os.sep, "/") if sidecar_path else None
        row["provenance_error"] = pv.join_errors(errors)


def _assign_source_ids(rows: list[dict[str, Any]]) -> None:
    """Give every row its `source_key`, in row order; see Identity in the module docstring."""
    first: dict[str, dict[str, Any]] = {}
    for r in rows:
        sid = source_key(r["rel_path"])
        other = first.get(sid)
        if other is not None and other["rel_path"] == r["rel_path"] and other["content_hash"] == r["content_hash"]:
            r["source_id"] = None
            if r["status"] == "ok":
                r["status"] = "skipped"
                r["error"] = f"duplicate: same path and content as {os.path.join(other['root'], other['rel_path'])}"
            continue
        n = 1
        while sid in first:  # another file already has the key: hash in the root's name (and a count)
            n += 1
            salt = os.path.basename(r["root"]) + (f"#{n}" if n > 2 else "")
            sid = source_key(r["rel_path"], salt)
        first[sid] = r
        r["source_id"] = sid
