"""Prepare $DAGSTER_HOME (the Dagster instance folder under the data dir), and keep dead runs from
holding concurrency-pool slots.

`python -m music_assets.ops.instance` creates the folder, links the checkout's
`dagster.yaml` into it and creates the instance's storage, under a file lock,
so any number of processes may do this at once on a fresh folder.
`MUSIC_ASSETS_INSTANCE=<variant>` links `dagster.<variant>.yaml` instead (for
example `postgres`), which is how the instance is switched to another storage
in one step.

Both instance files name `MusicAssetsInstance` as the instance class: its
default SQLite storage (`LockedSqliteStorage`) creates its databases under a
file lock, so two Dagster processes that open a fresh instance at once (two
`dagster asset materialize`, the web server and the daemon) no longer race to
create the same tables (SQLite's "table alembic_version already exists", or
an alembic table left with two heads).

Dead runs. A run whose processes were killed (SIGKILL, out of memory, a
machine reboot) stays "started" and keeps the concurrency-pool slots its steps
claimed, so every later run of a pooled step (rendering, training, export)
would wait for ever. `reap_dead_runs` marks such runs failed and frees their
slots; it runs
- at the start of every run of the project's multiprocess executor, and while
  one of its steps waits on a pool (`PoolWatch`, `music_assets.ops.executors`):
  a killed run on this machine never blocks the next one;
- in the `reap_killed_runs` sensor, and in `make run` before it starts;
- by hand: `python -m music_assets.ops.instance --reap`.
The daemon's run monitoring does the same for runs it launched itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClassData

from music_assets.paths import REPO_ROOT, dagster_home

HOST_TAG = "music_assets/host"
PID_TAG = "music_assets/pid"
INIT_LOCK = ".instance-init.lock"  # ensure_dagster_home
STORAGE_LOCK = ".storage-init.lock"  # LockedSqliteStorage (another file: ensure_dagster_home creates storage)
STORAGE_READY = ".storage-ready"  # written once the storage's databases exist, under STORAGE_LOCK
# a pid counts as the run's only if that process started no later than this after the event naming it
PID_START_SLACK_SEC = 2.0
WATCH_INTERVAL_SEC = 5.0
WAIT_LOG_INTERVAL_SEC = 60.0


def instance_config_file() -> Path:
    variant = os.environ.get("MUSIC_ASSETS_INSTANCE", "").strip()
    name = f"dagster.{variant}.yaml" if variant else "dagster.yaml"
    path = REPO_ROOT / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no instance config for MUSIC_ASSETS_INSTANCE={variant!r}")
    return path


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _link_config(home: Path, source: Path) -> None:
    target = home / "dagster.yaml"
    if target.is_symlink() and Path(os.readlink(target)) == source:
        return
    tmp = home / f".dagster.yaml.{os.getpid()}.link"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(source)
    os.replace(tmp, target)  # atomic: a reader sees the old link or the new one, never none


def _uses_default_storage(config_file: Path) -> bool:
    doc = yaml.safe_load(config_file.read_text()) or {}
    return not any(k in doc for k in ("storage", "run_storage", "event_log_storage", "schedule_storage"))


def ensure_dagster_home(create_storage: bool = True) -> Path:
    """Create $DAGSTER_HOME, point its dagster.yaml at the selected config and, for the default
    SQLite storage, create the databases; safe to call from many processes at once."""
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    source = instance_config_file()
    with _flock(home / INIT_LOCK):
        _link_config(home, source)
        if create_storage and _uses_default_storage(source) and not (home / "history" / "runs.db").is_file():
            with dg.DagsterInstance.from_config(str(home)) as inst:
                inst.get_runs(limit=1)
    return home


# ---------------------------------------------------------------- race-free SQLite storage


class LockedSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage, created under a file lock in its folder (see the module docstring)."""

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # noqa: ANN001, ANN206 - Dagster's signature
        return cls.from_local(inst_data=inst_data, **config_value)

    @classmethod
    def from_local(cls, base_dir: str, inst_data=None):  # noqa: ANN001, ANN206
        ready = Path(base_dir) / STORAGE_READY
        if ready.is_file():  # created (and stamped) once: opening it needs no lock
            return cls(base_dir, inst_data=inst_data)
        with _flock(Path(base_dir) / STORAGE_LOCK):
            storage = cls(base_dir, inst_data=inst_data)
            ready.touch()
            return storage


