"""Column schemas read from the parquet files an asset wrote, and table metadata, made one way."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from music_assets.defs.table_metadata import COLUMN_SCHEMA_KEY, parquet_columns, table


def test_column_schema_comes_from_the_files_with_the_published_meanings(tmp_path: Path) -> None:
    samples, strokes = tmp_path / "samples.parquet", tmp_path / "strokes.parquet"
    pq.write_table(
        pa.table({"sample_id": ["a"], "tempo_bpm": [96.0], "mystery": pa.array(["x"], pa.large_string())}), samples
    )
    pq.write_table(pa.table({"sample_id": ["a"], "velocity": pa.array([90], pa.int16())}), strokes)
    meta = parquet_columns(
        {"samples": samples, "strokes": strokes, "gone": tmp_path / "gone.parquet"},
        main="samples",
        documented_as={"samples": "data", "strokes": "strokes"},
    )
    assert set(meta) == {COLUMN_SCHEMA_KEY, "columns/samples", "columns/strokes"}
    main = meta[COLUMN_SCHEMA_KEY].schema
    assert [(c.name, c.type) for c in main.columns] == [
        ("sample_id", "string"),
        ("tempo_bpm", "double"),
        ("mystery", "string"),
    ]
    described = {c.name: c.description for c in main.columns}
    assert described["sample_id"] and described["mystery"] is None
    assert [(c.name, c.type) for c in meta["columns/strokes"].schema.columns][1] == ("velocity", "int16")
    # what Dagster stores and shows: the schema survives a materialization's metadata
    result = dg.materialize([dg.asset(name="t")(lambda: dg.MaterializeResult(metadata=meta))])
    stored = result.asset_materializations_for_node("t")[0].metadata[COLUMN_SCHEMA_KEY].schema
    assert stored == main


def test_table_metadata_keeps_types_and_fills_missing_values() -> None:
    value = table(
        [("tier", "string"), ("accuracy", "float"), ("n", "int")],
        [{"tier": "pro", "accuracy": np.float32(0.5), "n": np.int64(3)}, {"tier": "x"}],
    )
    assert [c.type for c in value.schema.columns] == ["string", "float", "int"]
    assert value.records[0].data == {"tier": "pro", "accuracy": 0.5, "n": 3}
    assert value.records[1].data == {"tier": "x", "accuracy": None, "n": None}
