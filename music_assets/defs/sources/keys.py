"""The one-time move from opaque source ids to readable keys, for every asset partitioned by source.

Source partition keys used to be a hash of a file's relative path and bytes
(`38062bf656c50736`); they are now the file stem's slug and a short hash of the
relative path (`funk-groove-96bpm-8507e2`, `music_assets.audio.catalog.source_key`).
The first `selected_sources` run on a data dir and instance made before that
renames every source whose file is unchanged, instead of re-making it:

- each asset on `prepared_source_partitions` that registered a file mover
  (`register`) gets its files renamed to the new key, and its latest
  materialization and check evaluations under the old key copied to the new
  key (runless events marked `migrated_from`; metadata that named the old key
  names the new one), so nothing re-runs for them;
- an asset that registered nothing (its files depend on the key in a way only
  a re-run can fix, or it was added later) keeps its old files until its own
  clean-up, and its partitions under the new keys are missing: automation (or
  a backfill of the missing partitions) makes them again;
- `<data dir>/catalog/legacy_source_keys.json` records new key -> old id:
  texture beds were seeded by the old id, and keep being seeded by it
  (`seed_id`), so re-making one with the same config still gives the same bytes.

Sources whose bytes changed in between are not renamed: they are new partitions.
A migration interrupted half-way is finished by the next selection run (the
movers skip what is already moved; copied events are copied again).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from music_assets import integrity, paths
from music_assets.audio.catalog import LEGACY_KEY


@dataclass(frozen=True)
class KeyMigration:
    asset: dg.AssetsDefinition
    move_files: Callable[[str, str], None]  # (old key, new key): rename this asset's files of one partition


_REGISTRY: dict[dg.AssetKey, KeyMigration] = {}


def register(asset: dg.AssetsDefinition, move_files: Callable[[str, str], None]) -> None:
    """Declare how `asset`'s files of one partition move to a new key (and that nothing else in them
    depends on the key): the migration then keeps its partitions instead of re-making them."""
    _REGISTRY[asset.key] = KeyMigration(asset, move_files)


def registered() -> list[KeyMigration]:
    return list(_REGISTRY.values())


def move_file(path_of: Callable[[str], Path]) -> Callable[[str, str], None]:
    """A mover for an asset with one file per partition at `path_of(key)`."""

    def move(old: str, new: str) -> None:
        src, dest = path_of(old), path_of(new)
        if src.exists() and not dest.exists():
            os.replace(src, dest)

    return move


def legacy_key_map(
    previous: Iterable[Mapping[str, Any]],
    rows: Iterable[Mapping[str, Any]],
    current: Iterable[str],
    wanted: Iterable[str],
) -> dict[str, str]:
    """Old id -> new key for the sources of the previous selection that had a legacy id which is still
    a partition, and whose file (same root, relative path and bytes) has a new key that is wanted."""
    current, wanted = set(current), set(wanted)
    new_by_path = {(r["root"], r["rel_path"]): r for r in rows if r.get("source_id") in wanted}
    mapping = {}
    for r in previous:
        old = r.get("source_id")
        if not old or old not in current or not LEGACY_KEY.match(old):
            continue
        new = new_by_path.get((r["root"], r["rel_path"]))
        if new is not None and new["source_id"] != old and new["content_hash"] == r["content_hash"]:
            mapping[old] = new["source_id"]
    return mapping


def legacy_file() -> Path:
    return paths.catalog_dir() / "legacy_source_keys.json"


def seed_ids() -> dict[str, str]:
    """New key -> the legacy id it had, for sources renamed by the migration (empty when none were)."""
    try:
        data = json.loads(legacy_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def seed_id(key: str) -> str:
    """The identity a source's random draws are seeded by: its legacy id if it had one, else its key."""
    return seed_ids().get(key, key)


def _rekey(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dg.PathMetadataValue):
        return dg.MetadataValue.path(str(value.value).replace(old, new))
    if isinstance(value, dg.MarkdownMetadataValue):
        return dg.MetadataValue.md(str(value.value).replace(old, new))
    if isinstance(value, dg.TextMetadataValue):
        return dg.MetadataValue.text(str(value.value).replace(old, new))
    return value


def _latest_materialization(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records
    return records[0] if records else None


def _copy(instance: dg.DagsterInstance, migration: KeyMigration, old: str, new: str) -> bool:
    """Copy the latest materialization of `old`, then the latest evaluation of each check, to `new`."""
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (  # noqa: PLC0415
        AssetCheckEvaluationTargetMaterializationData,
    )
    from dagster._core.event_api import PartitionKeyFilter  # noqa: PLC0415

    key = migration.asset.key
    record = _latest_materialization(instance, key, old)
    if record is None:
        return False
    m = record.asset_materialization
    metadata = {k: _rekey(v, old, new) for k, v in m.metadata.items()}
    metadata["migrated_from"] = dg.MetadataValue.text(old)
    instance.report_runless_asset_event(
        dg.AssetMaterialization(key, partition=new, metadata=metadata, tags=m.tags, description=m.description)
    )
    copied = _latest_materialization(instance, key, new)
    target = AssetCheckEvaluationTargetMaterializationData(
        storage_id=copied.storage_id, run_id=copied.run_id, timestamp=copied.timestamp
    )
    for check_key in migration.asset.check_keys:
        history = instance.event_log_storage.get_asset_check_execution_history(
            check_key, limit=1, partition_filter=PartitionKeyFilter(key=old)
        )
        event = history[0].event if history else None
        evaluation = event.dagster_event.event_specific_data if event and event.dagster_event else None
        if not isinstance(evaluation, dg.AssetCheckEvaluation):
            continue  # never evaluated, or planned and not finished: the check runs with the next materialization
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=key,
                check_name=check_key.name,
                passed=evaluation.passed,
                metadata={k: _rekey(v, old, new) for k, v in evaluation.metadata.items()},
                severity=evaluation.severity,
                description=evaluation.description,
                target_materialization_data=target,
                blocking=evaluation.blocking,
                partition=new,
            )
        )
    return True


def migrate_legacy_keys(instance: dg.DagsterInstance, mapping: Mapping[str, str]) -> dict[str, str]:
    """Rename the partitions of `mapping` (old id -> new key) for every registered asset (see the
    module docstring); the new keys must already be partitions. Returns `mapping`."""
    from music_assets.io import write_text  # noqa: PLC0415

    if not mapping:
        return {}
    legacy = seed_ids()
    legacy.update({new: legacy.get(old, old) for old, new in mapping.items()})
    write_text(legacy_file(), json.dumps(dict(sorted(legacy.items())), indent=1) + "\n")
    for old, new in sorted(mapping.items()):
        for migration in registered():
            name = migration.asset.key.to_user_string()
            try:  # a partition's manifest moves with its files only if they are intact before the move
                intact = integrity.verify_manifest(name, old) is not None
            except integrity.IntegrityError:
                intact = False
                integrity.remove_manifest(name, old)  # refused under the new key until it is re-made
            migration.move_files(old, new)
            if intact:
                integrity.rekey_manifest(name, old, new)
        for migration in registered():
            _copy(instance, migration, old, new)
    return dict(mapping)


def describe(mapping: Mapping[str, str], limit: int = 5) -> str:
    shown = ", ".join(f"{old} -> {new}" for old, new in sorted(mapping.items())[:limit])
    return shown + (f" and {len(mapping) - limit} more" if len(mapping) > limit else "")
