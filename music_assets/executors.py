"""Which executor runs the steps of a run, chosen by `MUSIC_ASSETS_EXECUTOR`.

- `multiprocess` (default): one machine, one step process per core.
- `k8s`: dagster-k8s `k8s_job_executor`, every step in its own Kubernetes Job.
- `celery`: dagster-celery `celery_executor`, steps on Celery workers.

The distributed executors need every worker to see the same data dir: mount
one shared volume (ReadWriteMany) at the same `MUSIC_ASSETS_DATA_DIR` in the
code-server, run and step pods (deploy/k8s/values.yaml does this). The
executor's own settings (namespace, resources, broker) come from run config
(deploy/k8s/run_config.yaml, deploy/celery/run_config.yaml).
"""

from __future__ import annotations

import os

import dagster as dg

EXECUTOR_ENV = "MUSIC_ASSETS_EXECUTOR"


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
        from dagster_celery import celery_executor  # noqa: PLC0415

        return celery_executor
    raise ValueError(f"{EXECUTOR_ENV}={kind!r}: expected multiprocess, k8s or celery")
