"""The sources group: audio_catalog -> selected_sources -> prepared_sources[source_id].

The computation lives in `music_assets.audio.{catalog,selection,preparation}`;
this module wires it into assets, checks, the raw-audio sensor and the daily
catalog schedule. Files (contract in docs/design.md):

    <data dir>/catalog/audio_catalog.parquet
    <data dir>/catalog/selected_sources.parquet
    <data dir>/sources/prepared/<source_id>.flac

Which folders: the `audio_roots` resource (`AudioRoots`: $MUSIC_ASSETS_AUDIO_ROOTS,
default <data dir>/raw_audio), read by audio_catalog, raw_audio_sensor and every run
daily_audio_catalog starts. Only what changed re-runs: `selected_sources` records a
new data version of the observable source `source_files` for each source whose bytes
or provenance changed, and the per-source assets follow those (and new partitions),
not the whole selection (`automation.per_source_condition`).
"""

# No `from __future__ import annotations`: Dagster resolves the Config annotations at definition time.
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, model_validator

from music_assets import layout, paths
from music_assets.audio.preparation import CHECK_DESCRIPTIONS, MIN_DURATION_SEC, PREPARATION_VERSION
from music_assets.checks import CheckResult
from music_assets.defs import owners
from music_assets.defs.automation import per_source_condition, schedule_status, sensor_status
from music_assets.defs.check_results import materialize_with_checks
from music_assets.defs.guards import clear_errors, writing
from music_assets.defs.partitions import SOURCE_PARTITIONS_PER_RUN, backfill_policy, prepared_source_partitions
from music_assets.defs.sources import keys as source_keys
from music_assets.defs.table_metadata import parquet_columns
from music_assets.integrity import confine, confined_child
from music_assets.progress import ProgressLog

GROUP = "sources"
ROOTS_ENV = "MUSIC_ASSETS_AUDIO_ROOTS"
SOURCE_FILES = dg.AssetKey("source_files")


def catalog_file() -> Path:
    return layout.audio_catalog_path(paths.data_dir())


def selected_file() -> Path:
    return layout.selected_sources_path(paths.data_dir())


def prepared_dir() -> Path:
    return layout.prepared_dir(paths.sources_dir())


def prepared_file(source_id: str) -> Path:
    """The prepared FLAC of a partition key, confined to the data dir (a key is data: it may try to escape)."""
    return confined_child(prepared_dir(), source_id, what="prepared_sources partition key", suffix=".flac")


PREPARED_ASSET = "prepared_sources"


def default_roots() -> list[str]:
    return [str(paths.raw_audio_dir())]


class AudioRoots(dg.ConfigurableResource):
    """The music folders the sources group catalogs: one setting for `dagster asset materialize`
    / `dg launch` of audio_catalog, runs from the UI, raw_audio_sensor and daily_audio_catalog.

    `roots` when set (in code, or a run's `resources.audio_roots.config`), else the environment
    variable named by `env_var` ($MUSIC_ASSETS_AUDIO_ROOTS: folders separated by os.pathsep, `:`
    on Linux and macOS; `~` expands, relative paths are taken from the current directory), else
    <data dir>/raw_audio. Read through dg.EnvVar when used, so the code server, the sensor and
    the run all see the deployment's value. A run's `ops.audio_catalog.config.roots` overrides
    it for that run only: the sensor and the schedule keep cataloging these folders.
    """

    roots: list[str] = Field(default=[], description="Folders to catalog; empty: from env_var, else the default.")
    env_var: str = Field(default=ROOTS_ENV, description="Environment variable holding os.pathsep-separated folders.")

    def setting(self) -> str:
        """Where the folders come from, for logs and metadata."""
        if self.roots:
            return "audio_roots resource config"
        return f"${self.env_var}" if (dg.EnvVar(self.env_var).get_value() or "").strip() else "default"

    def paths(self) -> list[str]:
        chosen = self.roots or (dg.EnvVar(self.env_var).get_value() or "").split(os.pathsep)
        out = [os.path.abspath(os.path.expanduser(p.strip())) for p in chosen if p.strip()]
        return out or default_roots()


