"""Which executor runs the steps of a run, chosen by `MUSIC_ASSETS_EXECUTOR`.

- `multiprocess` (default): one machine, one step process per core.
- `k8s`: dagster-k8s `k8s_job_executor`, every step in its own Kubernetes Job.
- `celery`: dagster-celery `celery_executor`, steps on Celery workers.

The distributed executors need every worker to see the same data dir: mount
one shared volume (ReadWriteMany) at the same `MUSIC_ASSETS_DATA_DIR` in the
code-server, run and step pods (deploy/k8s/values.yaml does this). The k8s
executor's settings (namespace, resources) come from run config
(deploy/k8s/run_config.yaml); the Celery executor is configured from
deploy/celery/executor.yaml, the file its workers read, so every run (CLI,
UI, schedule, backfill) reaches the broker without run config.
"""

from __future__ import annotations

import os

import dagster as dg

from music_assets.paths import REPO_ROOT

EXECUTOR_ENV = "MUSIC_ASSETS_EXECUTOR"
CELERY_SETTINGS = REPO_ROOT / "deploy" / "celery" / "executor.yaml"


def selected_executor() -> dg.ExecutorDefinition:
    kind = os.environ.get(EXECUTOR_ENV, "multiprocess").strip().lower() or "multiprocess"
    if kind == "multiprocess":
        # One step process per core: heavy steps parallelize internally and cap
        # their BLAS threads, so more processes than cores only oversubscribes.
        return dg.multiprocess_executor.configured({"max_concurrent": max(1, os.cpu_count() or 1)})
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor  # noqa: PLC0415

        return k8s_job_executor
    if kind == "celery":
        import yaml  # noqa: PLC0415
        from dagster_celery import celery_executor  # noqa: PLC0415

        settings = yaml.safe_load(CELERY_SETTINGS.read_text())["execution"]["config"]
        return celery_executor.configured(settings, name="celery")
    raise ValueError(f"{EXECUTOR_ENV}={kind!r}: expected multiprocess, k8s or celery")
