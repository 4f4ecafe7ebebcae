"""Dagster table metadata, made one way for every group.

- `table(columns, rows)` / `rows_table(header, rows)`: a table the UI shows as one (sortable
  columns, types), for results that are tables (per-tier figures, checkpoints, per-rudiment
  counts), instead of hand-made markdown.
- `parquet_columns(files, main=...)`: the column schema of the parquet tables an asset writes,
  read from the files themselves: the main table's as `dagster/column_schema` (what the UI's
  "Columns" tab and column lineage read), every table's as `columns/<name>`. Column meanings come
  from `music_assets.publish.columns` where the published dataset documents them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

COLUMN_SCHEMA_KEY = "dagster/column_schema"


def _cell(v: Any) -> str | int | float | bool | None:
    v = v.item() if hasattr(v, "item") else v  # numpy scalars
    return v if v is None or isinstance(v, (str, bool, int)) else float(v)


def table(columns: Sequence[tuple[str, str]], rows: Sequence[Mapping[str, Any]]) -> dg.TableMetadataValue:
    """Dagster table metadata: `columns` as (name, type), rows as mappings (a missing value is None)."""
    return dg.MetadataValue.table(
        records=[dg.TableRecord({name: _cell(r.get(name)) for name, _ in columns}) for r in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns]),
    )


def _kind(values: Sequence[Any]) -> str:
    present = [_cell(v) for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "bool"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int"
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "float"
    return "string"


def rows_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> dg.TableMetadataValue:
    """`table` for rows given as lists under `header`; each column's type from its values (bool, int,
    float, else string, where a value that is none of those is shown as its text)."""
    columns = [(name, _kind([r[i] for r in rows])) for i, name in enumerate(header)]
    records = [
        {
            name: (v if kind != "string" or v is None or isinstance(v, str) else str(v))
            for (name, kind), v in zip(columns, r, strict=True)
        }
        for r in rows
    ]
    return table(columns, records)


def _type_name(arrow_type: Any) -> str:
    return str(arrow_type).replace("large_string", "string")


def schema_of(path: str | Path, documented_as: str | None = None) -> dg.TableSchema:
    """The column schema of the parquet file `path` (names and Arrow types from its footer), with each
    column's meaning from the published dataset's table `documented_as` ("data", "strokes", "measures")."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    return columns_of(pq.read_schema(path), documented_as)


def columns_of(schema: Any, documented_as: str | None = None) -> dg.TableSchema:
    """`schema_of` for an Arrow schema already in hand."""
    from music_assets.publish.columns import describe  # noqa: PLC0415

    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                f.name,
                _type_name(f.type),
                description=describe(documented_as, f.name) if documented_as else None,
            )
            for f in schema
        ]
    )


def parquet_columns(
    files: Mapping[str, str | Path], main: str, documented_as: Mapping[str, str] | None = None
) -> dict[str, dg.TableSchemaMetadataValue]:
    """Column-schema metadata of the parquet tables `files` (name -> path): `dagster/column_schema` is
    the `main` table's, and with more than one table each is also under `columns/<name>`. Tables whose
    file is missing are left out (an asset that wrote none of them reports no schema)."""
    documented_as = documented_as or {}
    schemas = {name: schema_of(path, documented_as.get(name)) for name, path in files.items() if Path(path).is_file()}
    out: dict[str, dg.TableSchemaMetadataValue] = {}
    if main in schemas:
        out[COLUMN_SCHEMA_KEY] = dg.MetadataValue.table_schema(schemas[main])
    if len(files) > 1:
        out.update({f"columns/{name}": dg.MetadataValue.table_schema(s) for name, s in schemas.items()})
    return out
