"""The one helper that reports the domain's check results to Dagster: unpartitioned, one partition,
several partitions in one run; the metadata the UI shows; blocking from the check's declaration."""

import dagster as dg
import pytest

from music_assets.checks import CheckResult, Markdown, Preformatted, Table
from music_assets.defs.check_results import asset_check_result, materialize_with_checks

PARTS = dg.StaticPartitionsDefinition(["a", "b", "c"])
FAILING: set[str] = set()  # partitions whose blocking check fails in the next run


def _results(partition: str) -> list[CheckResult]:
    return [
        CheckResult(
            name="gate",
            passed=partition not in FAILING,
            description=f"gate of {partition}",
            metadata={
                "partition": partition,
                "failing": int(partition in FAILING),
                "examples": Markdown("| file |\n|---|\n| x.flac |"),
                "problems": Preformatted("one\ntwo"),
                "files": Table((("file", "string"), ("n", "int")), [{"file": "x.flac", "n": 1}, {"file": "y.flac"}]),
                "path": dg.MetadataValue.path("/tmp/x"),  # Dagster metadata from the wiring passes through
            },
        ),
        CheckResult(name="advice", passed=False, severity="warn"),
    ]


CHECKS = [
    dg.AssetCheckSpec("gate", asset="parted", blocking=True, partitions_def=PARTS),
    dg.AssetCheckSpec("advice", asset="parted", partitions_def=PARTS),
]


@dg.asset(partitions_def=PARTS, backfill_policy=dg.BackfillPolicy.single_run(), check_specs=CHECKS)
def parted(context: dg.AssetExecutionContext):
    # every partition of the definition: the helper reports those of the run only
    yield from materialize_with_checks(context, {"rows": 1}, {p: _results(p) for p in PARTS.get_partition_keys()})


@dg.asset(partitions_def=PARTS, backfill_policy=dg.BackfillPolicy.single_run(), deps=[parted])
def below(context: dg.AssetExecutionContext) -> None:
    """Must not run after a failed blocking check of `parted`."""


@dg.multi_asset(
    specs=[dg.AssetSpec("whole")],
    check_specs=[dg.AssetCheckSpec("gate", asset="whole", blocking=True), dg.AssetCheckSpec("advice", asset="whole")],
    can_subset=True,  # so that a run may leave its checks out
)
def whole(context: dg.AssetExecutionContext):
    yield from materialize_with_checks(context, {"rows": 2}, _results("whole"))


@dg.asset_check(asset=whole)
def unnamed() -> dg.AssetCheckResult:
    return asset_check_result(CheckResult(False, "said by the check", {"n": 3}, severity="warn"))


def _evaluations(result) -> dict[tuple[str | None, str], dg.AssetCheckEvaluation]:
    return {(e.partition, e.check_name): e for e in result.get_asset_check_evaluations()}


def _assert_gate(e: dg.AssetCheckEvaluation, partition: str, passed: bool) -> None:
    assert (e.passed, e.severity, e.blocking, e.description) == (
        passed,
        dg.AssetCheckSeverity.ERROR,
        True,
        f"gate of {partition}",
    )
    m = e.metadata
    assert m["partition"] == dg.MetadataValue.text(partition) and m["failing"] == dg.MetadataValue.int(int(not passed))
    assert m["examples"] == dg.MetadataValue.md("| file |\n|---|\n| x.flac |")
    assert m["problems"] == dg.MetadataValue.md("```\none\ntwo\n```")
    assert m["path"] == dg.MetadataValue.path("/tmp/x")
    table = m["files"]
    assert isinstance(table, dg.TableMetadataValue)
    assert [c.name for c in table.schema.columns] == ["file", "n"] and [c.type for c in table.schema.columns] == [
        "string",
        "int",
    ]
    assert [r.data for r in table.records] == [{"file": "x.flac", "n": 1}, {"file": "y.flac", "n": None}]


def _assert_advice(e: dg.AssetCheckEvaluation) -> None:
    assert (e.passed, e.severity, e.blocking, e.description, dict(e.metadata)) == (
        False,
        dg.AssetCheckSeverity.WARN,
        False,
        None,
        {},
    )


