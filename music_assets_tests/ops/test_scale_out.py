"""The cluster configs load, validate, and select the executor they name."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config

from music_assets.paths import REPO_ROOT

SHARED_MARK = "# --- shared by every instance variant below this line ---"


def _resolve_executor(kind: str) -> dict:
    code = (
        "import json; from music_assets.definitions import defs; e = defs.executor;print(json.dumps({'name': e.name}))"
    )
    env = {**os.environ, "MUSIC_ASSETS_EXECUTOR": kind}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=REPO_ROOT
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_k8s_instance_config_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
        monkeypatch.setenv(var, "x")
    config, _ = dagster_instance_config(str(REPO_ROOT / "deploy" / "k8s"), config_filename="dagster.yaml")
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    from dagster_k8s import K8sRunLauncher

    processed = process_config(K8sRunLauncher.config_type(), launcher["config"])
    assert processed.success, processed.errors
    mounts = processed.value["volume_mounts"]
    assert mounts[0]["mountPath"] == "/mnt/music-assets-data"
    assert "MUSIC_ASSETS_DATA_DIR=/mnt/music-assets-data" in processed.value["env_vars"]


@pytest.mark.parametrize(
    "kind, run_config", [("k8s", "deploy/k8s/run_config.yaml"), ("celery", "deploy/celery/run_config.yaml")]
)
def test_executor_is_selected_and_its_run_config_validates(kind: str, run_config: str, monkeypatch) -> None:
    assert _resolve_executor(kind)["name"] == kind
    from music_assets.executors import EXECUTOR_ENV, selected_executor

    monkeypatch.setenv(EXECUTOR_ENV, kind)
    monkeypatch.setenv("MUSIC_ASSETS_CELERY_BROKER", "redis://localhost:6379/0")
    executor = selected_executor()
    execution = yaml.safe_load((REPO_ROOT / run_config).read_text())["execution"]["config"]
    processed = process_config(executor.config_schema.config_type, execution)
    assert processed.success, processed.errors


def test_default_executor_uses_every_core() -> None:
    assert _resolve_executor("multiprocess")["name"] == "multiprocess"
    from music_assets.executors import selected_executor

    assert selected_executor().name == "multiprocess"


def test_unknown_executor_is_a_clear_error(monkeypatch) -> None:
    from music_assets.executors import selected_executor

    monkeypatch.setenv("MUSIC_ASSETS_EXECUTOR", "spark")
    with pytest.raises(ValueError, match="MUSIC_ASSETS_EXECUTOR='spark'"):
        selected_executor()


def test_instance_variants_differ_only_in_storage() -> None:
    sqlite = (REPO_ROOT / "dagster.yaml").read_text().split(SHARED_MARK)
    postgres = (REPO_ROOT / "dagster.postgres.yaml").read_text().split(SHARED_MARK)
    assert len(sqlite) == len(postgres) == 2
    assert sqlite[1] == postgres[1]
    assert "postgres_url" in postgres[0]
    assert "storage" not in (yaml.safe_load(sqlite[0]) or {})  # SQLite: Dagster's default storage
