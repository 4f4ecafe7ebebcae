"""Merging the per-rudiment performance tables (and audio.parquet) into the dataset's four label files."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from music_assets import layout
from music_assets.io import atomic_path
from music_assets.rudiments.dataset import SCHEMAS
from music_assets.rudiments.labels.tables import EXAMPLES, LabelsError, TableSet

MERGE_BATCH_ROWS = 16_384  # rows per row group of the merged tables: merging holds one batch, not a partition


@dataclass
class MergeSummary:
    rows: dict[str, int]
    partitions: list[str]
    audio_columns: list[str]


def _read(path: Path, what: str) -> pa.Table:
    if not path.is_file():
        raise LabelsError(f"{path}: missing ({what})")
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise LabelsError(f"{path}: unreadable parquet ({exc})") from exc


def _read_batches(path: Path, what: str) -> Iterator[pa.RecordBatch]:
    """The rows of `path` in batches of at most MERGE_BATCH_ROWS, with _read's errors."""
    if not path.is_file():
        raise LabelsError(f"{path}: missing ({what})")
    try:
        yield from pq.ParquetFile(path).iter_batches(batch_size=MERGE_BATCH_ROWS)
    except (OSError, pa.ArrowException) as exc:
        raise LabelsError(f"{path}: unreadable parquet ({exc})") from exc


def _conform(table: pa.Table, schema: pa.Schema, path: Path) -> pa.Table:
    missing = [n for n in schema.names if n not in table.column_names]
    if missing:
        raise LabelsError(f"{path}: columns {missing} are missing")
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise LabelsError(f"{path}: columns do not match the expected types ({exc})") from exc


def join_audio(samples: pa.Table, audio: pa.Table, audio_file: Path) -> pa.Table:
    """`samples` with the columns of `audio` (matched on sample_id; nulls where audio has no row)."""
    ids = audio.column("sample_id").to_pylist()
    if len(set(ids)) != len(ids):
        dup = [k for k, v in Counter(ids).items() if v > 1][:EXAMPLES]
        raise LabelsError(f"{audio_file}: duplicate sample_id rows {dup}")
    row_of = {sid: i for i, sid in enumerate(ids)}
    take = pa.array([row_of.get(sid) for sid in samples.column("sample_id").to_pylist()], type=pa.int64())
    extra = [c for c in audio.column_names if c not in samples.column_names]
    joined = samples
    for name in extra:
        col = audio.column(name)
        if pa.types.is_large_string(col.type):
            col = col.cast(pa.string())
        joined = joined.append_column(name, col.take(take))
    return joined


def merge_labels(slugs: Sequence[str], root: Path) -> MergeSummary:
    """Write `rudiments/labels/{samples,strokes,measures,exercises}.parquet` from the partitions.

    Every partition in `slugs` must have its performance tables and its
    `audio.parquet`; a missing one is an error naming the file. Files are
    replaced atomically, and only when all four were written.
    """
    out_dir = layout.labels_dir(root)
    rows = dict.fromkeys(layout.PARTITION_TABLES, 0)
    writers: dict[str, pq.ParquetWriter] = {}
    samples_schema: pa.Schema | None = None
    audio_columns: list[str] = []
    with contextlib.ExitStack() as stack:
        tmp = {name: stack.enter_context(atomic_path(out_dir / f"{name}.parquet")) for name in layout.PARTITION_TABLES}
        for slug in slugs:
            folder = layout.performance_dir(slug, root)
            tables = TableSet.in_folder(folder)
            audio_file = folder / f"{layout.AUDIO_TABLE}.parquet"
            samples = _conform(_read(tables.samples, f"performances of {slug}"), SCHEMAS["samples"], tables.samples)
            audio = _read(audio_file, f"audio of {slug}; materialize rudiment_audio for this partition")
            if "sample_id" not in audio.column_names:
                raise LabelsError(f"{audio_file}: has no sample_id column")
            joined = join_audio(samples, audio, audio_file)
            if samples_schema is None:
                samples_schema = joined.schema
                audio_columns = [c for c in joined.column_names if c not in SCHEMAS["samples"].names]
            elif joined.schema.names != samples_schema.names:
                raise LabelsError(
                    f"{audio_file}: audio columns {joined.column_names[len(SCHEMAS['samples']) :]} "
                    f"differ from the first partition's {audio_columns}"
                )
            parts = {"samples": [_conform(joined, samples_schema, audio_file)]}
            for name in ("strokes", "measures", "exercises"):
                path = tables.paths[name]
                # in batches: a full-preset partition has 250,000 strokes
                parts[name] = (
                    _conform(pa.Table.from_batches([b]), SCHEMAS[name], path)
                    for b in _read_batches(path, f"{name} of {slug}")
                )
            for name, chunks in parts.items():
                if name not in writers:
                    schema = samples_schema if name == "samples" else SCHEMAS[name]
                    writers[name] = stack.enter_context(pq.ParquetWriter(tmp[name], schema, compression="zstd"))
                for table in chunks:
                    writers[name].write_table(table, row_group_size=max(1, table.num_rows))
                    rows[name] += table.num_rows
            del parts, joined, samples, audio
        if not writers:
            raise LabelsError("no partitions to merge")
        for w in writers.values():
            w.close()
    return MergeSummary(rows=rows, partitions=list(slugs), audio_columns=audio_columns)
