"""texture_beds[source_id]: pads, swells, clouds and hiss made from each prepared source.

The computation lives in `music_assets.audio.textures`. Partitions are the
prepared sources' own (one `DynamicPartitionsDefinition`, kept in step by
selected_sources and the raw-audio sensor), so a dry run is the launch dialog's
plan and a resume is materializing the missing partitions. Files:

    <data dir>/sources/textures/<source_id>/{pads,swells,clouds,hiss}/*.flac
    <data dir>/sources/textures/<source_id>/textures.parquet
    <data dir>/sources/textures/<source_id>/preview.png
"""

# No `from __future__ import annotations`: Dagster resolves the Config annotations at definition time.
import base64
from pathlib import Path

import dagster as dg
from pydantic import Field, field_validator

from music_assets import layout, paths
from music_assets.audio.textures import CHECK_DESCRIPTIONS, PROFILE_NAMES, TEXTURES_VERSION
from music_assets.defs import owners
from music_assets.defs.automation import per_source_condition
from music_assets.defs.check_results import materialize_with_checks
from music_assets.defs.guards import clear_errors, writing
from music_assets.defs.partitions import SOURCE_PARTITIONS_PER_RUN, backfill_policy, prepared_source_partitions
from music_assets.defs.sources import keys as source_keys
from music_assets.defs.sources.assets import GROUP, PREPARED_ASSET, prepared_file, prepared_sources, selected_file
from music_assets.defs.table_metadata import parquet_columns
from music_assets.integrity import confined_child

ASSET_KEY = dg.AssetKey("texture_beds")
TEXTURES_ASSET = "texture_beds"


def textures_dir() -> Path:
    return layout.textures_dir(paths.sources_dir())


def texture_folder(source_id: str) -> Path:
    """The folder of one partition's textures, confined to the data dir."""
    return confined_child(textures_dir(), source_id, what="texture_beds partition key")


class TextureConfig(dg.Config):
    profile: str = Field(
        default="default", description=f"Texture profile: {', '.join(PROFILE_NAMES)} (README: Texture beds)."
    )
    seed: int = Field(default=0, description="Seed of every draw, with the source id, kind and index.")

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if value not in PROFILE_NAMES:
            raise ValueError(f"unknown texture profile {value!r}; choose one of {', '.join(PROFILE_NAMES)}")
        return value


