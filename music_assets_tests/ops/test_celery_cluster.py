"""A real Celery cluster: Redis broker, two dagster-celery workers, PostgreSQL instance, real CLI.

Eight rudiment partitions are regenerated with MUSIC_ASSETS_EXECUTOR=celery and the
chunked backfill policy (4 partitions per run: two runs, launched side by side the way
the nightly schedule requests them), and compared byte for byte with the same
partitions made by the default executor and single-run policy on one machine. Then a
worker is SIGKILLed while it renders; the killed run is reaped and the same command
re-run on the surviving worker gives the same files and leaves no partial file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.events import DagsterEventType

from music_assets.defs.rudiments.assets import RudimentDataset, player_profiles, rudiment_library
from music_assets.io import PARTIAL_SUFFIX
from music_assets.local_postgres import postgres_server
from music_assets.ops.instance import ensure_dagster_home, reap_dead_runs
from music_assets.paths import REPO_ROOT
from music_assets.rudiments.constants import RUDIMENT_SLUGS
from music_assets_tests.ops.processes import BIN, background
from music_assets_tests.ops.redis_server import redis_server

pytestmark = pytest.mark.slow

SLUGS = list(RUDIMENT_SLUGS[:8])
PER_RUN = 4
WORKER = REPO_ROOT / "deploy" / "celery" / "worker.sh"
# Test scale: 8 players per rudiment; render in the step process (one core each).
DATASET = {"rudiment_dataset": {"config": {"num_profiles": 8}}}
AUDIO = {"rudiment_audio": {"config": {"workers": 1}}}
DAGSTER = str(BIN / "dagster")
MATERIALIZE = [DAGSTER, "asset", "materialize", "-m", "music_assets.definitions"]


def _run(cmd: list[str], env: dict[str, str], log: Path, timeout: float = 180) -> None:
    with open(log, "ab") as fh:
        rc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout)
    assert rc.returncode == 0, f"{' '.join(cmd[1:5])} exited {rc.returncode}:\n{log.read_text()[-4000:]}"


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _wait_until(predicate, timeout: float, what: str, logs: list[Path]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in logs if p.exists())
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


def _workers_of_run(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """step key -> the Celery worker that ran it, from the worker's own engine event."""
    out = {}
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT).records:
        event = record.event_log_entry.dagster_event
        meta = event.engine_event_data.metadata if event is not None else {}
        if "Celery worker" in meta:
            out[event.step_key] = meta["Celery worker"].value
    return out


def _step_span(instance: dg.DagsterInstance, run_id: str, step_key: str) -> tuple[float, float]:
    times = {}
    for kind in (DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS):
        records = instance.get_records_for_run(run_id, of_type=kind).records
        (times[kind],) = [r.event_log_entry.timestamp for r in records if r.event_log_entry.step_key == step_key]
    return times[DagsterEventType.STEP_START], times[DagsterEventType.STEP_SUCCESS]


def _check_evaluations(instance: dg.DagsterInstance, run_id: str) -> list:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
    return [r.event_log_entry.dagster_event.event_specific_data for r in records]


