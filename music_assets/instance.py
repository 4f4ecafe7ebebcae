"""Prepare $DAGSTER_HOME: the Dagster instance folder under the data dir.

`python -m music_assets.instance` creates the folder and links the checkout's
`dagster.yaml` into it. `MUSIC_ASSETS_INSTANCE=<variant>` links
`dagster.<variant>.yaml` instead (for example `postgres`), which is how the
instance is switched to another storage in one step.

`python -m music_assets.instance --reap` marks runs whose processes are gone
(a `dagster asset materialize` killed with SIGKILL) as failed and frees the
concurrency-pool slots they held, so the next run of a pooled step does not
wait forever. The demo runner and a sensor do this automatically; the daemon's
run monitoring does the same for runs it launched itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from music_assets.paths import REPO_ROOT, dagster_home


def instance_config_file() -> Path:
    variant = os.environ.get("MUSIC_ASSETS_INSTANCE", "").strip()
    name = f"dagster.{variant}.yaml" if variant else "dagster.yaml"
    path = REPO_ROOT / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no instance config for MUSIC_ASSETS_INSTANCE={variant!r}")
    return path


def ensure_dagster_home() -> Path:
    """Create $DAGSTER_HOME and point its dagster.yaml at the selected config."""
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    source = instance_config_file()
    if target.is_symlink() or target.exists():
        if target.is_symlink() and Path(os.readlink(target)) == source:
            return home
        target.unlink()
    target.symlink_to(source)
    return home


def _alive(pid: int) -> bool:
    """True for a running process; a zombie (killed, not yet waited for) counts as dead."""
    import psutil  # noqa: PLC0415

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def reap_dead_runs(instance) -> list[str]:
    """Fail in-progress runs none of whose processes is alive; free their pool slots.

    Only meaningful for runs executed on this machine (the pids come from the
    run's event log); a pid that is alive, even if reused, keeps the run as is.
    """
    import dagster as dg  # noqa: PLC0415 - keep `python -m music_assets.instance` light

    reaped = []
    in_progress = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING]
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=in_progress)):
        events = instance.all_logs(run.run_id)
        pids = {e.dagster_event.pid for e in events if e.dagster_event is not None and e.dagster_event.pid}
        if not pids or any(_alive(pid) for pid in pids):
            continue
        instance.report_run_failed(run, message=f"run processes {sorted(pids)} are gone (killed); marked failed")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(run.run_id)
    return reaped


if __name__ == "__main__":
    import sys

    home = ensure_dagster_home()
    if "--reap" in sys.argv[1:]:
        import dagster as dg

        os.environ["DAGSTER_HOME"] = str(home)
        with dg.DagsterInstance.get() as inst:
            for run_id in reap_dead_runs(inst):
                print(f"marked run {run_id} failed and freed its pool slots")
    else:
        print(home)