def _selected_columns(*names: str) -> dict[str, dict]:
    """source_id -> the given columns of selected_sources (those the table has)."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    if not selected_file().is_file():
        return {}
    table = pq.read_table(selected_file())
    if "source_id" not in table.column_names:
        return {}
    have = [n for n in names if n in table.column_names]
    return {r["source_id"]: r for r in table.select(["source_id", *have]).to_pylist() if r["source_id"]}


def _remove_stale(current: set[str]) -> list[str]:
    """Delete the texture folders of sources that are no longer partitions (no longer selected)."""
    import shutil  # noqa: PLC0415

    from music_assets.integrity import remove_manifest  # noqa: PLC0415

    root = textures_dir()
    stale = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in current) if root.is_dir() else []
    for name in stale:
        remove_manifest(TEXTURES_ASSET, name)
        shutil.rmtree(root / name)
    return stale


def _png_md(path: Path, alt: str) -> dg.MetadataValue:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{data})")


@dg.asset(
    owners=owners.SOURCES,
    key=ASSET_KEY,
    group_name=GROUP,
    deps=[prepared_sources],
    partitions_def=prepared_source_partitions,
    backfill_policy=backfill_policy(default_per_run=SOURCE_PARTITIONS_PER_RUN),
    check_specs=[
        dg.AssetCheckSpec(
            name, asset=ASSET_KEY, blocking=True, description=desc, partitions_def=prepared_source_partitions
        )
        for name, desc in CHECK_DESCRIPTIONS.items()
    ],
    kinds={"flac", "parquet"},
    code_version=TEXTURES_VERSION,
    automation_condition=per_source_condition(),
)
def texture_beds(context: dg.AssetExecutionContext, config: TextureConfig):
    """Per prepared source: sustained pads, swells, granular clouds and hiss loops/flickers (48 kHz
    stereo 24-bit FLAC) with a textures.parquet index; six blocking checks per partition, measured
    from the written files."""
    from music_assets import integrity  # noqa: PLC0415
    from music_assets.audio import textures  # noqa: PLC0415 - librosa stays out of code-location loading

    try:
        profile = textures.get_profile(config.profile)
    except textures.TextureError as exc:
        raise dg.Failure(description=str(exc)) from None
    with clear_errors():  # every key confined before anything is read or written
        places = {key: (prepared_file(key), texture_folder(key)) for key in context.partition_keys}
    selected = _selected_columns("license", "rel_path")
    seed_ids = source_keys.seed_ids()
    made, failures, previews = {}, [], {}
    config_fp = integrity.fingerprint({"profile": profile.name, "seed": config.seed})
    with writing(context):
        for key, (source, folder) in places.items():
            if not source.is_file():
                failures.append(f"{key}: {source} does not exist (materialize prepared_sources for it first)")
                continue
            try:
                prepared = integrity.verify_manifest(PREPARED_ASSET, key)  # the source as prepare wrote it
                integrity.invalidate_manifest(TEXTURES_ASSET, key)
                t = textures.make_textures(
                    source,
                    folder,
                    key,
                    profile,
                    config.seed,
                    selected.get(key, {}).get("license") or "unknown",
                    seed_id=seed_ids.get(key, key),
                )
                previews[key] = textures.preview_png(t.folder, t.rows, t.folder / "preview.png")
                files = [t.folder / r["file"] for r in t.rows] + [t.index_path, previews[key]]
                integrity.write_manifest(
                    TEXTURES_ASSET,
                    key,
                    files,
                    fingerprint=config_fp,
                    run_id=context.run_id,
                    inputs={prepared.label: prepared.digest},
                )
                made[key] = t
            except (textures.TextureError, integrity.IntegrityError, OSError) as exc:
                failures.append(f"{key}: {exc}")
    if failures:
        raise dg.Failure(
            description="could not make textures:\n" + "\n".join(failures),
            metadata={"failed": len(failures), "made_before_failure": len(made)},
        )
    results = {}
    for key, t in made.items():
        s = textures.summary(t.rows)
        preview = previews[key]
        context.add_asset_metadata(
            partition_key=key,
            metadata={
                "rel_path": selected.get(key, {}).get("rel_path") or "",
                "files": len(t.rows),
                **{f"{kind}_count": n for kind, n in s["counts"].items()},
                "total_seconds": round(s["total_sec"], 2),
                "source_seconds": round(t.source_sec, 2),
                "profile": profile.name,
                "seed": config.seed,
                "license": t.rows[0]["license"] if t.rows else "unknown",
                "max_seam_discontinuity": round(
                    max((r["seam_discontinuity"] for r in t.rows if r["loopable"]), default=0.0), 3
                ),
                "preview": _png_md(preview, f"textures of {key}"),
                "index": dg.MetadataValue.path(str(t.index_path)),
                "path": dg.MetadataValue.path(str(t.folder)),
                **parquet_columns({"index": t.index_path}, main="index"),
            },
        )
        results[key] = textures.check_textures(t.folder)
    stale = _remove_stale(set(context.instance.get_dynamic_partitions(prepared_source_partitions.name)))
    context.log.info(
        f"textures ({profile.name}) for {len(made)} sources under {textures_dir()}"
        + (f"; removed those of {len(stale)} sources no longer selected: {', '.join(stale)}" if stale else "")
    )
    yield from materialize_with_checks(context, {"profile": profile.name}, results)


def move_texture_folder(old: str, new: str) -> None:
    """The migration to readable keys (defs/source_keys.py): the folder takes the new key, and so does its
    index's source_id column; the draws stay seeded by the old id (source_keys.seed_id)."""
    import os  # noqa: PLC0415

    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    from music_assets.audio.textures import INDEX_NAME  # noqa: PLC0415
    from music_assets.io import write_parquet  # noqa: PLC0415

    src, dest = textures_dir() / old, textures_dir() / new
    if src.is_dir() and not dest.exists():
        os.replace(src, dest)
    index = dest / INDEX_NAME
    if index.is_file():
        table = pq.read_table(index)
        if "source_id" in table.column_names:
            i = table.column_names.index("source_id")
            table = table.set_column(i, table.schema.field(i), pa.array([new] * table.num_rows, pa.string()))
            write_parquet(index, table)


source_keys.register(texture_beds, move_texture_folder)

defs = dg.Definitions(assets=[texture_beds])