class MusicAssetsInstance(dg.DagsterInstance):
    """The Dagster instance, with `LockedSqliteStorage` as its default storage (dagster.yaml names it)."""

    @classmethod
    def config_schema(cls) -> dict:
        return {}

    @staticmethod
    def config_defaults(base_dir: str) -> Mapping[str, Any]:
        defaults = dict(InstanceRef.config_defaults(base_dir))
        defaults["storage"] = ConfigurableClassData(
            __name__, "LockedSqliteStorage", yaml.dump({"base_dir": base_dir}, default_flow_style=False)
        )
        return defaults


# ---------------------------------------------------------------- dead runs


def _alive(pid: int, not_after: float | None = None) -> bool:
    """True for a running process (a zombie counts as dead). With `not_after` (a timestamp), a
    process that started later than that is another process that reused the pid: dead."""
    import psutil  # noqa: PLC0415

    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        return not_after is None or p.create_time() <= not_after + PID_START_SLACK_SEC
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def stamp_run(instance, run_id: str) -> None:
    """Tag a run with the host and pid of the process that executes it (read by the reaper)."""
    instance.add_run_tags(run_id, {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())})


def _run_pids(instance, run) -> dict[int, float]:
    """pid -> the earliest time an event of the run names it."""
    kinds = {
        dg.DagsterEventType.RUN_START,
        dg.DagsterEventType.ENGINE_EVENT,
        dg.DagsterEventType.STEP_START,
        dg.DagsterEventType.STEP_WORKER_STARTED,
    }
    pids: dict[int, float] = {}
    for e in instance.all_logs(run.run_id, of_type=kinds):
        if e.dagster_event is not None and e.dagster_event.pid:
            pids[e.dagster_event.pid] = min(pids.get(e.dagster_event.pid, e.timestamp), e.timestamp)
    return pids


def run_is_dead(instance, run, *, local_only: bool = False) -> bool:
    """True when every process of an in-progress `run` is gone (this machine's view).

    A run tagged with another host is never judged from here. With `local_only`, neither is a
    run without the host tag (one not started by this project's executor).
    """
    host = run.tags.get(HOST_TAG)
    if host is not None and host != socket.gethostname():
        return False
    if host is None and local_only:
        return False
    pids = _run_pids(instance, run)
    return bool(pids) and not any(_alive(pid, seen) for pid, seen in pids.items())


def _in_progress():
    return [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING]


def reap_run(instance, run, reason: str) -> None:
    instance.report_run_failed(run, message=reason)
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)


def reap_dead_runs(instance, *, local_only: bool = False, run_ids: Iterable[str] | None = None) -> list[str]:
    """Fail in-progress runs none of whose processes is alive; free their pool slots.

    Only meaningful for runs executed on this machine: the pids come from the run's event log
    and tags, and a run tagged with another host is left alone; a pid that is alive, and was
    started before the run named it, keeps the run as is. `run_ids` limits the look to those runs.
    """
    wanted = set(run_ids) if run_ids is not None else None
    filters = dg.RunsFilter(statuses=_in_progress(), run_ids=sorted(wanted) if wanted is not None else None)
    reaped = []
    for run in instance.get_runs(filters=filters):
        if not run_is_dead(instance, run, local_only=local_only):
            continue
        pids = sorted(_run_pids(instance, run))
        reap_run(instance, run, f"run processes {pids} are gone (killed); marked failed and freed its pool slots")
        reaped.append(run.run_id)
    return reaped