def _read_parquet(path: Path):
    import pyarrow.parquet as pq  # noqa: PLC0415

    if not path.is_file():
        raise dg.Failure(description=f"{path} does not exist: materialize its upstream asset first")
    return pq.read_table(path)


# ---------------------------------------------------------------------------
# audio_catalog


class CatalogConfig(dg.Config):
    roots: list[str] | None = Field(
        default=None,
        description="Folders to catalog in this run only, walked recursively. Default: the audio_roots resource "
        "($MUSIC_ASSETS_AUDIO_ROOTS, else <data dir>/raw_audio), which automation always catalogs.",
    )
    workers: int = Field(default=0, ge=0, description="Analysis processes; 0 means one per core.")
    incremental: bool = Field(
        default=True, description="Reuse the previous row of every file whose size and mtime are unchanged."
    )
    max_error_ratio: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="The error_ratio check warns when more than this fraction of files are errors (0-1).",
    )


CATALOG_CHECKS = [
    dg.AssetCheckSpec(
        "unique_source_id",
        asset="audio_catalog",
        blocking=True,
        description="Every source_id is unique, and every readable file has one.",
    ),
    dg.AssetCheckSpec(
        "error_ratio",
        asset="audio_catalog",
        description="The fraction of files with status error stays under max_error_ratio (warning).",
    ),
]


def check_unique_source_id(path: Path) -> CheckResult:
    from collections import Counter  # noqa: PLC0415

    rows = _read_parquet(path).select(["source_id", "status", "rel_path"]).to_pylist()
    counts = Counter(r["source_id"] for r in rows if r["source_id"] is not None)
    duplicated = sorted(k for k, n in counts.items() if n > 1)
    missing = [r["rel_path"] for r in rows if r["status"] == "ok" and r["source_id"] is None]
    return CheckResult(
        name="unique_source_id",
        passed=not duplicated and not missing,
        metadata={
            "rows": len(rows),
            "duplicated_ids": len(duplicated),
            "ok_rows_without_id": len(missing),
            "examples": ", ".join((duplicated + missing)[:10]) or "none",
        },
    )


def check_error_ratio(path: Path, max_error_ratio: float) -> CheckResult:
    status = _read_parquet(path).column("status").to_pylist()
    errors = sum(s == "error" for s in status)
    ratio = errors / len(status) if status else 0.0
    return CheckResult(
        name="error_ratio",
        passed=ratio <= max_error_ratio,
        severity="warn",
        metadata={
            "error_ratio": round(ratio, 4),
            "errors": errors,
            "files": len(status),
            "max_error_ratio": max_error_ratio,
        },
    )


