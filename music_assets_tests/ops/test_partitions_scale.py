"""prepared_sources' dynamic partitions with a few hundred sources: Dagster's overhead stays small.

Runs `bench/partitions.py`'s measurement (the bench prints the same figures for 3,000 files):
a real tree, the catalog and selection assets, what automation requests after a catalog refresh
with no file changed, one touched and one edited, the partition sync, raw_audio_sensor ticks, and
the backfill of every partition launched through GraphQL and turned into runs by one backfill
daemon iteration, on an on-disk instance made from the project's dagster.yaml.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from music_assets.defs.partitions import SOURCE_PARTITIONS_PER_RUN

ROOT = Path(__file__).resolve().parents[2]
FILES = 200
LIMIT_S = 5.0  # "a few seconds" on a shared two-core machine; the figures are usually well below
# Creating the backfill's runs writes one "materialization planned" event per partition (and one per
# check), one storage transaction each: about 20 ms per partition on SQLite (4.5 s for 200 here).
# The limit leaves room for a loaded machine.
SUBMIT_LIMIT_S = 10.0
REMOVE_LIMIT_S = 1.0


def _bench():
    spec = importlib.util.spec_from_file_location("bench_partitions", ROOT / "bench" / "partitions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_partition_sync_backfill_launch_and_sensor_tick_stay_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("MUSIC_ASSETS_DATA_DIR", str(data))  # measure() sets both; restored after the test
    monkeypatch.setenv("DAGSTER_HOME", str(data / "dagster_home"))
    lines: list[str] = []
    out = _bench().measure(data, FILES, seconds=31.0, prepare=False, log=lines.append)
    report = "\n".join(lines)
    assert out["partitions"] == FILES, report
    for step in ("sync_add_all", "sync_noop", "sync_remove_10pct", "sync_readd_10pct", "sync_remove_all"):
        assert out[step] < LIMIT_S, f"{step} took {out[step]:.2f} s\n{report}"
    # Removing keys is one transaction however many (it was one per key: 4.5 s for 200 on a loaded machine).
    for step in ("sync_remove_10pct", "sync_remove_all"):
        assert out[step] < REMOVE_LIMIT_S, f"{step} took {out[step]:.2f} s\n{report}"
    # a tick that finds every source gone deletes every partition itself, in one transaction
    for tick in ("tick_first", "tick_unchanged", "tick_file_removed", "tick_all_removed"):
        assert out[tick] < LIMIT_S, f"{tick} took {out[tick]:.2f} s\n{report}"
    # automation after a catalog refresh: nothing for no change or a touch, one source and its beds for an edit
    assert out["new_requested"] == {"prepared_sources": FILES, "texture_beds": FILES}, report
    assert out["nochange_requested"] == {} and out["touched_requested"] == {}, report
    assert out["edited_requested"] == {"prepared_sources": 1, "texture_beds": 1}, report
    # the baseline, the conditions before per-source versions, re-ran every partition at every refresh
    assert out["nochange_requested_baseline"] == {"prepared_sources": FILES, "texture_beds": FILES}, report
    for tick in ("tick_new", "tick_nochange", "tick_touched", "tick_edited"):
        assert out[tick] < LIMIT_S, f"{tick} took {out[tick]:.2f} s\n{report}"
    assert out["backfill_launch"] < LIMIT_S, report
    assert out["backfill_submit"] < SUBMIT_LIMIT_S, report
    # prepared_sources' policy: runs of at most 100 partitions, together covering the whole range in
    # order, queued for the run-queue daemon
    assert out["runs"] == -(-FILES // SOURCE_PARTITIONS_PER_RUN) and out["run_status"] == ["QUEUED"], report
    assert sum(out["range_sizes"]) == FILES and max(out["range_sizes"]) <= SOURCE_PARTITIONS_PER_RUN, report
    assert out["run_ranges"][0][0] == out["first_key"] and out["run_ranges"][-1][1] == out["last_key"], report
    print(report)
