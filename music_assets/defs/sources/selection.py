"""selected_sources: the files that become training sources, their partitions kept in step, and the
per-source data versions that let only what changed re-run."""

# No `from __future__ import annotations`: Dagster resolves the Config annotations at definition time.
from typing import Any

import dagster as dg
from pydantic import Field, model_validator

from music_assets.audio.preparation import MIN_DURATION_SEC
from music_assets.defs import owners
from music_assets.defs.guards import writing
from music_assets.defs.partitions import prepared_source_partitions
from music_assets.defs.sources import keys as source_keys
from music_assets.defs.sources.catalog import audio_catalog
from music_assets.defs.sources.common import (
    GROUP,
    PREPARED_ASSET,
    SOURCE_FILES,
    _read_parquet,
    catalog_file,
    prepared_dir,
    selected_file,
)
from music_assets.defs.table_metadata import parquet_columns


class SelectionConfig(dg.Config):
    min_duration_sec: float = 30.0
    max_duration_sec: float = 3600.0
    preferred_patterns: list[str] = Field(
        default=["bounces", "masters", "tracks"], description="Path words that add preferred_boost to the score."
    )
    preferred_boost: float = 10.0
    skip_patterns: list[str] = Field(default=["scratch", "test", "draft"], description="Path words that reject a file.")
    preferred_channels: int | None = None
    preferred_sample_rate: int | None = None
    max_clipped_ratio: float = 0.001
    max_silence_ratio: float = 0.5
    allowed_licenses: list[str] | None = Field(
        default=None,
        description="Licenses a source may have (case-insensitive, e.g. ['CC0-1.0', 'CC-BY-4.0']; add 'unknown' "
        "to keep sources without one). Default None: every license, recorded in the license column.",
    )
    allow_empty: bool = Field(
        default=False,
        description="A selection that selects nothing fails instead of removing every prepared source "
        "(its partitions and files); set true to remove them all on purpose.",
    )

    @model_validator(mode="after")
    def _rules_make_sense(self) -> "SelectionConfig":
        from music_assets.audio.selection import SelectionRules  # noqa: PLC0415

        SelectionRules(**self.rules())  # raises ValueError naming every problem
        return self

    def rules(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if k != "allow_empty"}


def source_provenance() -> dict[str, dict[str, Any]]:
    """license, provider, author, url, acquired, cost and provenance_source of every cataloged source id,
    from selected_sources.parquet: what an asset made from the sources cites."""
    from music_assets.audio.selection import provenance_by_source  # noqa: PLC0415

    return provenance_by_source(_read_parquet(selected_file()).to_pylist())


def preparable_ids(selected_rows: list[dict[str, Any]]) -> list[str]:
    """Partition keys of prepared_sources: selected sources long enough to prepare."""
    return sorted(
        {
            r["source_id"]
            for r in selected_rows
            if r["selected"] and r["source_id"] and r["duration_sec"] >= MIN_DURATION_SEC
        }
    )


def sync_prepared_partitions(instance: dg.DagsterInstance, wanted: list[str]) -> tuple[list[str], list[str]]:
    """Make the prepared_sources partitions exactly `wanted`; returns (added, removed)."""
    name = prepared_source_partitions.name
    current = set(instance.get_dynamic_partitions(name))
    added = sorted(set(wanted) - current)
    removed = sorted(current - set(wanted))
    if added:
        instance.add_dynamic_partitions(name, added)
    if removed:
        delete_dynamic_partitions(instance, name, removed)
    return added, removed


DELETE_CHUNK = 500  # keys per DELETE statement (SQLite allows 32,766 bound values; PostgreSQL more)