@dg.asset(owners=owners.SOURCES, code_version="1", group_name=GROUP, kinds={"parquet"}, check_specs=CATALOG_CHECKS)
def audio_catalog(context: dg.AssetExecutionContext, config: CatalogConfig, audio_roots: AudioRoots) -> Iterator:
    """Every audio file under the roots: format, duration, sample rate, channels, size, mtime, peak,
    RMS, clipped and silence ratios, EBU R128 loudness, and `ok` or the reason it is unusable;
    its provenance (provider, license, author, url, acquired, cost) from a sidecar JSON, the root's
    provenance.csv or the file's tags. The checks read the written parquet back."""
    from music_assets.audio import catalog  # noqa: PLC0415
    from music_assets.io import write_parquet  # noqa: PLC0415

    roots = config.roots or audio_roots.paths()
    setting = "this run's config (ops.audio_catalog.config.roots)" if config.roots else audio_roots.setting()
    context.log.info(f"cataloging {', '.join(roots)} (from {setting})")
    with writing(context):
        previous = catalog.load_previous(catalog_file()) if config.incremental else {}
        try:
            result = catalog.build_catalog(
                roots,
                previous=previous,
                excluded=paths.generated_dirs(),
                workers=config.workers,
                progress=ProgressLog(context.log.info, "catalog", "files"),
            )
        except catalog.CatalogError as exc:
            raise dg.Failure(description=str(exc)) from None
        write_parquet(catalog_file(), result.table())
    s = catalog.summary(result.rows)
    for problem in result.stats.unreadable_folders:
        context.log.warning(f"folder not readable, not cataloged: {problem}")
    provenance_errors = [r for r in result.rows if r["provenance_error"]]
    for r in provenance_errors[:20]:
        context.log.warning(f"provenance of {r['rel_path']} not fully read: {r['provenance_error']}")
    context.log.info(
        f"{s['files']} files: {result.analyzed} analysed, {result.reused} reused in {result.seconds:.1f} s"
    )
    checks = {
        "unique_source_id": lambda: check_unique_source_id(catalog_file()),
        "error_ratio": lambda: check_error_ratio(catalog_file(), config.max_error_ratio),
    }
    yield from materialize_with_checks(
        context,
        {
            "files": s["files"],
            "ok": s["ok"],
            "error_count": s["error"],
            "skipped_count": s["skipped"],
            "total_hours": round(s["total_hours"], 4),
            "formats": dg.MetadataValue.md(catalog.formats_markdown(result.rows)),
            "worst_files": dg.MetadataValue.md(catalog.worst_files_markdown(result.rows)),
            "licenses": dg.MetadataValue.md(catalog.licenses_markdown(result.rows)),
            "provenance_errors": len(provenance_errors),
            "analyzed_files": result.analyzed,
            "reused_rows": result.reused,
            "seconds": round(result.seconds, 3),
            "roots": dg.MetadataValue.md("\n".join(f"- `{r}`" for r in result.roots)),
            "roots_from": setting,
            "folders_walked": result.stats.folders,
            "folders_not_walked": dg.MetadataValue.md(
                "\n".join(
                    f"- {p}"
                    for p in result.stats.excluded + result.stats.unreadable_folders + result.stats.links_not_followed
                )
                or "none"
            ),
            "path": dg.MetadataValue.path(str(catalog_file())),
            **parquet_columns({"catalog": catalog_file()}, main="catalog"),
        },
        [checks[k.name]() for k in context.selected_asset_check_keys],
    )


# ---------------------------------------------------------------------------
# selected_sources


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


# ---------------------------------------------------------------------------
# prepared_sources


@dg.observable_source_asset(
    owners=owners.SOURCES,
    key=SOURCE_FILES,
    group_name=GROUP,
    partitions_def=prepared_source_partitions,
    description="Each selected source's file, as Dagster sees it: its data version is a hash of the file's bytes "
    "and the provenance the prepared file records (`source_version` in selected_sources.parquet), recorded by "
    "selected_sources when a source changes, leaves the selection (`absent`) or comes back; prepared_sources "
    "re-runs a partition when it changes. A source never changed has no observation yet; observing this asset "
    "by hand records every source's current version.",
)
def source_files(context) -> dg.DataVersionsByPartition:
    rows = _read_parquet(selected_file()).to_pylist()
    wanted = set(preparable_ids(rows))
    return dg.DataVersionsByPartition({r["source_id"]: r["source_version"] for r in rows if r["source_id"] in wanted})


class PreparedSourcesConfig(dg.Config):
    """No settings: the preparation is fixed (48 kHz stereo, 30-240 s, -1 dBFS). Declared so that
    unknown keys in run config are refused instead of silently ignored."""


PREPARED_CHECKS = [
    dg.AssetCheckSpec(
        name, asset="prepared_sources", blocking=True, description=desc, partitions_def=prepared_source_partitions
    )
    for name, desc in CHECK_DESCRIPTIONS.items()
]


