"""prepared_sources' dynamic partitions with a few hundred sources: what runs, and in what chunks.

Runs `bench/partitions.py`'s measurement (the bench prints its timings, for 3,000 files, with the
ratio to the baseline; this test asserts what a user sees happen, not how fast, which depends on
the machine's load):
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


def _bench():
    spec = importlib.util.spec_from_file_location("bench_partitions", ROOT / "bench" / "partitions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_few_hundred_sources_sync_request_only_what_changed_and_backfill_in_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("MUSIC_ASSETS_DATA_DIR", str(data))  # measure() sets both; restored after the test
    monkeypatch.setenv("DAGSTER_HOME", str(data / "dagster_home"))
    lines: list[str] = []
    out = _bench().measure(data, FILES, seconds=31.0, prepare=False, log=lines.append)
    report = "\n".join(lines)
    assert out["partitions"] == FILES, report
    # automation after a catalog refresh: nothing for no change or a touch, one source and its beds for an edit
    assert out["new_requested"] == {"prepared_sources": FILES, "texture_beds": FILES}, report
    assert out["nochange_requested"] == {} and out["touched_requested"] == {}, report
    assert out["edited_requested"] == {"prepared_sources": 1, "texture_beds": 1}, report
    # the baseline, the conditions before per-source versions, re-ran every partition at every refresh
    assert out["nochange_requested_baseline"] == {"prepared_sources": FILES, "texture_beds": FILES}, report
    # prepared_sources' policy: runs of at most 100 partitions, together covering the whole range in
    # order, queued for the run-queue daemon
    assert out["runs"] == -(-FILES // SOURCE_PARTITIONS_PER_RUN) and out["run_status"] == ["QUEUED"], report
    assert sum(out["range_sizes"]) == FILES and max(out["range_sizes"]) <= SOURCE_PARTITIONS_PER_RUN, report
    assert out["run_ranges"][0][0] == out["first_key"] and out["run_ranges"][-1][1] == out["last_key"], report
    print(report)