def test_two_celery_workers_regenerate_rudiments_like_one_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.monotonic()
    cluster_data, ref_data = tmp_path / "cluster_data", tmp_path / "ref_data"
    cluster_data.mkdir()
    ref_data.mkdir()
    scale = tmp_path / "scale.yaml"
    scale.write_text(yaml.safe_dump({"resources": DATASET, "ops": AUDIO}))

    # The reference: one machine, default executor and single-run policy, SQLite, its own data dir.
    ref_env = {k: v for k, v in os.environ.items() if not k.startswith("MUSIC_ASSETS_")}
    ref_env.update(
        MUSIC_ASSETS_DATA_DIR=str(ref_data),
        DAGSTER_HOME=str(tmp_path / "ref_home"),
        PYTHONPATH=str(REPO_ROOT),
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
    )
    # The inputs of both (library, players) are made once here and copied: they do not depend on the executor.
    monkeypatch.setenv("MUSIC_ASSETS_DATA_DIR", str(ref_data))
    prereqs = dg.materialize(
        [rudiment_library, player_profiles],
        resources={"rudiment_dataset": RudimentDataset(**DATASET["rudiment_dataset"]["config"])},
    )
    assert prereqs.success
    shutil.copytree(ref_data / "rudiments", cluster_data / "rudiments")
    ref_log = tmp_path / "reference.log"
    reference = [
        [str(BIN / "python"), "-m", "music_assets.ops.instance"],
        [*MATERIALIZE, "--select", "rudiment_performances,rudiment_audio"]
        + ["--partition-range", f"{SLUGS[0]}...{SLUGS[-1]}", "-c", str(scale)],
    ]

    with contextlib.ExitStack() as stack:
        ref_cmd = ["bash", "-c", " && ".join(map(shlex.join, reference))]
        ref_proc = stack.enter_context(background(ref_cmd, ref_log, env=ref_env))
        pg_url = stack.enter_context(postgres_server())
        broker = stack.enter_context(redis_server())
        for key, value in {
            "MUSIC_ASSETS_INSTANCE": "postgres",
            "MUSIC_ASSETS_POSTGRES_URL": pg_url,
            "MUSIC_ASSETS_DATA_DIR": str(cluster_data),
            "DAGSTER_HOME": str(tmp_path / "home"),
            "MUSIC_ASSETS_CELERY_BROKER": broker,
            "MUSIC_ASSETS_EXECUTOR": "celery",
            "MUSIC_ASSETS_BACKFILL_PARTITIONS_PER_RUN": str(PER_RUN),
            "PYTHONPATH": str(REPO_ROOT),
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        }.items():
            monkeypatch.setenv(key, value)
        ensure_dagster_home()
        env = os.environ.copy()
        with dg.DagsterInstance.get() as instance:  # create the schema before the workers race for it
            assert instance.get_runs() == []

        # Two workers, each in its own working dir, sharing the data dir and the instance.
        workers: dict[str, subprocess.Popen] = {}
        logs: dict[str, Path] = {}
        for name in ("cel-a", "cel-b"):
            cwd = tmp_path / f"worker-{name}"
            cwd.mkdir()
            logs[name] = cwd / "worker.log"
            workers[name] = stack.enter_context(background([str(WORKER), name], logs[name], env=env, cwd=cwd))
        for name in workers:
            _wait_until(lambda n=name: b" ready." in logs[n].read_bytes(), 120, f"worker {name}", list(logs.values()))

        def worker_named(hostname: str) -> str:
            return hostname.split("@", 1)[0]

        # The chunks the deployment's policy asks for: two runs of four partitions, side by side.
        from music_assets.defs.partitions import partition_chunks

        chunks = partition_chunks(SLUGS)
        assert chunks == [SLUGS[:4], SLUGS[4:]]
        procs = []
        for i, chunk in enumerate(chunks):
            tags = {"dagster/asset_partition_range_start": chunk[0], "dagster/asset_partition_range_end": chunk[-1]}
            cmd = [DAGSTER, "job", "execute", "-m", "music_assets.definitions", "-j", "regenerate_rudiment_dataset"]
            cmd += ["-c", str(scale), "--tags", json.dumps(tags)]
            log = tmp_path / f"chunk-{i}.log"
            procs.append((stack.enter_context(background(cmd, log, env=env)), log))
        for proc, log in procs:
            assert proc.wait(240) == 0, log.read_text()[-4000:]

        with dg.DagsterInstance.get() as instance:
            runs = instance.get_runs(filters=dg.RunsFilter(job_name="regenerate_rudiment_dataset"))
            assert len(runs) == 2 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
            ran_on = {}
            for run in runs:
                for step, host in _workers_of_run(instance, run.run_id).items():
                    ran_on[(run.run_id, step)] = worker_named(host)
            assert len(ran_on) == 4, ran_on  # two steps in each of the two runs, each on a worker
            assert set(ran_on.values()) == {"cel-a", "cel-b"}, ran_on
            evaluations = [e for run in runs for e in _check_evaluations(instance, run.run_id)]
            per_partition = {(e.check_name, e.partition) for e in evaluations if e.partition is not None}
            gates = {
                "performances_valid",
                "audio_duration_matches_midi",
                "audio_not_clipped",
                "audio_not_silent",
                "audio_aligned_with_labels",
            }
            assert {(g, s) for g in gates for s in SLUGS} <= per_partition
            failed = [(e.check_name, e.partition, e.description) for e in evaluations if e.blocking and not e.passed]
            assert not failed, failed
            # The fluidsynth pool (limit 1) holds across runs and workers: the two renders never overlapped.
            renders = sorted(_step_span(instance, run.run_id, "rudiment_audio") for run in runs)
            assert renders[0][1] <= renders[1][0], renders

        assert ref_proc.wait(240) == 0, ref_log.read_text()[-4000:]
        reference_files = _tree(ref_data / "rudiments")
        assert sum(p.endswith(".flac") for p in reference_files) >= 8 * 8
        assert _tree(cluster_data / "rudiments") == reference_files

        # SIGKILL the worker that renders, part-way through; reap the stuck run, re-run the same command.
        victim_slug = SLUGS[2]
        rerun = [*MATERIALIZE, "--select", "rudiment_audio", "--partition", victim_slug]
        rerun += ["-c", str(scale)]
        killed_log = tmp_path / "killed.log"
        with background(rerun, killed_log, env=env) as cli:
            with dg.DagsterInstance.get() as instance:

                def rendering_worker():
                    # The newest run is the re-run; a worker has taken its rendering step (the
                    # worker's own engine event, logged as the step begins there).
                    (run,) = instance.get_runs(limit=1) or (None,)
                    if run is None or run.job_name != "__ASSET_JOB" or run.tags.get("dagster/partition") != victim_slug:
                        return None
                    hosts = _workers_of_run(instance, run.run_id)
                    if hosts:
                        return run.run_id, worker_named(next(iter(hosts.values())))
                    return None

                killed_run, victim = _wait_until(rendering_worker, 120, "the rendering step", [killed_log])
            assert cli.poll() is None, f"the step finished before the kill:\n{killed_log.read_text()[-3000:]}"
            os.killpg(workers[victim].pid, signal.SIGKILL)
            workers[victim].wait(10)
            left_behind = len(list(cluster_data.rglob(f"*{PARTIAL_SUFFIX}*")))
            # The run waits for a step whose worker is gone: stop it the way a killed
            # `dagster asset materialize` ends, then reap it (frees its fluidsynth slot).
            os.killpg(cli.pid, signal.SIGKILL)
            cli.wait(10)
        with dg.DagsterInstance.get() as instance:  # what `python -m music_assets.ops.instance --reap` does
            done = instance.get_records_for_run(killed_run, of_type=DagsterEventType.STEP_SUCCESS).records
            assert not done, "the rendering step finished before its worker was killed"
            assert reap_dead_runs(instance) == [killed_run]
        again_log = tmp_path / "again.log"
        _run(rerun, env, again_log)
        survivor = ({"cel-a", "cel-b"} - {victim}).pop()
        with dg.DagsterInstance.get() as instance:
            assert instance.get_run_by_id(killed_run).status == dg.DagsterRunStatus.FAILURE
            (last,) = instance.get_runs(limit=1)
            assert last.status == dg.DagsterRunStatus.SUCCESS
            assert {worker_named(h) for h in _workers_of_run(instance, last.run_id).values()} == {survivor}
            evaluations = _check_evaluations(instance, last.run_id)
            assert len(evaluations) == 4 and all(e.passed for e in evaluations), evaluations
        assert _tree(cluster_data / "rudiments") == reference_files
        assert not list(cluster_data.rglob(f"*{PARTIAL_SUFFIX}*"))
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, cpu_s = time.monotonic() - started, cpu.ru_utime + cpu.ru_stime
    print(f"celery cluster test: {wall:.1f} s wall, {cpu_s:.1f} s CPU in child processes;", end=" ")
    print(f"{left_behind} partial files right after the SIGKILL, none after the re-run")
