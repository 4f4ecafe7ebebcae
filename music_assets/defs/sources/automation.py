"""The sources group's automation: raw_audio_sensor (new or changed files) and daily_audio_catalog."""

# No `from __future__ import annotations`: Dagster resolves the Config annotations at definition time.
import os
from pathlib import Path
from typing import Any

import dagster as dg

from music_assets import paths
from music_assets.defs.automation import schedule_status, sensor_status
from music_assets.defs.partitions import prepared_source_partitions
from music_assets.defs.sources.catalog import audio_catalog
from music_assets.defs.sources.common import AudioRoots, _read_parquet, catalog_file, selected_file
from music_assets.defs.sources.selection import delete_dynamic_partitions, preparable_ids, selected_sources

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