def test_an_unpartitioned_asset_reports_its_results_and_an_asset_check_its_own(instance) -> None:
    result = dg.materialize([whole, unnamed], instance=instance)
    assert result.success
    evaluations = _evaluations(result)
    assert set(evaluations) == {(None, "gate"), (None, "advice"), (None, "unnamed")}
    _assert_gate(evaluations[(None, "gate")], "whole", True)
    _assert_advice(evaluations[(None, "advice")])
    own = evaluations[(None, "unnamed")]
    assert (own.passed, own.severity, own.description, own.metadata["n"]) == (
        False,
        dg.AssetCheckSeverity.WARN,
        "said by the check",
        dg.MetadataValue.int(3),
    )
    mat = result.asset_materializations_for_node("whole")[0]
    assert mat.metadata["rows"] == dg.MetadataValue.int(2)


def test_only_the_selected_checks_are_reported(instance) -> None:
    only_gate = dg.AssetSelection.assets(whole).without_checks() | dg.AssetSelection.checks(
        dg.AssetCheckKey(dg.AssetKey("whole"), "gate")
    )
    result = dg.materialize([whole], instance=instance, selection=only_gate)
    assert result.success and set(_evaluations(result)) == {(None, "gate")}


def test_one_partition_reports_that_partition_only(instance) -> None:
    FAILING.clear()
    result = dg.materialize([parted], instance=instance, partition_key="b")
    assert result.success
    evaluations = _evaluations(result)
    assert set(evaluations) == {("b", "gate"), ("b", "advice")}
    _assert_gate(evaluations[("b", "gate")], "b", True)
    _assert_advice(evaluations[("b", "advice")])
    (record,) = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("parted"), asset_partitions=["b"]), limit=1
    ).records
    assert evaluations[("b", "gate")].target_materialization_data.storage_id == record.storage_id


def test_a_range_of_one_partition_reports_it_with_its_partition(instance) -> None:
    FAILING.clear()
    result = dg.materialize(
        [parted],
        instance=instance,
        tags={"dagster/asset_partition_range_start": "c", "dagster/asset_partition_range_end": "c"},
    )
    assert result.success
    evaluations = _evaluations(result)
    assert set(evaluations) == {("c", "gate"), ("c", "advice")}
    _assert_gate(evaluations[("c", "gate")], "c", True)


def test_several_partitions_in_one_run_each_report_theirs_and_a_failure_blocks(instance) -> None:
    FAILING.clear()
    FAILING.add("b")
    try:
        result = dg.materialize(
            [parted, below],
            instance=instance,
            tags={"dagster/asset_partition_range_start": "a", "dagster/asset_partition_range_end": "c"},
            raise_on_error=False,
        )
    finally:
        FAILING.clear()
    assert not result.success  # b's blocking gate failed
    evaluations = _evaluations(result)
    assert set(evaluations) == {(p, n) for p in "abc" for n in ("gate", "advice")}
    for p in "abc":
        _assert_gate(evaluations[(p, "gate")], p, p != "b")
        _assert_advice(evaluations[(p, "advice")])
        (record,) = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("parted"), asset_partitions=[p]), limit=1
        ).records
        # each evaluation points at its own partition's new materialization
        assert evaluations[(p, "gate")].target_materialization_data.storage_id == record.storage_id
    assert instance.get_materialized_partitions(dg.AssetKey("parted")) == {"a", "b", "c"}
    assert not instance.get_materialized_partitions(dg.AssetKey("below"))


def test_misuse_is_refused_with_the_reason(instance) -> None:
    @dg.asset(partitions_def=PARTS, check_specs=[dg.AssetCheckSpec("gate", asset="listed", partitions_def=PARTS)])
    def listed(context: dg.AssetExecutionContext):
        yield from materialize_with_checks(context, {}, _results("a"))

    @dg.asset(check_specs=[dg.AssetCheckSpec("gate", asset="nameless")])
    def nameless(context: dg.AssetExecutionContext):
        yield from materialize_with_checks(context, {}, [CheckResult(True)])

    with pytest.raises(TypeError, match="mapping from partition key"):
        dg.materialize([listed], instance=instance, partition_key="a")
    with pytest.raises(ValueError, match="needs its check's name"):
        dg.materialize([nameless], instance=instance)
