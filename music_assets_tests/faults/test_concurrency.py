"""Issue 22, item 8: concurrent runs of one partition, and of a fresh instance, do not clobber each other.

Before: a second run of the same partition swept the first run's temporary files as leftovers of a
killed writer (the first then failed with `writer produced no file for .../exercises.parquet`), and
two processes creating a fresh SQLite instance at once hit `table alembic_version already exists`.
Now a partition being written is locked (the second run fails at once with "partition flam of
rudiment_performances is being written by run ..."), temporary names carry their writer (host, pid,
run) and only a dead writer's are swept, and the instance's storage is created under a file lock.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import dagster as dg

from music_assets_tests.faults.conftest import (
    data_dir_env,
    digest_tree,
    failure_text,
    materialize,
    partials,
    python,
    subprocess_env,
)

BIG = {"resources": {"rudiment_dataset": {"config": {"num_profiles": 250}}}}  # a partition that takes a while
WRITE = """
import json, os, sys
import dagster as dg
from music_assets_tests.faults.conftest import materialize
with dg.DagsterInstance.ephemeral() as instance:
    result = materialize("rudiment_performances", instance, json.loads(os.environ["FAULTS_CONFIG"]), "flam")
sys.exit(0 if result.success else 1)
"""


def _profiles(data: Path) -> None:
    with data_dir_env(data), dg.DagsterInstance.ephemeral() as instance:
        assert materialize(["rudiment_library", "player_profiles"], instance, BIG).success


def test_a_second_run_of_a_partition_being_written_fails_naming_the_run_and_leaves_it_alone(tmp_path: Path) -> None:
    reference, data = tmp_path / "reference" / "data", tmp_path / "shared" / "data"
    for d in (reference, data):
        d.mkdir(parents=True)
        _profiles(d)
    with data_dir_env(reference), dg.DagsterInstance.ephemeral() as instance:
        assert materialize("rudiment_performances", instance, BIG, "flam").success

    folder = data / "rudiments" / "performances" / "flam"
    first = python(WRITE, subprocess_env(MUSIC_ASSETS_DATA_DIR=str(data), FAULTS_CONFIG=json.dumps(BIG)))
    try:
        deadline = time.monotonic() + 120
        while not (folder.is_dir() and partials(folder)):  # the first run is writing the partition's tables
            assert first.poll() is None and time.monotonic() < deadline, "the first run never started writing"
            time.sleep(0.002)
        os.kill(first.pid, signal.SIGSTOP)  # hold it there, mid-write
        theirs = partials(folder)

        with data_dir_env(data), dg.DagsterInstance.ephemeral() as instance:
            second = materialize("rudiment_performances", instance, BIG, "flam")
        assert not second.success
        holder = json.loads((data / ".locks" / "rudiment_performances" / "flam.lock").read_text())
        text = failure_text(second)
        assert f"partition flam of rudiment_performances is being written by run {holder['run_id']}" in text, text
        assert all(p.exists() for p in theirs)  # the first run's temporary files are left alone
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert first.wait(timeout=300) == 0  # the first run finishes as if alone
    for sub in ("performances/flam", "midi/flam"):
        assert digest_tree(data / "rudiments" / sub) == digest_tree(reference / "rudiments" / sub), sub
    assert partials(data) == []


RACE = """
import os, sys, time
from pathlib import Path
import dagster as dg
from music_assets.ops.instance import ensure_dagster_home
base, n, rounds = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for r in range(rounds):  # a fresh instance each round, opened by every process at once
    barrier = base / f"barrier-{r}"
    barrier.mkdir(exist_ok=True)
    (barrier / str(os.getpid())).touch()
    while len(list(barrier.iterdir())) < n:
        time.sleep(0.001)
    os.environ["DAGSTER_HOME"] = str(base / f"home-{r}")
    if r == 0:  # the project's own preparation, from every process at once
        ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:  # then what any Dagster process does: open it
        instance.get_runs(limit=1)
print("ok")
"""


def test_processes_opening_a_fresh_instance_at_once_all_succeed(tmp_path: Path) -> None:
    import subprocess
    import sys

    from music_assets.paths import REPO_ROOT

    n, rounds = 4, 3
    for r in range(
        1, rounds
    ):  # what `python -m music_assets.ops.instance` used to leave: the config linked, no storage
        (tmp_path / f"home-{r}").mkdir()
        (tmp_path / f"home-{r}" / "dagster.yaml").symlink_to(REPO_ROOT / "dagster.yaml")
    cmd = [sys.executable, "-c", RACE, str(tmp_path), str(n), str(rounds)]
    procs = [
        subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(n)
    ]
    try:
        outs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    failed = [o[-600:] for p, o in zip(procs, outs, strict=True) if p.returncode != 0]
    assert failed == []
    for r in range(rounds):
        with dg.DagsterInstance.from_config(str(tmp_path / f"home-{r}")) as instance:
            assert instance.get_runs() == []  # and each instance works afterwards
