"""Sidecar and provenance.csv overrides: precedence, bad values named, lyrics paths kept inside the roots."""

from __future__ import annotations

import json
from pathlib import Path

from music_assets.training_sets.overrides import read_overrides


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "raw"
    (root / "tracks").mkdir(parents=True)
    (root / "tracks" / "song.flac").write_bytes(b"")
    data = tmp_path / "data"
    data.mkdir()
    return root, data


def test_sidecar_wins_over_csv_field_by_field(tmp_path: Path) -> None:
    root, data = _tree(tmp_path)
    (root / "tracks" / "song.flac.json").write_text(json.dumps({"bpm": "92", "key": "e-flat major"}))
    (root / "provenance.csv").write_text("path,bpm,timesignature,style\n./tracks/song.flac,120,3/4,jazzhop\n")
    ov = read_overrides(root, "tracks/song.flac", data)
    assert ov.values == {"bpm": 92.0, "key": "Eb major", "timesignature": 3, "style": "jazzhop"}
    assert ov.sources == {"bpm": "sidecar", "key": "sidecar", "timesignature": "csv", "style": "csv"}
    assert ov.problems == []


def test_bad_values_are_named_and_not_used(tmp_path: Path) -> None:
    root, data = _tree(tmp_path)
    (root / "tracks" / "song.json").write_text(json.dumps({"bpm": "fast", "key": "H dorian", "timesignature": 5}))
    ov = read_overrides(root, "tracks/song.flac", data)
    assert ov.values == {} and len(ov.problems) == 3 and not ov.blocking
    assert all("song.json" in p for p in ov.problems)
    assert any("bpm 'fast' is not a number" in p for p in ov.problems)


def test_lyrics_file_is_read_when_inside_the_root(tmp_path: Path) -> None:
    root, data = _tree(tmp_path)
    (root / "tracks" / "song.txt").write_text("[Verse]\nhello\n")
    (root / "tracks" / "song.flac.json").write_text(json.dumps({"lyrics": "song.txt", "language": "en"}))
    ov = read_overrides(root, "tracks/song.flac", data)
    assert ov.lyrics_text == "[Verse]\nhello" and ov.sources["lyrics"] == "sidecar" and ov.values["language"] == "en"


def test_lyrics_outside_the_roots_or_missing_keep_the_track_out(tmp_path: Path) -> None:
    root, data = _tree(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("not lyrics")
    (root / "tracks" / "link.txt").symlink_to(secret)
    for value, reason in (("../../secret.txt", "outside"), ("link.txt", "outside"), ("nope.txt", "does not exist")):
        (root / "tracks" / "song.flac.json").write_text(json.dumps({"lyrics": value}))
        ov = read_overrides(root, "tracks/song.flac", data)
        assert ov.lyrics_text is None and "lyrics" not in ov.values
        assert len(ov.blocking) == 1 and reason in ov.blocking[0] and "song.flac.json" in ov.blocking[0]


def test_malformed_sidecar_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    root, data = _tree(tmp_path)
    (root / "tracks" / "song.flac.json").write_text("{not json")
    ov = read_overrides(root, "tracks/song.flac", data)
    assert ov.values == {} and "not readable JSON" in ov.problems[0]