@dg.asset(
    owners=owners.SOURCES,
    group_name=GROUP,
    deps=[selected_sources, source_files],
    partitions_def=prepared_source_partitions,
    backfill_policy=backfill_policy(default_per_run=SOURCE_PARTITIONS_PER_RUN),
    check_specs=PREPARED_CHECKS,
    kinds={"flac"},
    code_version=PREPARATION_VERSION,
    # A catalog refresh rewrites selected_sources every time: what changed per source arrives through
    # source_files, which records changes only (a new source is a new partition, never observed).
    automation_condition=per_source_condition(ignore_updates=["selected_sources"], optional=["source_files"]),
)
def prepared_sources(context: dg.AssetExecutionContext, config: PreparedSourcesConfig):
    """Each selected source at 48 kHz stereo, 30-240 s, peak -1 dBFS, 24-bit FLAC, with a 0-100
    quality score. The four blocking checks are measured per partition from the written file.
    Each partition's manifest records the file's sha256 (texture_beds and rudiment_audio verify it)."""
    from music_assets.audio.preparation import PreparationError, check_prepared, prepare_source  # noqa: PLC0415
    from music_assets.integrity import PathEscapeError, fingerprint, invalidate_manifest, write_manifest  # noqa: PLC0415
    from music_assets.io import remove_partials  # noqa: PLC0415

    by_id = {r["source_id"]: r for r in _read_parquet(selected_file()).to_pylist() if r["selected"]}
    with clear_errors():
        dests = {key: prepared_file(key) for key in context.partition_keys}  # every key confined before any write
    prepared, failures = [], []
    with writing(context):
        remove_partials(prepared_dir())
        for key, dest in dests.items():
            row = by_id.get(key)
            if row is None:
                failures.append(f"{key}: not a selected source in {selected_file()} (re-materialize selected_sources)")
                continue
            try:
                source = confine(Path(row["root"]) / row["rel_path"], [row["root"]], what=f"source of {key}")
                invalidate_manifest(PREPARED_ASSET, key)
                p = prepare_source(source, dest)
                write_manifest(
                    PREPARED_ASSET,
                    key,
                    [p.path],
                    fingerprint=fingerprint({"source": row["rel_path"], "content_hash": row["content_hash"]}),
                    run_id=context.run_id,
                )
                prepared.append((key, row, p))
            except (PreparationError, PathEscapeError, OSError) as exc:
                failures.append(f"{key} ({row['rel_path']}): {exc}")
    if failures:
        raise dg.Failure(
            description="could not prepare:\n" + "\n".join(failures),
            metadata={"failed": len(failures), "prepared_before_failure": len(prepared)},
        )
    for key, row, p in prepared:
        context.add_asset_metadata(
            partition_key=key,
            metadata={
                "rel_path": row["rel_path"],
                "source": f"{row['root']}/{row['rel_path']}",
                "license": row["license"],
                "provider": row["provider"] or "",
                "author": row["author"] or "",
                "source_url": row["url"] or "",
                "quality_score": p.quality_score,
                "quality_components": dg.MetadataValue.json({k: round(v, 3) for k, v in p.quality_components.items()}),
                "duration_sec": round(p.output.duration_sec, 3),
                "source_offset_sec": round(p.source_offset_sec, 3),
                "source_format": f"{p.source_sample_rate} Hz, {p.source_channels} ch",
                "cut_at_240s": p.cut_at_max,
                "gain_db": round(p.gain_db, 3),
                "loudness_lufs": round(p.output.loudness_lufs, 2) if p.output.loudness_lufs is not None else None,
                "path": dg.MetadataValue.path(str(p.path)),
            },
        )
    # each result points at its partition's new materialization: automation counts a check as passed
    # (texture_beds waits on these gates) only when it evaluated the latest materialization
    yield from materialize_with_checks(context, {}, {key: check_prepared(p.path) for key, _row, p in prepared})


# ---------------------------------------------------------------------------
# automation

refresh_selection = dg.AssetSelection.assets(audio_catalog, selected_sources)


def _sensor_cursor(cursor: str | None) -> dict[str, Any]:
    """raw_audio_sensor's cursor: {"tree": fingerprint of the walk, "catalog": the catalog file's stamp
    when the sensor last asked for a catalog}; an older cursor was the fingerprint alone."""
    import json  # noqa: PLC0415

    if not cursor:
        return {}
    try:
        value = json.loads(cursor)
    except ValueError:
        return {"tree": cursor}
    return value if isinstance(value, dict) else {"tree": cursor}


