"""Partition definitions shared by several asset groups (one object each), and the
backfill policy every heavy partitioned asset uses."""

from __future__ import annotations

import os
from collections.abc import Sequence

import dagster as dg

from music_assets.rudiments.constants import RUDIMENT_SLUGS, SKILL_TIERS

PRECISIONS: tuple[str, ...] = ("fp16", "int8", "int4")
EVAL_PRECISIONS: tuple[str, ...] = ("fp32", *PRECISIONS)  # model_evaluation: the fp32 export and its variants

rudiment_partitions = dg.StaticPartitionsDefinition(list(RUDIMENT_SLUGS))
tier_partitions = dg.StaticPartitionsDefinition(list(SKILL_TIERS))
quantized_partitions = dg.MultiPartitionsDefinition(
    {"tier": tier_partitions, "precision": dg.StaticPartitionsDefinition(list(PRECISIONS))}
)
evaluation_partitions = dg.MultiPartitionsDefinition(
    {"tier": tier_partitions, "precision": dg.StaticPartitionsDefinition(list(EVAL_PRECISIONS))}
)
# One partition per selected source id; kept in sync by selected_sources and the raw-audio sensor.
prepared_source_partitions = dg.DynamicPartitionsDefinition(name="prepared_sources")

PARTITIONS_PER_RUN_ENV = "MUSIC_ASSETS_BACKFILL_PARTITIONS_PER_RUN"
# The default cap of the assets partitioned by source (a music folder: thousands of partitions).
# Creating a run writes, per partition and check, a planned event that holds the run's whole
# partition subset: on SQLite a 3,000-partition run took 71-81 s to create and added 739 MB to
# index.db (quadratic in the partitions per run); runs of 100 cost about 3 s each to create.
SOURCE_PARTITIONS_PER_RUN = 100


def partitions_per_run(default: int | None = None) -> int | None:
    """`MUSIC_ASSETS_BACKFILL_PARTITIONS_PER_RUN`: a positive int, None for `all`, `default` when unset."""
    raw = os.environ.get(PARTITIONS_PER_RUN_ENV, "").strip().lower()
    if raw == "":
        return default
    if raw == "all":
        return None
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{PARTITIONS_PER_RUN_ENV}={raw!r}: expected a positive number of partitions, or 'all'")
    return n


def backfill_policy(default_per_run: int | None = None) -> dg.BackfillPolicy:
    """How a backfill of many partitions becomes runs, chosen by the deployment.

    One machine (default): `single_run()`, every partition of a backfill in one run, one step
    per asset that loops over the partitions (the step parallelizes internally); the assets
    partitioned by source pass `default_per_run=SOURCE_PARTITIONS_PER_RUN` and get
    `multi_run(100)`, since one run over a whole music folder is slow to create. A cluster sets
    `MUSIC_ASSETS_BACKFILL_PARTITIONS_PER_RUN=N`: `multi_run(N)` for every asset, so a 40-partition
    backfill is ceil(40 / N) runs whose steps land on different workers or pods; `all` gives
    `single_run()` everywhere. Read when the definitions load, so the code server, run workers
    and step workers must all see the same value.
    """
    n = partitions_per_run(default_per_run)
    return dg.BackfillPolicy.single_run() if n is None else dg.BackfillPolicy.multi_run(max_partitions_per_run=n)


def partition_chunks(keys: Sequence[str]) -> list[list[str]]:
    """`keys` (in partition order) split into the runs the backfill policy asks for."""
    n = partitions_per_run() or max(1, len(keys))
    return [list(keys[i : i + n]) for i in range(0, len(keys), n)]
