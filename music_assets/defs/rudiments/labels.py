"""rudiment_labels: every partition's tables merged into the dataset's label files, verified against their
manifests, and the labels' gates."""

import time
from pathlib import Path

import dagster as dg

from music_assets import layout
from music_assets.checks import CheckResult
from music_assets.defs import owners
from music_assets.defs.check_results import asset_check_result
from music_assets.defs.guards import writing
from music_assets.defs.rudiments.common import (
    AUDIO_ASSET,
    GROUP,
    LABELS_ASSET,
    PERF_ASSET,
    PERFORMANCES,
    verify_partition,
)
from music_assets.defs.table_metadata import parquet_columns
from music_assets.paths import data_dir
from music_assets.rudiments.constants import RUDIMENT_SLUGS


# ---------------------------------------------------------------- rudiment_labels
class LabelsConfig(dg.Config):
    """Which partitions to merge (default: all 40; each must have its performances and audio)."""

    rudiments: list[str] = list(RUDIMENT_SLUGS)


def _label_tables():
    """The merged tables, once their manifest verifies (IntegrityError otherwise)."""
    from music_assets.integrity import verify_manifest  # noqa: PLC0415
    from music_assets.rudiments.labels import TableSet  # noqa: PLC0415

    verify_manifest(LABELS_ASSET)
    return TableSet.in_folder(layout.labels_dir(data_dir()))


def verified_labels(reader: str, files_of: tuple[str, ...] = (PERF_ASSET, AUDIO_ASSET)):
    """For an asset that reads the merged labels: the labels manifest, after checking the four tables'
    sha256 and that every partition they were merged from is still that generation, every file of
    the partitions of `files_of` intact (the reader's inputs: token_corpus reads the MIDI, not the
    audio). IntegrityError names the file and both hashes, or what to re-materialize."""
    return verified_labels_and_files(reader, files_of)[0]


def verified_labels_and_files(reader: str, files_of: tuple[str, ...] = (PERF_ASSET, AUDIO_ASSET)):
    """`verified_labels`, and the sha256 of every file of the verified partitions (path relative to
    the data dir -> sha256, as their manifests record and the check just confirmed)."""
    from music_assets import integrity  # noqa: PLC0415

    samples = layout.labels_dir(data_dir()) / "samples.parquet"
    if not samples.is_file():
        raise integrity.IntegrityError(f"{samples}: not found (materialize rudiment_labels first)")
    labels = integrity.verify_manifest(LABELS_ASSET)
    integrity.check_inputs_current(labels, reader)
    files: dict[str, str] = {}
    for label in sorted(labels.inputs):
        asset, _, partition = label.partition("/")
        if asset in files_of:
            files.update(integrity.verify_manifest(asset, partition or None).files)
    return labels, files