class PoolWatch:
    """While a run's steps wait on concurrency pools: free the slots of dead runs, and say what the
    step waits for.

    `check()` looks at every pool `pools` names: slots held by a run that has finished are freed
    (a run marked failed without freeing them), slots held by a run of this machine whose
    processes are gone are freed after marking that run failed, and for a slot held by a live run
    it logs (at WARNING, then at most every minute) which run and step hold it and how to clear
    the wait. `start()` runs `check()` every few seconds on a thread until `stop()`.
    """

    def __init__(self, instance, run_id: str, pools: Iterable[str], log: Callable[[str], None]):
        self.instance, self.run_id, self.pools, self.log = instance, run_id, sorted(set(pools)), log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._said: dict[tuple[str, str], float] = {}

    def check(self, only_when_waiting: bool = False) -> list[str]:
        storage = self.instance.event_log_storage
        if not self.pools or not getattr(storage, "supports_global_concurrency_limits", False):
            return []
        freed: list[str] = []
        for pool in self.pools:
            info = storage.get_concurrency_info(pool)
            waiting = [p.step_key for p in info.pending_steps if p.run_id == self.run_id]
            if only_when_waiting and not waiting:
                continue
            for holder in sorted(info.active_run_ids - {self.run_id}):
                run = self.instance.get_run_by_id(holder)
                if run is None or run.is_finished:
                    storage.free_concurrency_slots_for_run(holder)
                    status = "deleted" if run is None else run.status.value
                    self.log(f"freed the '{pool}' pool slot(s) still held by run {holder}, which has ended ({status})")
                    freed.append(holder)
                elif run_is_dead(self.instance, run, local_only=True):
                    reap_run(
                        self.instance,
                        run,
                        f"its processes are gone (killed); marked failed by run {self.run_id}, which was waiting "
                        f"for its '{pool}' pool slot",
                    )
                    self.log(
                        f"run {holder} held the '{pool}' pool slot but its processes are gone (killed): "
                        "marked it failed and freed the slot"
                    )
                    freed.append(holder)
                elif waiting:
                    self._say_waiting(pool, info, holder, waiting)
        return freed

    def _say_waiting(self, pool: str, info, holder: str, waiting: list[str]) -> None:
        now = time.monotonic()
        if now - self._said.get((pool, holder), -1e9) < WAIT_LOG_INTERVAL_SEC:
            return
        self._said[(pool, holder)] = now
        steps = sorted({s.step_key for s in info.claimed_slots if s.run_id == holder})
        run = self.instance.get_run_by_id(holder)
        where = ""
        if run is not None and run.tags.get(HOST_TAG):
            where = f", pid {run.tags.get(PID_TAG)} on {run.tags.get(HOST_TAG)}"
        self.log(
            f"step(s) {', '.join(sorted(waiting))} wait for pool '{pool}' (limit {info.slot_count}): its slot is "
            f"held by run {holder} (step {', '.join(steps) or '?'}{where}). They start when that step ends. "
            f"To go on sooner: allow more at once with `dagster instance concurrency set {pool} "
            f"{info.slot_count + 1}`; if run {holder} "
            f"is stuck, terminate it from the UI; if its processes are gone, `python -m music_assets.ops.instance "
            f"--reap` (done here automatically for runs of this machine)"
        )

    def _loop(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL_SEC):
            try:
                self.check(only_when_waiting=True)
            except Exception as exc:  # noqa: BLE001 - the watch only helps; it must never fail the run
                self.log(f"pool watch: {exc!r}")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="pool-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=WATCH_INTERVAL_SEC * 2)


if __name__ == "__main__":
    import sys

    home = ensure_dagster_home()
    if "--reap" in sys.argv[1:]:
        os.environ["DAGSTER_HOME"] = str(home)
        with dg.DagsterInstance.get() as inst:
            for run_id in reap_dead_runs(inst):
                print(f"marked run {run_id} failed and freed its pool slots")
    else:
        print(home)
