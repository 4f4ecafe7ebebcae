"""The instance on PostgreSQL: one environment switch, real server, real CLI run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from music_assets.audio.signals import music_like, write
from music_assets.local_postgres import postgres_server
from music_assets.paths import REPO_ROOT


@pytest.fixture
def postgres_url():
    with postgres_server() as url:
        yield url


def test_materialize_on_postgres_and_read_events_back(
    tmp_path: Path, data_dir: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MUSIC_ASSETS_INSTANCE", "postgres")
    monkeypatch.setenv("MUSIC_ASSETS_POSTGRES_URL", postgres_url)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    from music_assets.ops.instance import ensure_dagster_home

    home = ensure_dagster_home()
    assert (home / "dagster.yaml").resolve() == REPO_ROOT / "dagster.postgres.yaml"

    music = tmp_path / "music"
    write(music / "a.flac", music_like(1.0, seed=3))
    config = {"ops": {"audio_catalog": {"config": {"roots": [str(music)]}}}}
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("dagster")),
            "asset",
            "materialize",
            "-m",
            "music_assets.definitions",
            "--select",
            "audio_catalog",
            "--config-json",
            json.dumps(config),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # Nothing went to SQLite: the run, its events and its checks are in PostgreSQL.
    assert not list(home.glob("**/*.db"))
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        mat = instance.get_latest_materialization_event(dg.AssetKey("audio_catalog"))
        assert mat is not None and mat.run_id == run.run_id
        assert mat.asset_materialization.metadata["files"].value == 1
        checks = {
            name: instance.event_log_storage.get_latest_asset_check_execution_by_key(
                [dg.AssetCheckKey(dg.AssetKey("audio_catalog"), name)]
            )
            for name in ("unique_source_id", "error_ratio")
        }
        for name, by_key in checks.items():
            (execution,) = by_key.values()
            assert execution.run_id == run.run_id
            assert execution.status.value == "SUCCEEDED", name


def _claim_at_once(home: str, url: str, pool: str, run_id: str, barrier, results) -> None:
    """One run's first claim on a pool, the way Dagster's executor makes it."""
    os.environ.update(DAGSTER_HOME=home, MUSIC_ASSETS_INSTANCE="postgres", MUSIC_ASSETS_POSTGRES_URL=url)
    try:
        with dg.DagsterInstance.get() as instance:
            storage = instance.event_log_storage
            barrier.wait(60)
            if storage.get_pool_config().default_pool_limit and not any(
                p.name == pool for p in storage.get_pool_limits()
            ):
                storage.initialize_concurrency_limit_to_default(pool)
            barrier.wait(60)
            status = storage.claim_concurrency_slot(pool, run_id, "rudiment_audio")
            results.put((run_id, status.is_claimed))
    except Exception as exc:  # noqa: BLE001 - reported to the test
        results.put((run_id, repr(exc)))


def test_runs_side_by_side_never_share_a_pool_slot(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four runs make the first claim on a new pool (default limit 1) at the same moment, ten
    times: each time exactly one gets the slot, nobody fails. (dagster-postgres's own claim let two
    runs take the same slot: two renders at once on a Celery cluster.)"""
    import multiprocessing

    monkeypatch.setenv("MUSIC_ASSETS_INSTANCE", "postgres")
    monkeypatch.setenv("MUSIC_ASSETS_POSTGRES_URL", postgres_url)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    from music_assets.ops.instance import ensure_dagster_home
    from music_assets.ops.postgres_storage import PoolSafePostgresEventLogStorage

    home = str(ensure_dagster_home())
    with dg.DagsterInstance.get() as instance:  # the schema first: the runs race for the pool, not for tables
        assert isinstance(instance.event_log_storage, PoolSafePostgresEventLogStorage)
    ctx = multiprocessing.get_context("spawn")
    for round_ in range(10):
        pool = f"fluidsynth-{round_}"  # a pool no run has named yet
        barrier, results = ctx.Barrier(4), ctx.Queue()
        procs = [
            ctx.Process(target=_claim_at_once, args=(home, postgres_url, pool, f"run-{round_}-{i}", barrier, results))
            for i in range(4)
        ]
        for p in procs:
            p.start()
        outcomes = dict(results.get(timeout=120) for _ in procs)
        for p in procs:
            p.join(30)
        assert all(isinstance(v, bool) for v in outcomes.values()), outcomes
        assert sum(outcomes.values()) == 1, outcomes
        with dg.DagsterInstance.get() as instance:
            assert isinstance(instance.event_log_storage, PoolSafePostgresEventLogStorage)
            info = instance.event_log_storage.get_concurrency_info(pool)
            assert info.slot_count == 1
            (holder,) = [s.run_id for s in info.claimed_slots]
            assert outcomes[holder] is True