@dg.asset(
    owners=owners.RUDIMENTS,
    code_version="1",
    group_name=GROUP,
    kinds={"parquet"},
    deps=[PERFORMANCES, dg.AssetKey("rudiment_audio")],
)
def rudiment_labels(context: dg.AssetExecutionContext, config: LabelsConfig) -> dg.MaterializeResult:
    """The dataset's label files `rudiments/labels/{samples,strokes,measures,exercises}.parquet`:
    every partition's tables (samples joined with audio on sample_id), merged one partition at a time.
    Every partition's performances and audio are verified against their manifests first (a partition
    whose run was interrupted, or whose files changed, is refused), and the labels' own manifest
    records the tables' sha256 and the partitions they came from."""
    from music_assets import integrity  # noqa: PLC0415
    from music_assets.rudiments.labels import merge_labels  # noqa: PLC0415

    unknown = sorted(set(config.rudiments) - set(RUDIMENT_SLUGS))
    if unknown:
        raise dg.Failure(f"unknown rudiments in config: {unknown}")
    slugs = [s for s in RUDIMENT_SLUGS if s in set(config.rudiments)]
    t0 = time.monotonic()
    with writing(context):
        read = {m.label: m.digest for slug in slugs for m in verify_partition(slug)}
        integrity.invalidate_manifest(LABELS_ASSET)
        summary = merge_labels(slugs, data_dir())
        for label, digest in read.items():  # a run that rewrote a partition meanwhile: not one generation
            asset, _, partition = label.partition("/")
            if integrity.read_manifest(asset, partition).digest != digest:
                raise integrity.IntegrityError(f"{label} changed while the labels were merged; materialize again")
        tables = [layout.labels_dir(data_dir()) / f"{name}.parquet" for name in layout.PARTITION_TABLES]
        manifest = integrity.write_manifest(
            LABELS_ASSET,
            None,
            tables,
            fingerprint=integrity.fingerprint({"rudiments": slugs}),
            run_id=context.run_id,
            inputs=read,
        )
    return dg.MaterializeResult(
        metadata={
            "partitions": len(slugs),
            **{f"{k} rows": v for k, v in summary.rows.items()},
            "audio columns": ", ".join(summary.audio_columns),
            "seconds": round(time.monotonic() - t0, 2),
            "folder": dg.MetadataValue.path(str(layout.labels_dir(data_dir()))),
            **parquet_columns(
                {t: layout.labels_dir(data_dir()) / f"{t}.parquet" for t in layout.PARTITION_TABLES},
                main="samples",
                documented_as={"samples": "data", "strokes": "strokes", "measures": "measures"},
            ),
            "dagster/row_count": summary.rows["samples"],
            "sha256": dg.MetadataValue.json({Path(k).name: v for k, v in manifest.files.items()}),
            "manifest": dg.MetadataValue.path(str(manifest.path)),
        }
    )


def _checked(run) -> dg.AssetCheckResult:
    """A check's result; labels that do not verify against their manifest fail it (an error), saying why."""
    from music_assets.integrity import IntegrityError  # noqa: PLC0415

    try:
        return asset_check_result(run())
    except IntegrityError as exc:
        return asset_check_result(CheckResult(passed=False, description=str(exc)))


@dg.asset_check(asset=rudiment_labels, blocking=True)
def labels_referential_integrity() -> dg.AssetCheckResult:
    """Every stroke, measure and exercise row has its sample; every sample has its MIDI and audio file."""
    from music_assets.rudiments.labels import check_integrity  # noqa: PLC0415

    return _checked(lambda: check_integrity(_label_tables(), data_dir(), require_audio=True))


@dg.asset_check(asset=rudiment_labels, blocking=True)
def labels_scores_in_range() -> dg.AssetCheckResult:
    """Every exercise score is within 0-100 (or null where it does not apply)."""
    from music_assets.rudiments.labels import check_scores  # noqa: PLC0415

    return _checked(lambda: check_scores(_label_tables()))


@dg.asset_check(asset=rudiment_labels, blocking=True)
def labels_stroke_counts_match_midi() -> dg.AssetCheckResult:
    """Each sample's stroke rows = num_strokes = the note count of its MIDI file."""
    from music_assets.rudiments.labels import check_stroke_counts  # noqa: PLC0415

    return _checked(lambda: check_stroke_counts(_label_tables(), data_dir()))


@dg.asset_check(asset=rudiment_labels)
def labels_realism() -> dg.AssetCheckResult:
    """Per tier over the whole dataset: timing-error SD and velocity CV inside the published ranges,
    timing_accuracy ordered by tier (warning)."""
    from music_assets.rudiments.labels import check_realism  # noqa: PLC0415

    return _checked(lambda: check_realism(_label_tables())[0])


@dg.asset_check(asset=rudiment_labels, blocking=True)
def labels_values_in_range() -> dg.AssetCheckResult:
    """Every label value is finite and in range: onset times inside the take, |timing error| <= 1 s and
    equal to actual - intended, velocities 1-127, flam spacing 0-1 s, durations, per-sample statistics
    (damage that keeps a file readable, such as a flipped byte in a data page, stops here)."""
    from music_assets.rudiments.labels import check_value_ranges  # noqa: PLC0415

    return _checked(lambda: check_value_ranges(_label_tables()))
