"""The catalog walk, stable ids, incremental reuse and the process pool."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from music_assets.audio import catalog
from music_assets.audio.catalog import CatalogError, build_catalog, fingerprint, scan
from music_assets_tests.audio.audio_trees import (
    BAD_CASES,
    file_permissions_enforced,
    make_bad_files,
    music_like,
    tone,
    write,
)
from music_assets_tests.audio.crashing_workers import always_crash, crash_on_b


def _rows(result) -> dict[str, dict]:
    return {r["rel_path"]: r for r in result.rows}


def test_every_bad_file_is_a_row_with_a_reason(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_bad_files(root, tmp_path / "outside")
    with file_permissions_enforced():
        rows = _rows(build_catalog([root], workers=1))
    for rel, (status, reason) in BAD_CASES.items():
        assert rows[rel]["status"] == status and reason in rows[rel]["error"], (rel, rows[rel])
    assert rows["bad/real.wav"]["status"] == "ok"
    assert set(rows) == set(BAD_CASES) | {"bad/real.wav"}  # nothing from .git, venvs, the loop or outside
    os.chmod(root / "bad" / "locked.wav", 0o644)


def test_the_walk_skips_generated_and_excluded_folders_and_follows_links_inside_the_roots(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write(root / "raw_audio" / "a.wav", tone(0.2))
    write(root / "catalog" / "generated.wav", tone(0.2))
    write(root / "venv" / "lib" / "x.wav", tone(0.2))
    write(root / "raw_audio" / "real_name.bin", tone(0.2), fmt="WAV")
    os.symlink("real_name.bin", root / "raw_audio" / "linked.wav")  # a link gives the audio name: followed
    os.symlink(root / "catalog", root / "raw_audio" / "into_generated")
    entries, stats = scan([root], excluded=[root / "catalog"])
    by_rel = {e.rel_path: e for e in entries}
    assert set(by_rel) == {"raw_audio/a.wav", "raw_audio/linked.wav"}
    assert by_rel["raw_audio/linked.wav"].status is None
    assert {Path(p).name for p in stats.excluded} == {"catalog", "venv"}
    assert any("into_generated" in p and "excluded" in p for p in stats.links_not_followed)


def test_a_root_nested_in_another_is_cataloged_once_and_a_missing_root_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "a" / "sub" / "x.wav", tone(0.2))
    entries, _ = scan([tmp_path / "a", tmp_path / "a" / "sub"])
    assert [(Path(e.root).name, e.rel_path) for e in entries] == [("a", "sub/x.wav")]
    with pytest.raises(CatalogError, match="nope"):
        scan([tmp_path / "nope"])


def test_source_ids_depend_on_relative_path_and_content_only(tmp_path: Path) -> None:
    one = tmp_path / "machine_one" / "music"
    write(one / "x.wav", music_like(0.5, seed=1))
    write(one / "y.wav", music_like(0.5, seed=1))
    write(one / "z.wav", music_like(0.5, seed=2))
    two = tmp_path / "elsewhere" / "copy"
    shutil.copytree(one, two)
    a, b = _rows(build_catalog([one], workers=1)), _rows(build_catalog([two], workers=1))
    assert {k: r["source_id"] for k, r in a.items()} == {k: r["source_id"] for k, r in b.items()}
    assert len({r["source_id"] for r in a.values()}) == 3  # same bytes under another name: another id
    # The same relative path and bytes under two roots is one source: the second is a skipped duplicate.
    both = build_catalog([one, two], workers=1).rows
    dup = [r for r in both if r["root"] == str(two.resolve())]
    assert all(r["status"] == "skipped" and r["source_id"] is None and "duplicate" in r["error"] for r in dup)


def test_unchanged_files_are_reused_and_changed_ones_reanalysed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for i in range(4):
        write(root / f"f{i}.flac", music_like(0.5, seed=i))
    write(root / "locked.wav", tone(0.5))
    os.chmod(root / "locked.wav", 0)
    with file_permissions_enforced():
        first = build_catalog([root], workers=1)
    assert first.analyzed == 5 and _rows(first)["locked.wav"]["status"] == "error"
    path = tmp_path / "catalog.parquet"
    from music_assets.io import write_parquet

    write_parquet(path, first.table())
    os.chmod(root / "locked.wav", 0o644)  # fixed without touching size or mtime: must be looked at again
    write(root / "f0.flac", music_like(0.5, seed=100))
    second = build_catalog([root], previous=catalog.load_previous(path), workers=1)
    assert (second.reused, second.analyzed) == (3, 2)
    rows, before = _rows(second), _rows(first)
    assert rows["locked.wav"]["status"] == "ok"
    assert rows["f0.flac"]["source_id"] != before["f0.flac"]["source_id"]
    for name in ("f1.flac", "f2.flac", "f3.flac"):
        assert rows[name] == before[name]
    assert second.table().equals(build_catalog([root], workers=1).table())


def test_a_previous_catalog_of_another_analysis_version_is_not_reused(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path / "root" / "a.wav", tone(0.5))
    from music_assets.io import write_parquet

    write_parquet(tmp_path / "c.parquet", build_catalog([tmp_path / "root"], workers=1).table())
    assert catalog.load_previous(tmp_path / "c.parquet")
    monkeypatch.setattr(catalog, "ANALYSIS_VERSION", "next")
    assert catalog.load_previous(tmp_path / "c.parquet") == {}


def test_the_process_pool_gives_the_same_rows(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "root"
    for i in range(6):
        write(root / f"f{i}.wav", music_like(0.5, seed=i))
    (root / "broken.mp3").write_text("no audio here\n")
    inline = build_catalog([root], workers=1)
    monkeypatch.setattr(catalog, "POOL_MIN_FILES", 2)
    pooled = build_catalog([root], workers=2)
    assert pooled.table().equals(inline.table())


def test_a_file_that_kills_its_worker_is_an_error_row_and_the_rest_goes_on(monkeypatch) -> None:
    monkeypatch.setattr(catalog, "POOL_MIN_FILES", 2)
    paths = [f"/x/{n}.wav" for n in "abcdefg"]
    rows = catalog.analyze_many(paths, workers=2, fn=crash_on_b)
    assert rows[1]["status"] == "error" and "crashed" in rows[1]["error"]
    assert [r["path"] for i, r in enumerate(rows) if i != 1] == [p for i, p in enumerate(paths) if i != 1]


def test_the_fingerprint_changes_exactly_when_the_tree_does(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "a.wav", tone(0.2))
    before = fingerprint(scan([root])[0])
    (root / "notes.txt").write_text("not audio")
    assert fingerprint(scan([root])[0]) == before
    os.utime(root / "a.wav", ns=(1, 1))
    assert fingerprint(scan([root])[0]) != before


def test_workers_that_always_die_fail_the_run_instead_of_blaming_every_file(monkeypatch) -> None:
    monkeypatch.setattr(catalog, "POOL_MIN_FILES", 2)
    with pytest.raises(RuntimeError, match="analysis workers keep dying"):
        catalog.analyze_many([f"/x/{i}.wav" for i in range(8)], workers=2, fn=always_crash)
