"""The label tables read for staging: checked, normalized, and the sample table joined with its exercises."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from music_assets.publish.staging.base import LABEL_TABLES, MEDIA_COLUMNS, REQUIRED_COLUMNS, StagingError, first_few
from music_assets.rudiments.constants import RUDIMENT_SLUGS, SPLITS


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
        raise StagingError(f"{s_path}: duplicate sample_id {first_few(dup)}")
    bad_split = sorted({s for s in samples["split"].to_pylist() if s not in SPLITS}, key=str)
    if bad_split:
        raise StagingError(f"{s_path}: split must be one of {', '.join(SPLITS)}, got {first_few(bad_split)}")
    ex_ids = exercises["sample_id"].to_pylist()
    if len(set(ex_ids)) != len(ex_ids):
        raise StagingError(f"{e_path}: more than one row for some sample_id")
    no_scores = sorted(set(ids.to_pylist()) - set(ex_ids))
    if no_scores:
        raise StagingError(f"{e_path}: no exercise scores for sample(s) {first_few(no_scores)}")
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


def row_splits(aux: pa.Table, samples: pa.Table, path: Path) -> pa.Array:
    """The split of each row of a label table (its sample's); every row must belong to a staged sample."""
    where = pc.index_in(aux["sample_id"], value_set=samples["sample_id"])
    if where.null_count:
        orphans = sorted(set(pc.filter(aux["sample_id"], pc.is_null(where)).to_pylist()), key=str)
        raise StagingError(
            f"{path}: {where.null_count} row(s) of sample_id(s) not in samples.parquet: {first_few(orphans)}"
        )
    return pc.take(samples["split"], where)
