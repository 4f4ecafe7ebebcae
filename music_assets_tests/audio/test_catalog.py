"""The catalog walk, stable ids, incremental reuse and the process pool."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from music_assets.audio import catalog
from music_assets.audio.catalog import CatalogError, build_catalog, fingerprint, scan
from music_assets.audio.catalog import pool as catalog_pool
from music_assets.audio.catalog import table as catalog_table
from music_assets.audio.signals import music_like, tone, write
from music_assets_tests.audio.audio_trees import BAD_CASES, file_permissions_enforced, make_bad_files
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
    assert rows["bad/outside.wav"]["status"] == "ok"  # a link out of the root is followed
    # nothing from .git, venvs or the loop
    assert set(rows) == set(BAD_CASES) | {"bad/real.wav", "bad/outside.wav"}
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


def test_source_keys_are_readable_and_depend_on_the_relative_path_only(tmp_path: Path) -> None:
    one = tmp_path / "machine_one" / "music"
    write(one / "bounces" / "Funk Groove (96 BPM).wav", music_like(0.5, seed=1))
    write(one / "y.wav", music_like(0.5, seed=1))
    write(one / "z.wav", music_like(0.5, seed=2))
    write(one / "Café ünïcode.flac", music_like(0.5, seed=3))
    write(one / "日本.wav", music_like(0.5, seed=4))
    two = tmp_path / "elsewhere" / "copy"
    shutil.copytree(one, two)
    a, b = _rows(build_catalog([one], workers=1)), _rows(build_catalog([two], workers=1))
    keys = {k: r["source_id"] for k, r in a.items()}
    assert keys == {k: r["source_id"] for k, r in b.items()}  # the same on another machine, under another root
    assert keys["bounces/Funk Groove (96 BPM).wav"] == catalog.source_key("bounces/Funk Groove (96 BPM).wav")
    assert keys["bounces/Funk Groove (96 BPM).wav"].startswith("funk-groove-96-bpm-")
    assert keys["Café ünïcode.flac"].startswith("cafe-unicode-") and keys["日本.wav"].startswith("track-")
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*-[0-9a-f]{6}", k) for k in keys.values()), keys
    assert len(set(keys.values())) == 5  # same bytes under another name: another key
    # The key does not depend on the bytes: an edited file keeps it (and its partitions).
    write(one / "y.wav", music_like(0.5, seed=9))
    assert _rows(build_catalog([one], workers=1))["y.wav"]["source_id"] == keys["y.wav"]
    # The same relative path and bytes under two roots is one source: the second is a skipped duplicate.
    shutil.copy(one / "y.wav", two / "y.wav")
    both = build_catalog([one, two], workers=1).rows
    dup = [r for r in both if r["root"] == str(two.resolve()) and r["rel_path"] != "y.wav"]
    assert all(r["status"] == "skipped" and r["source_id"] is None and "duplicate" in r["error"] for r in dup)
    # The same relative path with other bytes in another root: its own key, the root's name in the hash.
    write(two / "z.wav", music_like(0.5, seed=7))
    rows = [r for r in build_catalog([one, two], workers=1).rows if r["rel_path"] == "z.wav"]
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert rows[0]["source_id"] == keys["z.wav"] and rows[1]["source_id"] == catalog.source_key("z.wav", "copy")
    assert rows[1]["source_id"].startswith("z-") and rows[1]["source_id"] != rows[0]["source_id"]


def test_symlinked_folders_are_followed_once_and_loops_refused(tmp_path: Path) -> None:
    root = tmp_path / "raw_audio"
    library = tmp_path / "elsewhere" / "My Library"
    write(root / "own.wav", tone(0.2))
    write(library / "album" / "song.flac", music_like(0.5, seed=1))
    write(library / "single.wav", music_like(0.5, seed=2))
    os.symlink(library, root / "library")  # a library linked in: cataloged under the link
    os.symlink(library, root / "library_again")  # a second link to it: refused, not cataloged twice
    # links are followed in name order: this one reaches album/ first, so library/album is refused
    os.symlink(library / "album", root / "album_alias")
    os.symlink("..", library / "album" / "up")  # a loop inside the linked folder
    os.symlink(root, library / "to_root")  # another loop: back to the root that links the library in
    entries, stats = scan([root])
    by_rel = {e.rel_path: e for e in entries}
    assert set(by_rel) == {"own.wav", "album_alias/song.flac", "library/single.wav"}, sorted(by_rel)
    assert all(e.status is None for e in entries)
    assert by_rel["library/single.wav"].path == str(library / "single.wav")  # read at its real path
    refused = {p.split(" (")[0][len(str(root)) + 1 :]: p for p in stats.links_not_followed}
    assert set(refused) == {"library_again", "album_alias/up", "library/to_root"}, refused
    assert all("already cataloged (alias or loop)" in p for p in refused.values())
    rows = _rows(build_catalog([root], workers=1))
    assert rows["album_alias/song.flac"]["status"] == "ok"
    assert rows["album_alias/song.flac"]["source_id"].startswith("song-")


def test_a_linked_library_keeps_its_sidecars_and_a_sidecar_linking_out_is_not_read(tmp_path: Path) -> None:
    root = tmp_path / "raw_audio"
    library = tmp_path / "elsewhere" / "My Library"
    write(library / "song.flac", music_like(0.5, seed=1))
    (library / "song.flac.json").write_text('{"license": "CC-BY-4.0", "author": "me"}')
    write(library / "other.flac", music_like(0.5, seed=2))
    (tmp_path / "secret.json").write_text('{"license": "STOLEN-1.0"}')
    os.symlink(tmp_path / "secret.json", library / "other.flac.json")  # leaves the library and the roots
    root.mkdir()
    os.symlink(library, root / "library")
    entries, _ = scan([root])
    by_rel = {e.rel_path: e for e in entries}
    assert by_rel["library/song.flac"].sidecar_error is None
    assert by_rel["library/song.flac"].sidecar == str(library / "song.flac.json")
    assert "resolves outside the catalog roots" in by_rel["library/other.flac"].sidecar_error


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
    assert rows["f0.flac"]["content_hash"] != before["f0.flac"]["content_hash"]
    assert rows["f0.flac"]["source_id"] == before["f0.flac"]["source_id"]  # the key is the path's
    for name in ("f1.flac", "f2.flac", "f3.flac"):
        assert rows[name] == before[name]
    assert second.table().equals(build_catalog([root], workers=1).table())


def test_a_previous_catalog_of_another_analysis_version_is_not_reused(tmp_path: Path, monkeypatch) -> None:
    write(tmp_path / "root" / "a.wav", tone(0.5))
    from music_assets.io import write_parquet

    write_parquet(tmp_path / "c.parquet", build_catalog([tmp_path / "root"], workers=1).table())
    assert catalog.load_previous(tmp_path / "c.parquet")
    monkeypatch.setattr(catalog_table, "ANALYSIS_VERSION", "next")
    assert catalog.load_previous(tmp_path / "c.parquet") == {}


def test_the_process_pool_gives_the_same_rows(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "root"
    for i in range(6):
        write(root / f"f{i}.wav", music_like(0.5, seed=i))
    (root / "broken.mp3").write_text("no audio here\n")
    inline_calls: list[tuple[int, int]] = []
    inline = build_catalog([root], workers=1, progress=lambda d, t: inline_calls.append((d, t)))
    monkeypatch.setattr(catalog_pool, "POOL_MIN_FILES", 2)
    pooled_calls: list[tuple[int, int]] = []
    pooled = build_catalog([root], workers=2, progress=lambda d, t: pooled_calls.append((d, t)))
    assert pooled.table().equals(inline.table())
    # files done of total: from 0, one more per file, up to all 7
    assert inline_calls == pooled_calls == [(i, 7) for i in range(8)]
    # reused rows are not work: a warm re-run with nothing changed reports nothing to do
    from music_assets.io import write_parquet

    write_parquet(tmp_path / "c.parquet", inline.table())
    warm: list[tuple[int, int]] = []
    build_catalog([root], previous=catalog.load_previous(tmp_path / "c.parquet"), progress=lambda *a: warm.append(a))
    assert warm == []


def test_a_file_that_kills_its_worker_is_an_error_row_and_the_rest_goes_on(monkeypatch) -> None:
    monkeypatch.setattr(catalog_pool, "POOL_MIN_FILES", 2)
    paths = [f"/x/{n}.wav" for n in "abcdefg"]
    calls: list[tuple[int, int]] = []
    rows = catalog.analyze_many(paths, workers=2, fn=crash_on_b, progress=lambda d, t: calls.append((d, t)))
    assert rows[1]["status"] == "error" and "crashed" in rows[1]["error"]
    assert calls == [(i, 7) for i in range(8)]  # the crashed file counts as done
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
    monkeypatch.setattr(catalog_pool, "POOL_MIN_FILES", 2)
    with pytest.raises(RuntimeError, match="analysis workers keep dying"):
        catalog.analyze_many([f"/x/{i}.wav" for i in range(8)], workers=2, fn=always_crash)


# ---------------------------------------------------------------- provenance


def _sidecar(path: Path, values) -> Path:
    text = values if isinstance(values, str) else json.dumps(values)
    path.write_text(text)
    return path


def _parquet_rows(result, tmp_path: Path) -> dict[str, dict]:
    from music_assets.io import write_parquet

    write_parquet(tmp_path / "catalog.parquet", result.table())
    return {r["rel_path"]: r for r in pq.read_table(tmp_path / "catalog.parquet").to_pylist()}


def test_sidecar_values_are_catalog_columns(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "a.flac", tone(0.5))
    _sidecar(
        root / "a.flac.json",
        {
            "provider": "Freesound",
            "license": "  CC-BY-4.0 ",
            "author": "Ann",
            "url": "https://freesound.org/s/1/",
            "acquired": "2026-05-01",
            "cost": 12.5,
            "bpm": 120,  # an unknown key: ignored
        },
    )
    write(root / "b.wav", tone(0.5))
    _sidecar(root / "b.json", {"license": "CC0-1.0", "cost": 0})  # <stem>.json is accepted too
    write(root / "c.wav", tone(0.5))
    rows = _parquet_rows(build_catalog([root], workers=1), tmp_path)
    a = rows["a.flac"]
    assert (a["provider"], a["license"], a["author"], a["url"]) == (
        "Freesound",
        "CC-BY-4.0",
        "Ann",
        "https://freesound.org/s/1/",
    )
    assert a["acquired"] == dt.date(2026, 5, 1) and a["cost"] == 12.5
    assert (a["provenance_source"], a["sidecar"], a["provenance_error"]) == ("sidecar", "a.flac.json", None)
    assert (rows["b.wav"]["license"], rows["b.wav"]["cost"], rows["b.wav"]["sidecar"]) == ("CC0-1.0", 0.0, "b.json")
    c = rows["c.wav"]
    assert (c["license"], c["provenance_source"], c["provider"], c["acquired"]) == ("unknown", "none", None, None)


def test_provenance_csv_fills_in_and_a_sidecar_wins_field_by_field(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for rel in ("a.flac", "sub/b.wav", "sub/c.wav"):
        write(root / rel, tone(0.5))
    (root / "provenance.csv").write_text(
        "path,provider,license,author,url,acquired,cost\n"
        "a.flac,Label X,CC-BY-NC-4.0,Bo,,2025-01-02,3\n"
        "./sub/b.wav,Label X,CC-BY-4.0,,https://x.example/b,,\n"
    )
    (root / "sub" / "provenance.csv").write_text("path,license\nc.wav,MIT\n")  # only a root's CSV counts
    _sidecar(root / "a.flac.json", {"license": "CC0-1.0", "author": "Cy"})
    rows = build_catalog([root], workers=1).rows
    by = {r["rel_path"]: r for r in rows}
    a, b, c = by["a.flac"], by["sub/b.wav"], by["sub/c.wav"]
    # the sidecar's license and author, the CSV's provider, date and cost
    assert (a["license"], a["author"], a["provider"], a["acquired"], a["cost"]) == (
        "CC0-1.0",
        "Cy",
        "Label X",
        dt.date(2025, 1, 2),
        3.0,
    )
    assert a["provenance_source"] == "sidecar"
    assert (b["license"], b["url"], b["author"], b["provenance_source"]) == (
        "CC-BY-4.0",
        "https://x.example/b",
        None,
        "csv",
    )
    assert (c["license"], c["provenance_source"]) == ("unknown", "none")


def test_bad_provenance_is_a_reason_on_the_row_and_never_fails_the_catalog(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for name in ("broken.flac", "not_object.flac", "typed.flac", "bad_date.flac", "fine.flac"):
        write(root / name, tone(0.5))
    _sidecar(root / "broken.flac.json", '{"license": "CC0-1.0",')
    _sidecar(root / "not_object.flac.json", '["CC0-1.0"]')
    _sidecar(root / "typed.flac.json", {"license": "CC0-1.0", "cost": "12 EUR"})
    (root / "provenance.csv").write_text(
        "path,license,acquired,cost\n"
        "broken.flac,CC-BY-4.0,,\n"
        "bad_date.flac,CC-BY-4.0,last spring,\n"
        "fine.flac,CC-BY-4.0,2026-01-01,1\n"
    )
    by = {r["rel_path"]: r for r in build_catalog([root], workers=1).rows}
    assert all(r["status"] == "ok" for r in by.values())
    broken = by["broken.flac"]
    assert broken["provenance_error"].startswith("broken.flac.json: malformed JSON")
    assert (broken["license"], broken["provenance_source"]) == ("CC-BY-4.0", "csv")  # the CSV still applies
    assert by["not_object.flac"]["provenance_error"] == "not_object.flac.json: must be a JSON object, got list"
    typed = by["typed.flac"]
    assert typed["provenance_error"] == "typed.flac.json: cost must be a number, got str"
    assert typed["license"] == "unknown"  # a sidecar with a wrong value is not used at all
    assert by["bad_date.flac"]["provenance_error"] == (
        "provenance.csv line 3: acquired 'last spring' is not an ISO date (YYYY-MM-DD)"
    )
    assert by["fine.flac"]["provenance_error"] is None and by["fine.flac"]["cost"] == 1.0

    (root / "provenance.csv").write_text("file,license\nfine.flac,MIT\n")
    rows = build_catalog([root], workers=1).rows
    assert all("provenance.csv: no 'path' column" in r["provenance_error"] for r in rows)


def test_a_changed_added_or_removed_sidecar_shows_in_the_next_incremental_catalog(tmp_path: Path) -> None:
    from music_assets.io import write_parquet

    root = tmp_path / "root"
    write(root / "a.flac", tone(0.5))
    write(root / "b.flac", tone(0.5, freq=330.0))
    side = _sidecar(root / "a.flac.json", {"license": "CC0-1.0"})
    path = tmp_path / "catalog.parquet"

    def again():
        result = build_catalog([root], previous=catalog.load_previous(path), workers=1)
        write_parquet(path, result.table())
        return result, {r["rel_path"]: r["license"] for r in result.rows}

    write_parquet(path, build_catalog([root], workers=1).table())
    tree = fingerprint(*scan([root]))
    _sidecar(side, {"license": "CC-BY-SA-4.0"})
    os.utime(side, ns=(10**18, 10**18))  # a new mtime even where the clock is coarse
    result, licenses = again()
    assert licenses == {"a.flac": "CC-BY-SA-4.0", "b.flac": "unknown"}
    assert (result.reused, result.analyzed) == (2, 0)  # the audio is not decoded again
    assert fingerprint(*scan([root])) != tree  # and the sensor sees the change
    side.unlink()
    _sidecar(root / "b.flac.json", {"license": "MIT"})
    assert again()[1] == {"a.flac": "unknown", "b.flac": "MIT"}
    tree = fingerprint(*scan([root]))
    (root / "provenance.csv").write_text("path,license\na.flac,CC0-1.0\n")
    assert fingerprint(*scan([root])) != tree
    assert again()[1] == {"a.flac": "CC0-1.0", "b.flac": "MIT"}


def test_file_tags_are_read_and_give_the_license_when_nothing_else_does(tmp_path: Path) -> None:
    import soundfile as sf
    from mutagen.id3 import ID3, TCOP, TIT2, TPE1, TXXX

    root = tmp_path / "root"
    root.mkdir()
    with sf.SoundFile(root / "tagged.flac", "w", 8000, 1) as f:
        f.title, f.artist, f.license, f.copyright = "Night Drive", "Dee", "CC-BY-4.0", "2026 Dee"
        f.write(tone(0.5))
    with sf.SoundFile(root / "copyright.wav", "w", 8000, 1) as f:
        f.title, f.copyright = "Room", "(c) 2026 Studio E"
        f.write(tone(0.5))
    write(root / "tagged.mp3", tone(1.0, sr=16000), sr=16000)
    id3 = ID3()
    for frame in (
        TIT2(encoding=3, text="Beat"),
        TPE1(encoding=3, text="Eve"),
        TCOP(encoding=3, text="2026 Eve"),
        TXXX(encoding=3, desc="LICENSE", text="CC0-1.0"),
    ):
        id3.add(frame)
    id3.save(root / "tagged.mp3")
    write(root / "plain.flac", tone(0.5))
    by = {r["rel_path"]: r for r in build_catalog([root], workers=1).rows}
    flac = by["tagged.flac"]
    assert (flac["tag_title"], flac["tag_artist"], flac["tag_license"]) == ("Night Drive", "Dee", "CC-BY-4.0")
    assert (flac["license"], flac["author"], flac["provenance_source"]) == ("CC-BY-4.0", "Dee", "tags")
    assert (by["copyright.wav"]["tag_title"], by["copyright.wav"]["tag_license"]) == ("Room", "(c) 2026 Studio E")
    mp3 = by["tagged.mp3"]
    assert (mp3["tag_title"], mp3["tag_artist"], mp3["tag_license"], mp3["license"]) == (
        "Beat",
        "Eve",
        "CC0-1.0",
        "CC0-1.0",
    )
    plain = by["plain.flac"]
    assert (plain["tag_title"], plain["tag_license"], plain["license"]) == (None, None, "unknown")
    _sidecar(root / "tagged.flac.json", {"license": "CC-BY-SA-4.0"})
    flac = {r["rel_path"]: r for r in build_catalog([root], workers=1).rows}["tagged.flac"]
    assert (flac["license"], flac["author"], flac["tag_license"]) == ("CC-BY-SA-4.0", "Dee", "CC-BY-4.0")
