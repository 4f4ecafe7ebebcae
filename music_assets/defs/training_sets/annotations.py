"""track_annotations (per source): tempo, key, meter and the rest, measured from the prepared file."""

# No `from __future__ import annotations`: Dagster resolves the Config annotations at definition time.
from typing import Literal

import dagster as dg
from pydantic import Field

from music_assets import paths
from music_assets.defs import owners
from music_assets.defs.partitions import SOURCE_PARTITIONS_PER_RUN, backfill_policy, prepared_source_partitions
from music_assets.defs.sources.assets import prepared_file, prepared_sources
from music_assets.defs.training_sets.common import (
    GROUP,
    PER_SOURCE,
    annotation_file,
    annotations_dir,
    remove_stale,
    selected_rows,
)


class AnnotationConfig(dg.Config):
    method: Literal["essentia", "librosa"] = Field(
        default="essentia", description="essentia (chosen by bench/annotations.py) or the librosa baseline"
    )


@dg.asset(
    owners=owners.TRAINING_SETS,
    code_version="1",
    group_name=GROUP,
    deps=[prepared_sources],
    partitions_def=prepared_source_partitions,
    backfill_policy=backfill_policy(default_per_run=SOURCE_PARTITIONS_PER_RUN),
    kinds={"json"},
    automation_condition=PER_SOURCE,
)
def track_annotations(context: dg.AssetExecutionContext, config: AnnotationConfig) -> dg.MaterializeResult:
    """Per prepared source: BPM, key (keyscale), time signature, each with confidence and source
    (measured, or the sidecar's / provenance.csv's word), duration, loudness, brightness, onset density."""
    from music_assets.io import write_json  # noqa: PLC0415
    from music_assets.training_sets.analysis import AnalysisError  # noqa: PLC0415
    from music_assets.training_sets.annotation import annotate  # noqa: PLC0415

    rows = selected_rows()
    done, failures = {}, []
    for key in context.partition_keys:
        row = rows.get(key, {})
        try:
            record = annotate(
                key, prepared_file(key), row.get("root"), row.get("rel_path"), paths.data_dir(), method=config.method
            )
        except (AnalysisError, OSError) as exc:
            failures.append(f"{key} ({prepared_file(key)}): {exc}")
            continue
        write_json(annotation_file(key), record)
        done[key] = record
    if failures:
        raise dg.Failure(
            description="could not annotate:\n" + "\n".join(failures),
            metadata={"failed": len(failures), "annotated_before_failure": len(done)},
        )
    for key, r in done.items():
        for problem in r["problems"]:
            context.log.warning(f"{key}: {problem}")
        context.add_asset_metadata(
            partition_key=key,
            metadata={
                "bpm": r["bpm"],
                "bpm_confidence": r["bpm_confidence"],
                "key": r["key"],
                "key_confidence": r["key_confidence"],
                "timesignature": f"{r['timesignature']}/4",
                "timesignature_confidence": r["timesignature_confidence"],
                "annotation_source": dg.MetadataValue.json(r["annotation_source"]),
                "measured": dg.MetadataValue.json(r["measured"]),
                "duration_sec": r["duration_sec"],
                "loudness_lufs": r["loudness_lufs"],
                "brightness_hz": r["brightness_hz"],
                "onset_density": r["onset_density"],
                "vocal": r["vocal"],
                "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in r["problems"]) or "none"),
                "path": dg.MetadataValue.path(str(annotation_file(key))),
            },
        )
    stale = remove_stale(
        annotations_dir(), set(context.instance.get_dynamic_partitions(prepared_source_partitions.name))
    )
    if stale:
        context.log.info(f"removed the annotations of {len(stale)} sources no longer selected")
    return dg.MaterializeResult()
