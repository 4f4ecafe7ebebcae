#!/usr/bin/env bash
# Start one dagster-celery worker for music_assets (README, "A cluster").
#
#   deploy/celery/worker.sh <name>      # e.g. deploy/celery/worker.sh render-1
#
# Needs, like the runs: MUSIC_ASSETS_CELERY_BROKER, MUSIC_ASSETS_DATA_DIR (the
# shared data dir), DAGSTER_HOME pointing at the cluster's instance
# (MUSIC_ASSETS_INSTANCE=postgres + MUSIC_ASSETS_POSTGRES_URL, set up with
# `python -m music_assets.ops.instance`), and the same
# MUSIC_ASSETS_BACKFILL_PARTITIONS_PER_RUN as the code server. The checkout's
# root must be importable (PYTHONPATH), whatever the worker's working dir.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name="${1:?usage: deploy/celery/worker.sh <worker name>}"

# The worker rebuilds each run's job from the definitions: it must pick the
# same executor as the run, or the run config's `execution` block is invalid.
export MUSIC_ASSETS_EXECUTOR=celery
# Heavy steps start their own process pools; keep BLAS from adding threads.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"

# --pool solo: the step runs in the worker process itself (one at a time), so
# a step may start its own processes (rendering does) and SIGKILL of the
# worker ends the step with it; run one worker per machine or per core set.
exec dagster-celery worker start -A dagster_celery.app -y "$here/executor.yaml" -n "$name" \
  -- --pool solo --concurrency 1 --without-gossip --without-mingle
