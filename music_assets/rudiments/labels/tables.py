"""The label tables as a set of files, and the batched readers the checks share."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from music_assets import layout
from music_assets.checks import Markdown

BATCH_ROWS = 65_536
EXAMPLES = 5


class LabelsError(RuntimeError):
    """A partition's tables are missing or inconsistent; the message names the file."""


@dataclass(frozen=True)
class TableSet:
    """The four label tables of one partition or of the merged dataset."""

    samples: Path
    strokes: Path
    measures: Path
    exercises: Path

    @classmethod
    def in_folder(cls, folder: Path) -> TableSet:
        return cls(*(folder / f"{name}.parquet" for name in layout.PARTITION_TABLES))

    @property
    def paths(self) -> dict[str, Path]:
        return dict(
            zip(layout.PARTITION_TABLES, (self.samples, self.strokes, self.measures, self.exercises), strict=True)
        )


def read_columns(path: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
    yield from pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=columns)


def sample_frame(path: Path, columns: Iterable[str]) -> pd.DataFrame:
    names = pq.read_schema(path).names
    return pq.read_table(path, columns=[c for c in columns if c in names]).to_pandas()


def count_by_sample(path: Path) -> Counter:
    counts: Counter = Counter()
    for batch in read_columns(path, ["sample_id"]):
        vc = pc.value_counts(batch.column(0))
        counts.update(dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True)))
    return counts


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A small markdown table (for metadata); "(none)", a plain text, without rows."""
    if not rows:
        return "(none)"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
    return Markdown("\n".join(lines))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.3g}" if abs(v) < 1 else f"{v:.1f}"
    return str(v)
