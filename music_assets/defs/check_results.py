"""The one way the defs report checks: the domain's `CheckResult`s as Dagster check results.

- `asset_check_result`: one result as what an `@asset_check` function returns.
- `materialize_with_checks`: what an asset with `check_specs` yields, its materialization and its
  checks' results, given a list of results (an unpartitioned asset) or a mapping from partition
  key to the list of that partition's results (a partitioned one).

A run of one partition key reports its checks through `MaterializeResult(check_results=...)`. A
run of a partition range (a single-run backfill, of one partition or many) records one
materialization per partition from a single `MaterializeResult`, whose `check_results` cannot say
which partition a result belongs to (Dagster records them without one); so there every result
is yielded as its own `AssetCheckEvaluation` with its partition (pointing at that partition's new
materialization, so that automation sees the check evaluated the latest one), and each check's
output is then closed with an empty `Output`. The check specs of a partitioned asset must carry
its `partitions_def`. Only the run's selected checks are reported.

`metadata_value` is the one place where check metadata becomes Dagster metadata.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg

from music_assets.checks import CheckResult, Markdown, Preformatted, Table
from music_assets.defs import table_metadata

SEVERITY = {"error": dg.AssetCheckSeverity.ERROR, "warn": dg.AssetCheckSeverity.WARN}


def metadata_value(value: Any) -> Any:
    """A check's metadata value as Dagster metadata: `Markdown` as Markdown, `Preformatted` as a
    Markdown code block, `Table` as table metadata; Dagster metadata values and plain values (which
    Dagster reads itself: str as text, dict and list as JSON) as they are."""
    if isinstance(value, Markdown):
        return dg.MetadataValue.md(str(value))
    if isinstance(value, Preformatted):
        return dg.MetadataValue.md(f"```\n{value}\n```")
    if isinstance(value, Table):
        return table_metadata.table(value.columns, value.rows)
    return value


def asset_check_result(result: CheckResult) -> dg.AssetCheckResult:
    """`result` as a Dagster `AssetCheckResult` (without a name, the check returning it names it)."""
    return dg.AssetCheckResult(
        check_name=result.name,
        passed=result.passed,
        description=result.description,
        metadata={k: metadata_value(v) for k, v in result.metadata.items()},
        severity=SEVERITY[result.severity],
    )


def partition_evaluation(
    context: dg.AssetExecutionContext, result: CheckResult, partition: str
) -> dg.AssetCheckEvaluation:
    """`result` as the evaluation of one partition, targeting that partition's latest materialization."""
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (  # noqa: PLC0415
        AssetCheckEvaluationTargetMaterializationData,
    )

    asset_key = context.asset_key
    key = dg.AssetCheckKey(asset_key, _name(result))
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
    converted = asset_check_result(result)
    return dg.AssetCheckEvaluation(
        asset_key=asset_key,
        check_name=key.name,
        passed=converted.passed,
        metadata=converted.metadata,
        severity=converted.severity,
        description=converted.description,
        target_materialization_data=target,
        blocking=context.assets_def.get_spec_for_check_key(key).blocking,
        partition=partition,
    )


def materialize_with_checks(
    context: dg.AssetExecutionContext,
    metadata: Mapping[str, Any],
    results: Sequence[CheckResult] | Mapping[str, Sequence[CheckResult]],
) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation | dg.Output]:
    """Yield the materialization (with `metadata`) and the selected checks' `results`: a list for an
    unpartitioned asset, or {partition key: list} with an entry for every partition of the run."""
    selected = {k.name for k in context.selected_asset_check_keys}
    if not isinstance(results, Mapping):
        if context.assets_def.partitions_def is not None:
            raise TypeError("the check results of a partitioned asset are a mapping from partition key to results")
        yield dg.MaterializeResult(
            metadata=metadata, check_results=[asset_check_result(r) for r in results if _name(r) in selected]
        )
        return
    partitions = [str(p) for p in context.partition_keys]
    if context.has_partition_key:  # a range, even of one partition, takes the evaluations below
        yield dg.MaterializeResult(
            metadata=metadata,
            check_results=[asset_check_result(r) for r in results[partitions[0]] if _name(r) in selected],
        )
        return
    yield dg.MaterializeResult(metadata=metadata)
    for partition in partitions:
        for result in results[partition]:
            if _name(result) in selected:
                yield partition_evaluation(context, result, partition)
    for name in sorted(selected):
        key = dg.AssetCheckKey(context.asset_key, name)
        yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(key))


def _name(result: CheckResult) -> str:
    if not result.name:
        raise ValueError(f"a check result reported by an asset needs its check's name: {result}")
    return result.name
