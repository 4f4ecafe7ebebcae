"""Failure alerts and the clean-up of killed runs."""

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg

from music_assets.defs.automation import reap_killed_runs, run_failure_alerts
from music_assets.ops.alerts import read_alerts

parts = dg.StaticPartitionsDefinition(["flam", "drag"])


@dg.asset(partitions_def=parts)
def broken(context: dg.AssetExecutionContext) -> None:
    raise ValueError(f"{context.partition_key}.mid: no drum track")


def test_failed_run_appends_a_clear_alert(data_dir: Path, instance: dg.DagsterInstance) -> None:
    result = dg.materialize([broken], instance=instance, partition_key="drag", raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    ctx = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alerts",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=failure,
    ).for_run_failure()
    run_failure_alerts(ctx)
    (alert,) = read_alerts(data_dir / "alerts.jsonl")
    assert alert["run_id"] == result.run_id
    assert alert["assets"] == ["broken"]
    assert alert["partition"] == "drag"
    assert "drag.mid: no drum track" in alert["failed_steps"][0]["error"]


POOLED = textwrap.dedent("""
    import sys, time
    import dagster as dg

    @dg.asset(pool="fluidsynth")
    def pooled():
        print("started", flush=True)
        time.sleep(float(sys.argv[1]))

    with dg.DagsterInstance.get() as instance:
        assert dg.materialize([pooled], instance=instance).success
    print("done", flush=True)
""")


def test_killed_run_is_failed_and_its_pool_slot_freed(dagster_home: Path, tmp_path: Path) -> None:
    script = tmp_path / "pooled.py"
    script.write_text(POOLED)
    victim = subprocess.Popen([sys.executable, str(script), "600"], stdout=subprocess.PIPE, text=True)
    assert victim.stdout.readline().strip() == "started"
    victim.send_signal(signal.SIGKILL)
    victim.wait()

    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.STARTED
        assert instance.event_log_storage.get_concurrency_info("fluidsynth").active_slot_count == 1
        skip = reap_killed_runs(dg.build_sensor_context(instance=instance))
        assert f"reaped 1 killed run(s): {run.run_id}" == skip.skip_message
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_info("fluidsynth").active_slot_count == 0

    # The next run of the pooled step is not blocked by the dead one.
    t0 = time.monotonic()
    again = subprocess.run([sys.executable, str(script), "0"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "done" in again.stdout, again.stderr[-2000:]
    assert time.monotonic() - t0 < 60