def _stamp(path: Path) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}"


@dg.sensor(
    name="raw_audio_sensor",
    target=refresh_selection,
    minimum_interval_seconds=60,
    default_status=sensor_status("raw_audio_sensor"),
    description="Watches the audio_roots folders ($MUSIC_ASSETS_AUDIO_ROOTS, default <data dir>/raw_audio): "
    "requests a catalog + selection run when a file is added, changed or removed, or when the current catalog "
    "was made from other folders (a one-run override), and keeps the prepared_sources partitions to the "
    "selected files that exist.",
)
def raw_audio_sensor(context: dg.SensorEvaluationContext, audio_roots: AudioRoots) -> dg.SensorResult | dg.SkipReason:
    import json  # noqa: PLC0415

    from music_assets.audio.catalog import CatalogError, cataloged_roots, fingerprint, resolve_roots, scan  # noqa: PLC0415

    roots = audio_roots.paths()
    try:
        entries, stats = scan(roots, paths.generated_dirs())
    except CatalogError as exc:
        return dg.SkipReason(str(exc))
    tree = fingerprint(entries, stats)
    watched = resolve_roots(roots)
    present = {(e.root, e.rel_path) for e in entries}

    def exists(row: dict[str, Any]) -> bool:  # sources cataloged from other roots are checked one by one
        if row["root"] in watched:
            return (row["root"], row["rel_path"]) in present
        return os.path.isfile(os.path.join(row["root"], row["rel_path"]))

    partition_requests: list[Any] = []
    gone: list[str] = []
    if selected_file().is_file():
        rows = [r for r in _read_parquet(selected_file()).to_pylist() if r["selected"] and exists(r)]
        wanted = set(preparable_ids(rows))
        current = set(context.instance.get_dynamic_partitions(prepared_source_partitions.name))
        if wanted - current:
            partition_requests.append(prepared_source_partitions.build_add_request(sorted(wanted - current)))
        gone = sorted(current - wanted)
        if gone:
            # removed here in one transaction: the daemon carries out a delete request one key and
            # one transaction at a time (3,000 keys took 14-22 s on SQLite)
            delete_dynamic_partitions(context.instance, prepared_source_partitions.name, gone)
            context.log.info(f"removed {len(gone)} prepared_sources partition(s) whose source is gone")
    # A catalog made from other folders (a run with ops.audio_catalog.config.roots) is replaced by one of the
    # configured folders, once per such catalog: the setting, not the last run, says what is cataloged.
    last = _sensor_cursor(context.cursor)
    stamp = _stamp(catalog_file())
    trigger = None
    if tree != last.get("tree"):
        trigger = "raw_audio_changed"
    elif cataloged_roots(catalog_file()) != watched and stamp != last.get("catalog"):
        trigger = "catalog_from_other_roots"
    run_requests = [dg.RunRequest(tags={"music_assets/trigger": trigger})] if trigger else []
    if not run_requests and not partition_requests:
        removed = f"; removed {len(gone)} partition(s) whose source is gone" if gone else ""
        return dg.SkipReason(f"no change under {', '.join(roots)} ({len(entries)} audio files){removed}")
    cursor = json.dumps({"tree": tree, "catalog": stamp}) if trigger else context.cursor
    return dg.SensorResult(run_requests=run_requests, cursor=cursor, dynamic_partitions_requests=partition_requests)


daily_audio_catalog = dg.ScheduleDefinition(
    name="daily_audio_catalog",
    cron_schedule="0 4 * * *",
    target=refresh_selection,
    default_status=schedule_status("daily_audio_catalog"),
    description="Refreshes the audio catalog of the audio_roots folders and the selection every day at 04:00.",
)

source_keys.register(prepared_sources, source_keys.move_file(lambda key: prepared_file(key)))

defs = dg.Definitions(
    assets=[audio_catalog, selected_sources, source_files, prepared_sources],
    sensors=[raw_audio_sensor],
    schedules=[daily_audio_catalog],
    resources={"audio_roots": AudioRoots()},
)
