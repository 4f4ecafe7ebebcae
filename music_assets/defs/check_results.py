"""Per-partition check results for assets that materialize many partitions in one run.

A run of one partition reports its checks through
`MaterializeResult(check_results=...)`. A single-run backfill over many
partitions records one materialization per partition from a single
`MaterializeResult`, whose `check_results` cannot say which partition a result
belongs to; so there every result is yielded as its own `AssetCheckEvaluation`
with its partition (pointing at that partition's new materialization), and each
check's output is then closed with an empty `Output`. The check specs must carry
the asset's `partitions_def`. This is the pattern `rudiment_audio` uses.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg


def partition_evaluation(
    context: dg.AssetExecutionContext, result: dg.AssetCheckResult, partition: str
) -> dg.AssetCheckEvaluation:
    """`result` as the evaluation of one partition, targeting that partition's latest materialization."""
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (  # noqa: PLC0415
        AssetCheckEvaluationTargetMaterializationData,
    )

    asset_key = context.asset_key
    key = dg.AssetCheckKey(asset_key, result.check_name)
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1
    ).records
    target = (
        AssetCheckEvaluationTargetMaterializationData(
            storage_id=records[0].storage_id, run_id=records[0].run_id, timestamp=records[0].timestamp
        )
        if records
        else None
    )
    return dg.AssetCheckEvaluation(
        asset_key=asset_key,
        check_name=result.check_name,
        passed=result.passed,
        metadata=result.metadata,
        severity=result.severity,
        description=result.description,
        target_materialization_data=target,
        blocking=context.assets_def.get_spec_for_check_key(key).blocking,
        partition=partition,
    )


def materialize_with_checks(
    context: dg.AssetExecutionContext,
    metadata: Mapping[str, Any],
    results: Mapping[str, Sequence[dg.AssetCheckResult]],
) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation | dg.Output]:
    """Yield the materialization and, per partition of the run, the selected checks' results."""
    selected = {k.name for k in context.selected_asset_check_keys}
    partitions = [str(p) for p in context.partition_keys]
    if len(partitions) == 1:
        yield dg.MaterializeResult(
            metadata=metadata, check_results=[r for r in results[partitions[0]] if r.check_name in selected]
        )
        return
    yield dg.MaterializeResult(metadata=metadata)
    for partition in partitions:
        for result in results[partition]:
            if result.check_name in selected:
                yield partition_evaluation(context, result, partition)
    for name in sorted(selected):
        key = dg.AssetCheckKey(context.asset_key, name)
        yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(key))
