"""The models group's schedule: the weekly retrain, as a candidate beside the promoted models."""

from __future__ import annotations

import dagster as dg

from music_assets.defs.automation import schedule_status

# The weekly retrain: the corpus and the base model, as a candidate beside the
# promoted models; the adapters, exports, variants and model_evaluation follow
# through their automation conditions once each gate has passed, and
# model_evaluation promotes the new set only if it measures not worse than the
# one in use (`music_assets.ml.promotion`).
retrain_job = dg.define_asset_job(
    "retrain_models",
    selection=dg.AssetSelection.assets("token_corpus", "base_model"),
    description="Re-tokenize the corpus and retrain the base model.",
)

weekly_model_retrain = dg.ScheduleDefinition(
    name="weekly_model_retrain",
    cron_schedule="0 3 * * 0",
    job=retrain_job,
    default_status=schedule_status("weekly_model_retrain"),
    tags={"music_assets/trigger": "weekly_model_retrain"},
    description="Every Sunday at 03:00: retrain the base model on the current corpus as a candidate; the tier "
    "adapters, exports and their evaluation follow when the gates pass, and the new models replace the ones in "
    "use only if they measure not worse (model_evaluation's champion_challenger check).",
)


defs = dg.Definitions(jobs=[retrain_job], schedules=[weekly_model_retrain])
