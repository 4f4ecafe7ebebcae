"""style_presets: the style taxonomy, resolved and validated, as a table."""

# No `from __future__ import annotations`: Dagster resolves the Config annotations at definition time.

import dagster as dg

from music_assets.defs import owners
from music_assets.defs import table_metadata as tm
from music_assets.defs.training_sets.common import GROUP, presets_file


@dg.asset(owners=owners.TRAINING_SETS, code_version="1", group_name=GROUP, kinds={"yaml", "parquet"})
def style_presets(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """The style taxonomy as data: 38 presets in 5 categories (the package's presets.yaml), `extends`
    resolved and validated; the resolved table as parquet."""
    import pyarrow as pa  # noqa: PLC0415

    from music_assets.io import write_parquet  # noqa: PLC0415
    from music_assets.training_sets.presets import CATEGORIES, PRESETS_FILE, PresetError, as_rows, load_presets  # noqa: PLC0415

    try:
        presets = load_presets()
    except PresetError as exc:
        raise dg.Failure(description=str(exc)) from None
    rows = as_rows(presets)
    table = pa.Table.from_pylist(rows)
    write_parquet(presets_file(), table)
    per_category = [{"category": c, "presets": sum(p.category == c for p in presets.values())} for c in CATEGORIES]
    return dg.MaterializeResult(
        metadata={
            "presets": len(presets),
            "per_category": tm.table([("category", "string"), ("presets", "int")], per_category),
            "presets_table": tm.table(
                [
                    ("name", "string"),
                    ("category", "string"),
                    ("extends", "string"),
                    ("tempo_min", "float"),
                    ("tempo_max", "float"),
                    ("auto", "bool"),
                    ("genre", "string"),
                    ("mood", "string"),
                ],
                rows,
            ),
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(f.name, str(f.type)) for f in table.schema]
            ),
            "source": dg.MetadataValue.path(str(PRESETS_FILE)),
            "path": dg.MetadataValue.path(str(presets_file())),
        }
    )
