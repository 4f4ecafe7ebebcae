"""Automation that spans groups, and the policy every automation follows.

Here: failure alerts, clean-up of killed runs, the sensor that evaluates the
assets' automation conditions, the conditions themselves (`per_source_condition`,
`FOLLOW_INPUTS`) and which sensors and schedules are on. Each group's own
schedules sit in its package (`defs/rudiments/automation.py`,
`defs/models/automation.py`); `python -m music_assets.ops.automations` lists
them all and says which are on.

What is on. Sensors and schedules are stopped by default (Dagster's own
default): starting `dagster dev` on a fresh instance starts no run. Two are on
unless `MUSIC_ASSETS_AUTOMATIONS=none`: `run_failure_alerts` and
`reap_killed_runs`, which never start a run (they append failed runs to the
alerts file and free the pool slots of killed runs, which would otherwise
block the next pooled run). `MUSIC_ASSETS_AUTOMATIONS` (comma-separated names,
or `all`) turns others on by default; a deployment that runs unattended names
`PRODUCTION` (deploy/k8s/values.yaml). A default only applies while the
instance has no state of its own for the automation: once started or stopped
with `dagster sensor|schedule start|stop` or the UI toggle, that choice stays.
`python -m music_assets.ops.automations` prints what is on (`make dev` does).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import dagster as dg

from music_assets.ops.alerts import append_alert
from music_assets.ops.instance import reap_dead_runs

AUTOMATIONS_ENV = "MUSIC_ASSETS_AUTOMATIONS"
# On unless MUSIC_ASSETS_AUTOMATIONS=none: bookkeeping that never starts a run.
ON_BY_DEFAULT = ("run_failure_alerts", "reap_killed_runs")
# Everything a deployment that runs unattended turns on.
PRODUCTION = (
    "raw_audio_sensor",
    "daily_audio_catalog",
    "follow_inputs",
    "nightly_rudiment_dataset",
    "weekly_model_retrain",
    *ON_BY_DEFAULT,
)


def _requested() -> set[str]:
    return {n.strip() for n in os.environ.get(AUTOMATIONS_ENV, "").split(",") if n.strip()}


def is_on_by_default(name: str) -> bool:
    """Whether the sensor or schedule `name` is on by default (see the module docstring)."""
    requested = _requested()
    if "none" in requested:
        return False
    return "all" in requested or name in requested or name in ON_BY_DEFAULT


def sensor_status(name: str) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if is_on_by_default(name) else dg.DefaultSensorStatus.STOPPED


def schedule_status(name: str) -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if is_on_by_default(name) else dg.DefaultScheduleStatus.STOPPED


def check_automation_names(names: Iterable[str]) -> None:
    """ValueError when MUSIC_ASSETS_AUTOMATIONS names a sensor or schedule that does not exist."""
    known = set(names)
    unknown = sorted(_requested() - known - {"all", "none"})
    if unknown:
        raise ValueError(
            f"{AUTOMATIONS_ENV}: no sensor or schedule named {', '.join(unknown)}; "
            f"the names are: {', '.join(sorted(known))} (or all, none)"
        )


def per_source_condition(ignore_updates: Sequence[str] = (), optional: Sequence[str] = ()) -> dg.AutomationCondition:
    """The automation condition of the assets partitioned by source (prepared_sources, texture_beds, ...).

    A partition runs when it is new (`newly_missing`), when a dependency's partition was updated
    (`any_deps_updated`: a new materialization of an asset, or a new *data version* of the
    observable source `source_files`, which `selected_sources` records only for sources whose
    bytes or provenance changed), or when the asset's `code_version` changed (every partition) -
    once, until it is requested or updated (`since_last_handled`), and never while a dependency is
    missing or running, or a blocking check upstream failed. `ignore_updates`: dependencies whose
    updates do not count (the unpartitioned selection, rewritten at every catalog refresh; its
    per-source changes arrive through `source_files`). `optional`: dependencies that may be
    missing (`source_files` has no observation for a source that never changed).
    """
    ac = dg.AutomationCondition
    updated = ac.any_deps_updated()
    if ignore_updates:
        updated = updated.ignore(dg.AssetSelection.assets(*ignore_updates))
    missing = ac.any_deps_missing()
    if optional:
        missing = missing.ignore(dg.AssetSelection.assets(*optional))
    return (
        (ac.newly_missing() | updated | ac.code_version_changed()).since_last_handled()
        & ~missing
        & ~ac.any_deps_in_progress()
        & ~ac.in_progress()
        & ac.all_deps_blocking_checks_passed()
    ).with_label("per_source")


# Assets that follow their inputs unattended. A blocking check that failed
# upstream (duration, clipping, alignment, grammar score, parity...) keeps
# them from running, in the same run and in every later evaluation.
FOLLOW_INPUTS = (
    "rudiment_labels",
    "hf_staging",
    "token_corpus",
    "base_model",
    "lora_adapters",
    "onnx_models",
    "quantized_models",
    "rudiment_classifier",
    "model_evaluation",
)
FOLLOW_CONDITION = dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()


def follow_inputs(spec: dg.AssetSpec) -> dg.AssetSpec:
    """The automation condition for an asset in FOLLOW_INPUTS (applied in definitions.py)."""
    return spec.replace_attributes(automation_condition=FOLLOW_CONDITION)


automation_sensor = dg.AutomationConditionSensorDefinition(
    "follow_inputs",
    target=dg.AssetSelection.all(),
    default_status=sensor_status("follow_inputs"),
    minimum_interval_seconds=30,
    description="Evaluates the assets' automation conditions: downstream assets follow new inputs "
    "once every blocking check upstream has passed.",
)

PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def failure_record(context: dg.RunFailureSensorContext) -> dict:
    """What an on-call engineer needs first: which run, which assets and partitions, why."""
    run = context.dagster_run
    tags = run.tags
    if PARTITION_TAG in tags:
        partition = tags[PARTITION_TAG]
    elif RANGE_START_TAG in tags:
        partition = f"{tags[RANGE_START_TAG]}...{tags[RANGE_END_TAG]}"
    else:
        partition = None
    steps = []
    for event in context.get_step_failure_events():
        err = event.step_failure_data.error if event.step_failure_data else None
        # Dagster wraps the user's exception; its innermost cause is what went wrong.
        while err is not None and err.cause is not None:
            err = err.cause
        steps.append({"step": event.step_key, "error": err.message.strip() if err else event.message})
    # Planned but not materialized = the assets this failure left stale.
    logs = context.instance.all_logs(
        run.run_id,
        of_type={dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, dg.DagsterEventType.ASSET_MATERIALIZATION},
    )
    planned = {
        e.dagster_event.asset_key
        for e in logs
        if e.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    }
    done = {
        e.dagster_event.asset_key
        for e in logs
        if e.dagster_event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
    }
    assets = sorted(k.to_user_string() for k in (planned - done) or planned or (run.asset_selection or []))
    return {
        "run_id": run.run_id,
        "job": run.job_name,
        "assets": assets,
        "partition": partition,
        "error": context.failure_event.message,
        "failed_steps": steps,
        "timestamp": context.failure_event.timestamp if hasattr(context.failure_event, "timestamp") else None,
    }


@dg.run_failure_sensor(
    name="run_failure_alerts",
    description="Appends a record (run id, assets, partition, error) to <data dir>/alerts.jsonl for every failed run.",
    default_status=sensor_status("run_failure_alerts"),
    minimum_interval_seconds=30,
)
def run_failure_alerts(context: dg.RunFailureSensorContext) -> None:
    record = failure_record(context)
    path = append_alert(record)
    context.log.info(f"alert for run {record['run_id']} appended to {path}")


@dg.sensor(
    name="reap_killed_runs",
    description="Marks runs whose processes were killed as failed and frees their concurrency-pool slots.",
    default_status=sensor_status("reap_killed_runs"),
    minimum_interval_seconds=60,
)
def reap_killed_runs(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    reaped = reap_dead_runs(context.instance)
    return dg.SkipReason(f"reaped {len(reaped)} killed run(s): {', '.join(reaped)}" if reaped else "no killed runs")


defs = dg.Definitions(sensors=[run_failure_alerts, reap_killed_runs, automation_sensor])
