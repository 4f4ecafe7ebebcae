"""track_captions (per source): the style, tags, caption and lyrics of each track."""

# No `from __future__ import annotations`: Dagster resolves the Config annotations at definition time.
import json

import dagster as dg

from music_assets.defs import owners
from music_assets.defs.partitions import SOURCE_PARTITIONS_PER_RUN, backfill_policy, prepared_source_partitions
from music_assets.defs.training_sets.annotations import track_annotations
from music_assets.defs.training_sets.common import (
    GROUP,
    PER_SOURCE,
    annotation_file,
    caption_file,
    captions_dir,
    remove_stale,
)
from music_assets.defs.training_sets.presets import style_presets


@dg.asset(
    owners=owners.TRAINING_SETS,
    code_version="1",
    group_name=GROUP,
    deps=[track_annotations, style_presets],
    partitions_def=prepared_source_partitions,
    backfill_policy=backfill_policy(default_per_run=SOURCE_PARTITIONS_PER_RUN),
    kinds={"json"},
    automation_condition=PER_SOURCE,
)
def track_captions(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Per source: the style (sidecar, else rules over the measured features, with the rule and a
    confidence), tags from the preset's vocabulary plus measured facts, a one-sentence caption, the
    lyrics ([Instrumental] or the sidecar's file). A track that cannot be used gets an `error` row."""
    from music_assets.io import sha256_file, write_json  # noqa: PLC0415
    from music_assets.training_sets.captions import caption_record  # noqa: PLC0415
    from music_assets.training_sets.presets import load_presets  # noqa: PLC0415

    presets = load_presets()
    missing = []
    for key in context.partition_keys:
        src = annotation_file(key)
        if not src.is_file():
            missing.append(f"{key}: {src} does not exist (materialize track_annotations first)")
            continue
        record = caption_record(json.loads(src.read_text(encoding="utf-8")), presets)
        record["annotation_sha256"] = sha256_file(src)
        write_json(caption_file(key), record)
        if record["error"]:
            context.log.warning(f"{key}: not in the training set: {record['error']}")
        meta = (
            {"error": record["error"]}
            if record["error"]
            else {
                "style": record["style"],
                "category": record["category"],
                "style_source": record["style_source"],
                "style_rule": record["style_rule"],
                "style_confidence": record["style_confidence"],
                "tags": record["prompt"],
                "caption": record["caption"],
                "vocal": record["vocal"],
            }
        )
        context.add_asset_metadata(
            partition_key=key, metadata={**meta, "path": dg.MetadataValue.path(str(caption_file(key)))}
        )
    if missing:
        raise dg.Failure(description="\n".join(missing))
    remove_stale(captions_dir(), set(context.instance.get_dynamic_partitions(prepared_source_partitions.name)))
    return dg.MaterializeResult()
