"""prepared_sources (one partition per source): each selected file as 48 kHz stereo at -1 dBFS, and
the observable `source_files` whose versions drive it."""

# No `from __future__ import annotations`: Dagster resolves the Config annotations at definition time.
from pathlib import Path

import dagster as dg

from music_assets.audio.preparation import CHECK_DESCRIPTIONS, PREPARATION_VERSION
from music_assets.defs import owners
from music_assets.defs.automation import per_source_condition
from music_assets.defs.check_results import materialize_with_checks
from music_assets.defs.guards import clear_errors, writing
from music_assets.defs.partitions import SOURCE_PARTITIONS_PER_RUN, backfill_policy, prepared_source_partitions
from music_assets.defs.sources import keys as source_keys
from music_assets.defs.sources.common import (
    GROUP,
    PREPARED_ASSET,
    SOURCE_FILES,
    _read_parquet,
    prepared_dir,
    prepared_file,
    selected_file,
)
from music_assets.defs.sources.selection import preparable_ids, selected_sources
from music_assets.integrity import confine


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


source_keys.register(prepared_sources, source_keys.move_file(lambda key: prepared_file(key)))
