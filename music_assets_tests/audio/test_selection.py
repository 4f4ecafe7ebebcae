"""Selection rules, scores and rejection reasons on hand-made catalog rows."""

from __future__ import annotations

import pyarrow as pa
import pytest

from music_assets.audio.catalog import rows_to_table
from music_assets.audio.selection import SelectionRules, matching_patterns, select_sources


def _row(rel: str, **kw) -> dict:
    row = {
        "source_id": rel,
        "root": "/music/test_root",
        "rel_path": rel,
        "format": "wav",
        "status": "ok",
        "error": None,
        "duration_sec": 60.0,
        "sample_rate": 44100,
        "channels": 2,
        "clipped_ratio": 0.0,
        "silence_ratio": 0.1,
        "analyzed": True,
    }
    row.update(kw)
    return row


def _select(rows: list[dict], rules: SelectionRules = SelectionRules()) -> dict[str, dict]:
    table, _ = select_sources(rows_to_table(rows), rules)
    return {r["rel_path"]: r for r in table.to_pylist()}


def test_patterns_match_words_of_the_relative_path() -> None:
    assert matching_patterns("tests/take.wav", ["test"]) == ["test"]
    assert matching_patterns("old/Test_Take.WAV", ["test"]) == ["test"]
    assert matching_patterns("latest.wav", ["test"]) == []
    assert matching_patterns("album/final-bounces/a.wav", ["bounces", "masters"]) == ["bounces"]


def test_every_failed_rule_is_a_reason_and_the_root_never_matters() -> None:
    out = _select(
        [
            _row("good.wav"),
            _row("drafts/scratch_idea.wav", duration_sec=10.0, clipped_ratio=0.01, silence_ratio=0.9),
            _row("long.wav", duration_sec=4000.0),
            _row(
                "broken.wav",
                status="error",
                error="truncated: the data chunk declares 10 bytes",
                duration_sec=None,
                clipped_ratio=None,
                silence_ratio=None,
            ),
        ]
    )
    assert out["good.wav"]["selected"] and out["good.wav"]["rejection_reason"] is None  # root has "test" in it
    bad = out["drafts/scratch_idea.wav"]
    assert not bad["selected"]
    assert bad["rejection_reason"] == (
        "duration 10.0 s < 30 s; path matches skip pattern 'scratch', 'draft'; "
        "clipped ratio 0.0100 > 0.001; silence ratio 0.90 > 0.5"
    )
    assert out["long.wav"]["rejection_reason"] == "duration 4000.0 s > 3600 s"
    assert out["broken.wav"]["rejection_reason"] == "status error: truncated: the data chunk declares 10 bytes"
    assert out["broken.wav"]["selection_score"] is None


def test_scores_boost_preferred_paths_and_formats_and_sort_best_first() -> None:
    rules = SelectionRules(preferred_channels=2, preferred_sample_rate=48000)
    rows = [
        _row("plain.wav", silence_ratio=0.0),
        _row("masters/bounces/a.wav", silence_ratio=0.5),
        _row("tracks/b.wav", sample_rate=48000, channels=1, clipped_ratio=0.0005, silence_ratio=0.2),
        _row("err.wav", status="error", error="x", clipped_ratio=None, silence_ratio=None),
    ]
    table, failures = select_sources(rows_to_table(rows), rules)
    out = {r["rel_path"]: r["selection_score"] for r in table.to_pylist()}
    assert out["plain.wav"] == pytest.approx(5 + 10)
    assert out["masters/bounces/a.wav"] == pytest.approx(20 + 5 + 5)
    assert out["tracks/b.wav"] == pytest.approx(10 + 5 + 8 - 5)
    assert table.column("rel_path").to_pylist() == ["masters/bounces/a.wav", "tracks/b.wav", "plain.wav", "err.wav"]
    assert failures == {"status": 1}
    assert table.schema.field("rejection_reason").type == pa.string()
    assert table.schema.field("selected").type == pa.bool_()


def test_limits_are_configurable_and_checked() -> None:
    relaxed = SelectionRules(max_silence_ratio=1.0, skip_patterns=(), min_duration_sec=5.0)
    assert _select([_row("drafts/quiet.wav", duration_sec=10.0, silence_ratio=0.9)], relaxed)["drafts/quiet.wav"][
        "selected"
    ]
    with pytest.raises(ValueError, match="min_duration_sec"):
        SelectionRules(min_duration_sec=100.0, max_duration_sec=50.0)


def test_the_license_rule_rejects_with_the_reason_and_the_default_allows_all() -> None:
    rows = [
        _row("a.wav", license="CC-BY-4.0"),
        _row("b.wav", license="CC-BY-NC-4.0"),
        _row("c.wav", license="unknown"),
        _row("d.wav", license="cc0-1.0"),
    ]
    everything = _select(rows)
    assert all(r["selected"] for r in everything.values())
    assert {k: r["license"] for k, r in everything.items()} == {
        "a.wav": "CC-BY-4.0",
        "b.wav": "CC-BY-NC-4.0",
        "c.wav": "unknown",
        "d.wav": "cc0-1.0",
    }
    table, failures = select_sources(rows_to_table(rows), SelectionRules(allowed_licenses=["CC-BY-4.0", "CC0-1.0"]))
    out = {r["rel_path"]: r for r in table.to_pylist()}
    assert {k for k, r in out.items() if r["selected"]} == {"a.wav", "d.wav"}  # SPDX ids compare case-insensitively
    assert out["b.wav"]["rejection_reason"] == "license 'CC-BY-NC-4.0' not in allowed licenses"
    assert out["c.wav"]["rejection_reason"] == "license 'unknown' not in allowed licenses"
    assert failures["license"] == 2
    with_unknown = _select(rows, SelectionRules(allowed_licenses=["CC-BY-4.0", "unknown"]))
    assert {k for k, r in with_unknown.items() if r["selected"]} == {"a.wav", "c.wav"}
    assert not any(r["selected"] for r in _select(rows, SelectionRules(allowed_licenses=[])).values())
    with pytest.raises(ValueError, match="allowed_licenses"):
        SelectionRules(allowed_licenses="CC0-1.0")


def test_the_checked_in_demo_inputs_exercise_the_gates() -> None:
    from music_assets.audio.catalog import build_catalog
    from music_assets.paths import REPO_ROOT

    raw = REPO_ROOT / "data" / "raw_audio"
    assert sum(p.stat().st_size for p in raw.rglob("*") if p.is_file()) < 5 * 2**20
    table, failures = select_sources(build_catalog([raw], workers=1).table())
    rows = table.to_pylist()
    selected = [r for r in rows if r["selected"]]
    assert len(selected) >= 2 and all(30 <= r["duration_sec"] <= 240 for r in selected)
    assert all(r["status"] == "ok" for r in rows)
    assert failures["clipping"] >= 1 and failures["silence"] >= 1
    # their provenance: provenance.csv for every file, a sidecar that wins for one
    licenses = {r["rel_path"]: (r["license"], r["provenance_source"], r["provenance_error"]) for r in rows}
    assert licenses.pop("tracks/jazz_trio_take2.flac") == ("CC0-1.0", "sidecar", None)
    assert set(licenses.values()) == {("CC-BY-4.0", "csv", None)} and len(licenses) == 5
    assert {r["provider"] for r in rows} == {"music_assets demo (synthesized)"}