def delete_dynamic_partitions(instance: dg.DagsterInstance, name: str, keys: list[str]) -> None:
    """Delete many keys of a dynamic partitions definition in one storage transaction.

    Dagster (1.13) only offers `delete_dynamic_partition`, one key and one transaction each (the
    sensor daemon loops over it too, "TODO add a bulk delete method"): about 7 ms per key on
    SQLite, 3,000 keys in 14-22 s. On SQL event storage (SQLite, PostgreSQL, the in-memory test
    instance) this runs the same DELETE as that method with `partition IN (...)` chunks, in one
    transaction; any other storage gets Dagster's per-key call.
    """
    from dagster._core.storage.event_log.schema import DynamicPartitionsTable  # noqa: PLC0415
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage  # noqa: PLC0415

    storage = instance.event_log_storage
    inner = getattr(getattr(storage, "_storage", None), "event_log_storage", None)  # LegacyEventLogStorage
    sql = storage if isinstance(storage, SqlEventLogStorage) else inner
    if not isinstance(sql, SqlEventLogStorage):
        for key in keys:
            instance.delete_dynamic_partition(name, key)
        return
    table = DynamicPartitionsTable
    with sql.index_connection() as conn:
        for i in range(0, len(keys), DELETE_CHUNK):
            chunk = list(keys[i : i + DELETE_CHUNK])
            conn.execute(table.delete().where((table.c.partitions_def_name == name) & table.c.partition.in_(chunk)))


GONE_VERSION = "absent"  # source_files' data version for a source no longer selected: its return is a change


