"""Which executor runs the steps of a run, chosen by `MUSIC_ASSETS_EXECUTOR`.

- `multiprocess` (default): one machine, one step process per core. It is
  Dagster's multiprocess executor plus a pool watch (`music_assets.ops.instance
  .PoolWatch`): at the start of a run it frees the concurrency-pool slots of
  runs whose processes are gone (a killed `dagster asset materialize`), and
  while a step waits on a pool it frees them as soon as their holder dies and
  logs, at WARNING, which run holds the slot and how to clear the wait
  (Dagster says it only at DEBUG). A killed run never leaves the next one
  waiting for ever.
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

import functools
import os

import dagster as dg
from dagster._core.definitions.executor_definition import MULTI_PROC_CONFIG, multiple_process_executor_requirements

from music_assets.cores import usable_cores
from music_assets.paths import REPO_ROOT

EXECUTOR_ENV = "MUSIC_ASSETS_EXECUTOR"
CELERY_SETTINGS = REPO_ROOT / "deploy" / "celery" / "executor.yaml"


def _pools(execution_plan) -> set[str]:
    from dagster._core.storage.tags import GLOBAL_CONCURRENCY_TAG  # noqa: PLC0415

    return {p for step in execution_plan.steps if (p := step.pool or step.tags.get(GLOBAL_CONCURRENCY_TAG))}


@functools.cache
def _watched_class() -> type:
    from dagster._core.executor.multiprocess import MultiprocessExecutor  # noqa: PLC0415

    class WatchedMultiprocessExecutor(MultiprocessExecutor):
        """Dagster's multiprocess executor with the pool watch around its run (module docstring)."""

        def execute(self, plan_context, execution_plan):  # noqa: ANN001, ANN202 - Dagster's signature
            from music_assets.ops.instance import PoolWatch, stamp_run  # noqa: PLC0415

            run_id = plan_context.dagster_run.run_id
            instance = plan_context.instance
            stamp_run(instance, run_id)
            watch = PoolWatch(instance, run_id, _pools(execution_plan), plan_context.log.warning)
            try:
                watch.check()  # before any step claims a slot: free those of dead runs now
            except Exception as exc:  # noqa: BLE001 - the watch only helps; it must never fail the run
                plan_context.log.warning(f"pool watch: {exc!r}")
            watch.start()
            try:
                yield from super().execute(plan_context, execution_plan)
            finally:
                watch.stop()

    return WatchedMultiprocessExecutor


@dg.executor(
    name="multiprocess", config_schema=MULTI_PROC_CONFIG, requirements=multiple_process_executor_requirements()
)
def watched_multiprocess_executor(init_context: dg.InitExecutorContext):
    """Dagster's multiprocess executor (same config) with the pool watch (module docstring)."""
    base = dg.multiprocess_executor.executor_creation_fn(init_context)
    cls = _watched_class()
    executor = cls.__new__(cls)
    executor.__dict__.update(base.__dict__)  # the same settings, parsed by Dagster's own constructor
    return executor


def selected_executor() -> dg.ExecutorDefinition:
    kind = os.environ.get(EXECUTOR_ENV, "multiprocess").strip().lower() or "multiprocess"
    if kind == "multiprocess":
        # One step process per core: heavy steps parallelize internally and cap
        # their BLAS threads, so more processes than cores only oversubscribes.
        return watched_multiprocess_executor.configured({"max_concurrent": usable_cores()})
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor  # noqa: PLC0415

        return k8s_job_executor
    if kind == "celery":
        import yaml  # noqa: PLC0415
        from dagster_celery import celery_executor  # noqa: PLC0415

        settings = yaml.safe_load(CELERY_SETTINGS.read_text())["execution"]["config"]
        return celery_executor.configured(settings, name="celery")
    raise ValueError(f"{EXECUTOR_ENV}={kind!r}: expected multiprocess, k8s or celery")
