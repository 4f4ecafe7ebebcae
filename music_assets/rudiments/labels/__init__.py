"""Merging the per-rudiment tables into the dataset's label files, and the checks on them.

`merge_labels` streams: it holds one partition's tables at a time and appends
them to four `pyarrow.parquet.ParquetWriter`s (one row group per partition),
so memory does not grow with the number of samples. `samples.parquet` is each
partition's performance samples joined with its `audio.parquet` on `sample_id`
(all columns of both; an audio column that repeats a samples column is dropped).

The checks read the written files back (in record batches) and return a
`music_assets.checks.CheckResult`; they are shared by the per-partition checks of
`rudiment_performances` and the dataset-level checks of `rudiment_labels`.
Per-sample bookkeeping (ids, stroke counts) grows with the number of samples,
never with the number of strokes.

The package: `tables` (the table set, batched readers),
`merge` (`merge_labels`), `checks` (integrity, scores, value ranges, stroke
counts, tempos), `realism` (the per-tier realism table and its check).
"""

from __future__ import annotations

from music_assets.rudiments.labels.checks import (
    MAX_ABS_TIMING_ERROR_MS,
    MAX_DURATION_SEC,
    MAX_FLAM_SPACING_MS,
    MIDI_VELOCITY,
    TIME_TOLERANCE_MS,
    check_integrity,
    check_scores,
    check_stroke_counts,
    check_tempos,
    check_value_ranges,
)
from music_assets.rudiments.labels.merge import MERGE_BATCH_ROWS, MergeSummary, join_audio, merge_labels
from music_assets.rudiments.labels.realism import (
    PRIMARY_NAMES,
    REALISM_RANGES,
    check_realism,
    per_sample_realism,
    realism_table,
)
from music_assets.rudiments.labels.tables import (
    BATCH_ROWS,
    EXAMPLES,
    LabelsError,
    TableSet,
    count_by_sample,
    markdown_table,
    read_columns,
    sample_frame,
)

__all__ = [
    "BATCH_ROWS",
    "EXAMPLES",
    "LabelsError",
    "MAX_ABS_TIMING_ERROR_MS",
    "MAX_DURATION_SEC",
    "MAX_FLAM_SPACING_MS",
    "MERGE_BATCH_ROWS",
    "MIDI_VELOCITY",
    "MergeSummary",
    "PRIMARY_NAMES",
    "REALISM_RANGES",
    "TIME_TOLERANCE_MS",
    "TableSet",
    "check_integrity",
    "check_realism",
    "check_scores",
    "check_stroke_counts",
    "check_tempos",
    "check_value_ranges",
    "count_by_sample",
    "join_audio",
    "markdown_table",
    "merge_labels",
    "per_sample_realism",
    "read_columns",
    "realism_table",
    "sample_frame",
]