def _previous_selection() -> list[dict[str, Any]]:
    """The rows of the selection on disk, before a run rewrites it; [] if there is none or it is unreadable."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    if not selected_file().is_file():
        return []
    try:
        return pq.read_table(selected_file()).to_pylist()
    except Exception:  # noqa: BLE001 - an unreadable selection only means every source is recorded again
        return []


def versions_to_record(
    instance: dg.DagsterInstance, previous: list[dict[str, Any]], rows: list[dict[str, Any]]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """(the rows of the sources whose data version `source_files` must record, by key; the keys no
    longer selected, recorded as `GONE_VERSION`).

    A source is recorded when its version differs from the previous selection's, or when it
    comes back to the selection after it was recorded gone (its files were deleted then). A
    source new to the selection needs no record: its partitions are new, which is enough for
    automation (`newly_missing`), and a first catalog of thousands of files stays one query.
    """
    wanted = set(preparable_ids(rows))
    before = set(preparable_ids(previous))
    recorded = {r["source_id"]: r.get("source_version") for r in previous if r.get("source_id") in before}
    returning = set()
    if wanted - before:
        returning = set(
            instance.get_latest_storage_id_by_partition(
                SOURCE_FILES, dg.DagsterEventType.ASSET_OBSERVATION, partitions=wanted - before
            )
        )
    changed = {
        r["source_id"]: r
        for r in rows
        if r["source_id"] in wanted
        and (
            r["source_id"] in returning
            or (r["source_id"] in before and recorded[r["source_id"]] != r["source_version"])
        )
    }
    return changed, sorted(before - wanted)


def record_source_versions(
    context: dg.AssetExecutionContext, changed: dict[str, dict[str, Any]], gone: list[str]
) -> None:
    """One `source_files` observation per changed source, its data version the source's
    (`selection.source_version`); `GONE_VERSION` for sources no longer selected."""
    from dagster._core.definitions.data_version import DATA_VERSION_TAG  # noqa: PLC0415 - no public constant

    for key in sorted(changed):
        row = changed[key]
        context.log_event(
            dg.AssetObservation(
                SOURCE_FILES,
                partition=key,
                tags={DATA_VERSION_TAG: dg.DataVersion(row["source_version"]).value},
                metadata={"rel_path": row["rel_path"], "root": row["root"], "content_hash": row["content_hash"]},
            )
        )
    for key in gone:
        context.log_event(
            dg.AssetObservation(
                SOURCE_FILES,
                partition=key,
                tags={DATA_VERSION_TAG: GONE_VERSION},
                metadata={"status": "no longer selected"},
            )
        )


@dg.asset(owners=owners.SOURCES, code_version="1", group_name=GROUP, deps=[audio_catalog], kinds={"parquet"})
def selected_sources(context: dg.AssetExecutionContext, config: SelectionConfig) -> dg.MaterializeResult:
    """Catalog rows scored by the selection rules, with the reason for every rejection; keeps the
    prepared_sources partitions (and prepared files) in step with the selection, and records a new
    data version of `source_files` for each source whose bytes or provenance changed."""
    from collections import Counter  # noqa: PLC0415

    from music_assets.audio.catalog import markdown_table  # noqa: PLC0415
    from music_assets.audio.selection import SelectionRules, select_sources  # noqa: PLC0415
    from music_assets.integrity import remove_manifest  # noqa: PLC0415
    from music_assets.io import write_parquet  # noqa: PLC0415

    rules = SelectionRules(**config.rules())
    table, failures = select_sources(_read_parquet(catalog_file()), rules)
    rows = table.to_pylist()
    chosen = [r for r in rows if r["selected"]]
    wanted = preparable_ids(rows)
    instance = context.instance
    name = prepared_source_partitions.name
    current = set(instance.get_dynamic_partitions(name))
    existing = sorted(prepared_dir().glob("*.flac")) if prepared_dir().is_dir() else []
    if not wanted and (current or existing) and not config.allow_empty:
        top = sorted(failures.items(), key=lambda kv: -kv[1])[:3]
        raise dg.Failure(
            description=f"the selection rules select none of the {len(rows)} cataloged files "
            f"(most rejected by: {', '.join(f'{k} ({n})' for k, n in top) or 'no rows'}); refusing to remove "
            f"the {len(current)} prepared_sources partitions and {len(existing)} prepared files. Check the "
            "rules, or set allow_empty: true to remove every prepared source on purpose. Nothing was changed.",
            metadata={"cataloged": len(rows), "partitions_kept": len(current), "prepared_files_kept": len(existing)},
        )
    previous = _previous_selection()
    with writing(context):
        added = sorted(set(wanted) - current)
        if added:
            instance.add_dynamic_partitions(name, added)
        # The versions, then the migration's copies; the selection is written after both, so a run that
        # dies before records them again (the previous selection is the baseline of what changed).
        changed, gone = versions_to_record(instance, previous, rows)
        record_source_versions(context, changed, gone)
        migrated = source_keys.migrate_legacy_keys(
            instance, source_keys.legacy_key_map(previous, rows, current, wanted)
        )
        if migrated:
            context.log.info(f"renamed {len(migrated)} sources to readable keys: {source_keys.describe(migrated)}")
        write_parquet(selected_file(), table)
        removed = sorted(current - set(wanted))
        if removed:
            delete_dynamic_partitions(instance, name, removed)
        keep = set(wanted)
        stale = [p for p in prepared_dir().glob("*.flac") if p.stem not in keep] if prepared_dir().is_dir() else []
        for p in stale:
            remove_manifest(PREPARED_ASSET, p.stem)
            p.unlink()
    if removed or stale:
        context.log.info(f"removed {len(removed)} partitions and {len(stale)} prepared files no longer selected")
    context.log.info(f"{len(added)} sources new, {len(changed)} changed, {len(gone)} no longer selected")
    return dg.MaterializeResult(
        metadata={
            "selected": len(chosen),
            "rejected": len(rows) - len(chosen),
            "selected_licenses": dg.MetadataValue.md(
                markdown_table(
                    ("license", "sources"),
                    sorted(Counter(r["license"] for r in chosen).items()),
                )
                if chosen
                else "none"
            ),
            "selected_hours": round(sum(r["duration_sec"] for r in chosen) / 3600, 4),
            "partitions": len(wanted),
            "partitions_added": len(added),
            "partitions_removed": len(removed),
            "sources_changed": len(changed),
            "keys_migrated": len(migrated),
            "rejections_by_rule": dg.MetadataValue.md(
                markdown_table(("rule", "rows"), sorted(failures.items())) if failures else "none"
            ),
            "ranking": dg.MetadataValue.md(
                markdown_table(
                    ("score", "selected", "file", "duration s", "license", "rejection"),
                    [
                        (
                            r["selection_score"],
                            r["selected"],
                            r["rel_path"],
                            r["duration_sec"],
                            r["license"],
                            r["rejection_reason"],
                        )
                        for r in rows[:20]
                    ],
                )
            ),
            "path": dg.MetadataValue.path(str(selected_file())),
            **parquet_columns({"selection": selected_file()}, main="selection"),
        }
    )
