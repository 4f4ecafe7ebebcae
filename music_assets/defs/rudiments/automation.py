"""The rudiments group's schedule: the nightly regeneration of every rudiment partition."""

from __future__ import annotations

import dagster as dg

from music_assets.defs.automation import RANGE_END_TAG, RANGE_START_TAG, schedule_status
from music_assets.defs.partitions import partition_chunks, rudiment_partitions
from music_assets.rudiments.constants import RUDIMENT_SLUGS

# The nightly regeneration: every rudiment partition in one run (the assets
# use a single-run backfill policy), or one run per chunk of partitions where the
# deployment sets MUSIC_ASSETS_BACKFILL_PARTITIONS_PER_RUN (defs/partitions.py);
# labels and staging follow through their automation conditions once the audio
# gates have passed.
rudiment_dataset_job = dg.define_asset_job(
    "regenerate_rudiment_dataset",
    selection=dg.AssetSelection.assets("rudiment_performances", "rudiment_audio"),
    partitions_def=rudiment_partitions,
    description="All 40 rudiment partitions (performances, then audio) in one run.",
)


@dg.schedule(
    name="nightly_rudiment_dataset",
    cron_schedule="0 2 * * *",
    job=rudiment_dataset_job,
    default_status=schedule_status("nightly_rudiment_dataset"),
    description="Every night at 02:00: regenerate all 40 rudiment partitions in one run; labels and "
    "Hub staging follow when the gates pass.",
)
def nightly_rudiment_dataset(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    chunks = partition_chunks(RUDIMENT_SLUGS)
    day = f"{context.scheduled_execution_time:%Y-%m-%d}"
    return [
        dg.RunRequest(
            run_key=f"nightly-{day}" if len(chunks) == 1 else f"nightly-{day}-{i:02d}",
            tags={
                RANGE_START_TAG: chunk[0],
                RANGE_END_TAG: chunk[-1],
                "music_assets/trigger": "nightly_rudiment_dataset",
            },
        )
        for i, chunk in enumerate(chunks)
    ]


defs = dg.Definitions(jobs=[rudiment_dataset_job], schedules=[nightly_rudiment_dataset])
