"""What the schedules and the declarative automation request, evaluated with Dagster's test helpers."""

import datetime as dt

import dagster as dg
import pytest

from music_assets.definitions import defs
from music_assets.defs.automation import FOLLOW_INPUTS
from music_assets.defs.rudiments.automation import nightly_rudiment_dataset
from music_assets.rudiments.constants import RUDIMENT_SLUGS

LABEL_GATES = (
    "labels_referential_integrity",
    "labels_scores_in_range",
    "labels_stroke_counts_match_midi",
    "labels_values_in_range",
)


def test_nightly_schedule_regenerates_all_40_partitions_in_one_run(instance: dg.DagsterInstance) -> None:
    when = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)
    (request,) = nightly_rudiment_dataset(dg.build_schedule_context(instance=instance, scheduled_execution_time=when))
    assert request.tags["dagster/asset_partition_range_start"] == RUDIMENT_SLUGS[0] == "single_stroke_roll"
    assert request.tags["dagster/asset_partition_range_end"] == RUDIMENT_SLUGS[-1] == "triple_ratamacue"
    assert request.run_key == "nightly-2026-11-24"
    job = defs.resolve_job_def("regenerate_rudiment_dataset")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {
        "rudiment_performances",
        "rudiment_audio",
    }
    assert defs.resolve_schedule_def("nightly_rudiment_dataset").cron_schedule == "0 2 * * *"


def test_nightly_schedule_on_a_cluster_requests_one_run_per_chunk(instance, monkeypatch) -> None:
    monkeypatch.setenv("MUSIC_ASSETS_BACKFILL_PARTITIONS_PER_RUN", "16")
    when = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)
    requests = nightly_rudiment_dataset(dg.build_schedule_context(instance=instance, scheduled_execution_time=when))
    ranges = [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"]) for r in requests
    ]
    slugs = list(RUDIMENT_SLUGS)
    assert ranges == [(slugs[0], slugs[15]), (slugs[16], slugs[31]), (slugs[32], slugs[39])]
    assert [r.run_key for r in requests] == [f"nightly-2026-11-24-{i:02d}" for i in range(3)]


def test_every_automated_asset_waits_for_blocking_checks() -> None:
    graph = defs.resolve_asset_graph()
    for key in FOLLOW_INPUTS:
        condition = graph.get(dg.AssetKey(key)).automation_condition
        assert condition is not None, key
        assert "all_deps_blocking_checks_passed" in repr(condition), key


def _report_labels(instance: dg.DagsterInstance, failing: str | None) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization("rudiment_labels"))
    for gate in LABEL_GATES:
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey("rudiment_labels"),
                check_name=gate,
                passed=gate != failing,
                severity=dg.AssetCheckSeverity.ERROR,
            )
        )


@pytest.mark.parametrize("failing", [None, "labels_referential_integrity"])
def test_staging_follows_new_labels_only_when_their_gates_passed(instance: dg.DagsterInstance, failing) -> None:
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0  # nothing new yet
    _report_labels(instance, failing)
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert result.get_num_requested(dg.AssetKey("hf_staging")) == (1 if failing is None else 0)


def test_weekly_schedule_retrains_corpus_and_base_model(instance: dg.DagsterInstance) -> None:
    schedule = defs.resolve_schedule_def("weekly_model_retrain")
    assert schedule.cron_schedule == "0 3 * * 0"
    when = dt.datetime(2026, 11, 29, 3, 0, tzinfo=dt.UTC)
    (request,) = schedule.evaluate_tick(
        dg.build_schedule_context(instance=instance, scheduled_execution_time=when)
    ).run_requests
    assert request.tags["music_assets/trigger"] == "weekly_model_retrain"
    job = defs.resolve_job_def("retrain_models")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {"token_corpus", "base_model"}


def test_only_the_bookkeeping_sensors_are_on_by_default() -> None:
    from music_assets.defs.automation import ON_BY_DEFAULT, PRODUCTION

    statuses = {s.name: s.default_status.value for s in [*defs.sensors, *defs.schedules]}
    assert {name for name, status in statuses.items() if status == "RUNNING"} == set(ON_BY_DEFAULT)
    assert set(PRODUCTION) <= set(statuses)


def test_the_environment_names_what_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    from music_assets.defs import automation

    monkeypatch.setenv(automation.AUTOMATIONS_ENV, " raw_audio_sensor, daily_audio_catalog ")
    assert automation.is_on_by_default("raw_audio_sensor") and automation.is_on_by_default("daily_audio_catalog")
    assert automation.is_on_by_default("reap_killed_runs") and not automation.is_on_by_default("follow_inputs")
    monkeypatch.setenv(automation.AUTOMATIONS_ENV, "all")
    assert automation.is_on_by_default("follow_inputs")
    monkeypatch.setenv(automation.AUTOMATIONS_ENV, "none")
    assert not automation.is_on_by_default("reap_killed_runs")
    monkeypatch.setenv(automation.AUTOMATIONS_ENV, "raw_audio_sensr")
    with pytest.raises(ValueError, match="no sensor or schedule named raw_audio_sensr"):
        automation.check_automation_names([s.name for s in defs.sensors])
    # the code location read with the variable set: the named ones start by default, the others do not
    monkeypatch.setenv(automation.AUTOMATIONS_ENV, "raw_audio_sensor,weekly_model_retrain")
    out = subprocess.run(
        [sys.executable, "-c", "from music_assets.definitions import defs\n"
         "for s in [*defs.sensors, *defs.schedules]: print(s.name, s.default_status.value)"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    running = {line.split()[0] for line in out.splitlines() if line.endswith(" RUNNING")}
    assert running == {"raw_audio_sensor", "weekly_model_retrain", "run_failure_alerts", "reap_killed_runs"}, out


def test_the_cluster_turns_the_production_set_on() -> None:
    import yaml

    from music_assets.defs.automation import AUTOMATIONS_ENV, PRODUCTION
    from music_assets.paths import REPO_ROOT

    values = yaml.safe_load((REPO_ROOT / "deploy/k8s/values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert set(env[AUTOMATIONS_ENV].split(",")) == set(PRODUCTION)
