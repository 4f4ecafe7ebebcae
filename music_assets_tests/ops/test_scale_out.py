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


def test_k8s_executor_is_selected_and_its_run_config_validates(monkeypatch) -> None:
    assert _resolve_executor("k8s")["name"] == "k8s"
    from music_assets.ops.executors import EXECUTOR_ENV, selected_executor

    monkeypatch.setenv(EXECUTOR_ENV, "k8s")
    executor = selected_executor()
    execution = yaml.safe_load((REPO_ROOT / "deploy/k8s/run_config.yaml").read_text())["execution"]["config"]
    processed = process_config(executor.config_schema.config_type, execution)
    assert processed.success, processed.errors
    assert "MUSIC_ASSETS_BACKFILL_PARTITIONS_PER_RUN=5" in processed.value["env_vars"]


def test_celery_executor_is_configured_from_the_file_its_workers_read(monkeypatch) -> None:
    assert _resolve_executor("celery")["name"] == "celery"
    from dagster_celery import celery_executor
    from dagster_celery.cli import get_validated_config

    from music_assets.ops.executors import CELERY_SETTINGS, EXECUTOR_ENV, selected_executor

    monkeypatch.setenv(EXECUTOR_ENV, "celery")
    monkeypatch.setenv("MUSIC_ASSETS_CELERY_BROKER", "redis://127.0.0.1:6379/0")
    settings = yaml.safe_load(CELERY_SETTINGS.read_text())["execution"]["config"]
    resolved = selected_executor().config_schema.resolve_config({}).value["config"]
    assert resolved == process_config(celery_executor.config_schema.config_type, settings).value
    assert resolved["broker"] == "redis://127.0.0.1:6379/0"
    worker = get_validated_config(str(CELERY_SETTINGS))  # what `dagster-celery worker start -y` reads
    assert worker["broker"] == "redis://127.0.0.1:6379/0" and worker["backend"] == "rpc://"
    script = (REPO_ROOT / "deploy/celery/worker.sh").read_text()
    assert '-y "$here/executor.yaml"' in script and "--pool solo" in script


def _backfill_policies(per_run: str | None) -> dict[str, str]:
    code = (
        "import json; from music_assets.definitions import defs; g = defs.resolve_asset_graph();"
        "print(json.dumps({k.to_user_string(): str(g.get(k).backfill_policy) for k in g.materializable_asset_keys"
        " if g.get(k).partitions_def is not None}))"
    )
    env = {k: v for k, v in os.environ.items() if k != "MUSIC_ASSETS_BACKFILL_PARTITIONS_PER_RUN"}
    if per_run is not None:
        env["MUSIC_ASSETS_BACKFILL_PARTITIONS_PER_RUN"] = per_run
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False, cwd=REPO_ROOT
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


BY_SOURCE = {  # a music folder's worth of partitions: chunked by default
    "prepared_sources",
    "texture_beds",
    "track_annotations",
    "track_captions",
}
HEAVY_PARTITIONED = {
    *BY_SOURCE,
    "rudiment_performances",
    "rudiment_audio",
    "lora_adapters",
    "onnx_models",
    "quantized_models",
    "model_evaluation",
}


def test_backfill_policy_is_single_run_unless_the_deployment_chunks_it() -> None:
    one_machine = _backfill_policies(None)
    assert set(one_machine) == HEAVY_PARTITIONED
    assert {k: v for k, v in one_machine.items() if k not in BY_SOURCE} == dict.fromkeys(
        HEAVY_PARTITIONED - BY_SOURCE, "BackfillPolicy.single_run()"
    )
    assert {one_machine[k] for k in BY_SOURCE} == {"BackfillPolicy.multi_run(max_partitions_per_run=100)"}
    assert set(_backfill_policies("all").values()) == {"BackfillPolicy.single_run()"}
    cluster = _backfill_policies("5")
    assert set(cluster) == HEAVY_PARTITIONED
    assert set(cluster.values()) == {"BackfillPolicy.multi_run(max_partitions_per_run=5)"}
    with pytest.raises(RuntimeError, match="MUSIC_ASSETS_BACKFILL_PARTITIONS_PER_RUN='0'"):
        _backfill_policies("0")


def test_partition_chunks_follow_the_policy(monkeypatch) -> None:
    from music_assets.defs.partitions import backfill_policy, partition_chunks

    keys = [f"k{i}" for i in range(10)]
    monkeypatch.delenv("MUSIC_ASSETS_BACKFILL_PARTITIONS_PER_RUN", raising=False)
    assert partition_chunks(keys) == [keys]
    assert backfill_policy(default_per_run=3).max_partitions_per_run == 3
    monkeypatch.setenv("MUSIC_ASSETS_BACKFILL_PARTITIONS_PER_RUN", "all")
    assert backfill_policy().max_partitions_per_run is None
    assert backfill_policy(default_per_run=3).max_partitions_per_run is None
    monkeypatch.setenv("MUSIC_ASSETS_BACKFILL_PARTITIONS_PER_RUN", "4")
    assert partition_chunks(keys) == [keys[:4], keys[4:8], keys[8:]]
    monkeypatch.setenv("MUSIC_ASSETS_BACKFILL_PARTITIONS_PER_RUN", "many")
    with pytest.raises(ValueError, match="expected a positive number"):
        backfill_policy()


def test_cluster_deployments_set_the_chunked_policy() -> None:
    values = yaml.safe_load((REPO_ROOT / "deploy/k8s/values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["MUSIC_ASSETS_BACKFILL_PARTITIONS_PER_RUN"] == "5"
    instance = yaml.safe_load((REPO_ROOT / "deploy/k8s/dagster.yaml").read_text())
    assert "MUSIC_ASSETS_BACKFILL_PARTITIONS_PER_RUN=5" in instance["run_launcher"]["config"]["env_vars"]


def test_default_executor_uses_every_core() -> None:
    assert _resolve_executor("multiprocess")["name"] == "multiprocess"
    from music_assets.ops.executors import selected_executor

    assert selected_executor().name == "multiprocess"


def test_unknown_executor_is_a_clear_error(monkeypatch) -> None:
    from music_assets.ops.executors import selected_executor

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
