"""Issue 22, item 6: a killed run must not leave the next run of a pooled step waiting for ever.

Before: a run killed with SIGKILL kept its concurrency-pool slot, and every later CLI run of a pooled
step (rendering, training, export) waited on "Step blocked by limit for pool ..." (said only at
DEBUG) until someone ran `python -m music_assets.ops.instance --reap`. Now the project's executor frees
the slots of runs whose processes are gone when a run starts and while one of its steps waits, and a
step waiting on a live run says at WARNING which run holds the slot and how to clear the wait.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import psutil
import pytest

from music_assets.paths import REPO_ROOT
from music_assets_tests.faults.conftest import subprocess_env

DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _run(home: Path, marker: Path, hold: float) -> subprocess.Popen:
    cmd = [DAGSTER, "asset", "materialize", "-m", "music_assets_tests.faults.pool_defs", "--select", "pooled_step"]
    env = subprocess_env(DAGSTER_HOME=str(home), FAULTS_POOL_MARKER=str(marker), FAULTS_POOL_HOLD=str(hold))
    return subprocess.Popen(
        cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def _wait_for(marker: Path, proc: subprocess.Popen, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while not marker.is_file() or not marker.read_text():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "the pooled step never started"
        time.sleep(0.05)
    return int(marker.read_text())


def _stop(*procs: subprocess.Popen) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_the_pool_slot_of_a_killed_run_is_freed_by_the_next_run(dagster_home: Path, tmp_path: Path) -> None:
    killed = _run(dagster_home, tmp_path / "a", hold=600)
    nxt = None
    try:
        step_pid = _wait_for(tmp_path / "a", killed)  # its step holds the only `fluidsynth` slot
        os.killpg(killed.pid, signal.SIGKILL)  # the whole run: CLI and step process
        killed.wait()
        psutil.wait_procs([p for p in [psutil.Process(step_pid)] if p.is_running()], timeout=30)

        nxt = _run(dagster_home, tmp_path / "b", hold=0)
        try:
            out = nxt.communicate(timeout=120)[0]
        except subprocess.TimeoutExpired:
            pytest.fail("the next run of the pooled step still waits on the killed run's slot")
        assert nxt.returncode == 0, out[-4000:]
        assert (tmp_path / "b").is_file()
        assert "held the 'fluidsynth' pool slot but its processes are gone" in out  # said at WARNING
    finally:
        _stop(killed, *([nxt] if nxt else []))
    with dg.DagsterInstance.get() as instance:
        statuses = sorted(r.status.value for r in instance.get_runs())
    assert statuses == ["FAILURE", "SUCCESS"]  # the killed run is marked failed


def test_a_step_waiting_on_a_live_run_says_which_run_and_how_to_clear_it(dagster_home: Path, tmp_path: Path) -> None:
    holder = _run(dagster_home, tmp_path / "a", hold=300)
    waiting = None
    lines: list[str] = []
    try:
        _wait_for(tmp_path / "a", holder)
        waiting = _run(dagster_home, tmp_path / "b", hold=0)
        reader = threading.Thread(target=lambda: lines.extend(waiting.stdout), daemon=True)
        reader.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("wait for pool 'fluidsynth'" in line for line in lines):
            time.sleep(0.2)
        with dg.DagsterInstance.get() as instance:
            first = instance.get_runs()[-1].run_id  # newest first: the holder is the oldest
    finally:
        _stop(holder, *([waiting] if waiting else []))
    said = [line for line in lines if "wait for pool 'fluidsynth'" in line]
    assert said, "".join(lines)[-3000:]
    assert " - WARNING - " in said[0]
    assert f"held by run {first}" in said[0]
    assert "dagster instance concurrency set fluidsynth" in said[0]  # how to clear it
    assert not (tmp_path / "b").exists()  # it did wait: one slot, held by a live run
