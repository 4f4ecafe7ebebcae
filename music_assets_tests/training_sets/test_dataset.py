"""The set's layouts exactly as the ACE-Step trainers read them; split, hash, atomic swap and the gates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from music_assets.audio.io import write_flac
from music_assets.io import sha256_file
from music_assets.training_sets import checks, layouts
from music_assets.training_sets.captions import caption_record
from music_assets.training_sets.dataset import SetConfig, SetError, build_set, dataset_hash, split_tracks
from music_assets.training_sets.presets import load_presets

PRESETS = load_presets()
SPECS = [("a1", 96.0, "E minor"), ("b2", 68.0, "F major"), ("c3", 132.0, "G major"), ("d4", 80.0, "A minor")]


def make_tracks(folder: Path) -> list[dict]:
    """Four captioned tracks whose prepared files are short tones under `folder`."""
    tracks = []
    for i, (sid, bpm, key) in enumerate(SPECS):
        t = np.arange(48000 * 2) / 48000
        audio = 0.3 * np.sin(2 * np.pi * (220 + 30 * i) * t)
        path = write_flac(folder / f"{sid}.flac", np.stack([audio, audio], axis=1), 48000)
        ann = {
            "source_id": sid,
            "bpm": bpm,
            "key": key,
            "timesignature": 4,
            "annotation_source": {"bpm": "measured", "key": "measured", "timesignature": "measured"},
            "vocal": "instrumental",
        }
        cap = caption_record(ann, PRESETS)
        tracks.append(
            {
                **cap,
                "bpm": bpm,
                "bpm_confidence": 0.9,
                "key_confidence": 0.8,
                "timesignature_confidence": 0.3,
                "annotation_source": ann["annotation_source"],
                "duration_sec": 2.0,
                "prepared_path": str(path),
                "prepared_sha256": sha256_file(path),
                "title": f"song {sid}",
                "artist": "someone",
            }
        )
    return tracks


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "training_sets"
    summary = build_set(make_tracks(tmp_path / "prepared"), root, SetConfig(name="demo", repeat=3))
    return root / "demo", summary


def test_v1_layout_as_its_converter_and_trainer_read_it(built) -> None:
    from datasets import load_from_disk

    folder, summary = built
    train = folder / "ace_step_v1" / "train"
    stems = sorted(p.stem for p in train.glob("*.flac"))
    assert stems and summary["train"] == len(stems) == 3
    for stem in stems:
        assert (train / f"{stem}_prompt.txt").is_file() and (train / f"{stem}_lyrics.txt").is_file()
        tags = (train / f"{stem}_prompt.txt").read_text().split(", ")
        assert tags[-2] in {s[2] for s in SPECS} and tags[-3].endswith(" bpm") and tags[-1] == "4/4 time"
        assert (train / f"{stem}_lyrics.txt").read_text() == "[Instrumental]"
    ds = load_from_disk(str(folder / "ace_step_v1" / "train_hf"))
    assert ds.column_names == ["keys", "filename", "tags", "speaker_emb_path", "norm_lyrics", "recaption"]
    assert len(ds) == 3 * 3  # tracks x repeat
    row = ds[0]
    assert row["filename"] == str(train / f"{row['keys']}.flac") and Path(row["filename"]).is_file()
    assert row["speaker_emb_path"] == "" and row["recaption"] == {} and isinstance(row["tags"], list)
    assert len(load_from_disk(str(folder / "ace_step_v1" / "validation_hf"))) == 1


def test_v15_layout_as_its_dataset_scan_reads_it(built) -> None:
    folder, _ = built
    for split in ("train", "validation"):
        d = folder / "ace_step_v15" / split
        header = (d / "key_bpm.csv").read_text().splitlines()[0]
        assert header == "File,Artist,Title,BPM,Key,Camelot"
        _, rows = layouts.read_v15_csv(d)
        assert sorted(r["File"] for r in rows) == sorted(p.name for p in d.glob("*.flac"))
        for audio in d.glob("*.flac"):
            meta = json.loads(audio.with_suffix(".json").read_text())
            assert list(meta) == ["caption", "bpm", "keyscale", "timesignature", "language", "is_instrumental"]
            assert isinstance(meta["bpm"], int) and meta["timesignature"] == "4" and meta["language"] == "instrumental"
            assert meta["keyscale"] in {s[2] for s in SPECS}
            assert (d / f"{audio.stem}.lyrics.txt").read_text() == "[Instrumental]"
            assert (d / f"{audio.stem}.caption.txt").read_text() == meta["caption"]
            row = next(r for r in rows if r["File"] == audio.name)
            assert row["BPM"] == str(meta["bpm"]) and row["Key"] == meta["keyscale"] and row["Artist"] == "someone"


def test_split_is_seeded_and_order_free() -> None:
    stems = [f"s{i:02d}" for i in range(25)]
    a = split_tracks(stems, 0.1, seed=1)
    assert a == split_tracks(list(reversed(stems)), 0.1, seed=1)
    assert sum(v == "validation" for v in a.values()) == 2  # round(2.5), and at least one
    assert sum(v == "validation" for v in split_tracks(stems[:3], 0.1, 0).values()) == 1
    assert any(split_tracks(stems, 0.1, seed=s) != a for s in range(2, 6))
    with pytest.raises(SetError, match="at least 2 tracks"):
        split_tracks(["only"], 0.1, 0)


def test_hash_is_reproducible_and_follows_the_content(tmp_path: Path) -> None:
    one = build_set(make_tracks(tmp_path / "p1"), tmp_path / "d1", SetConfig(name="x"))
    two = build_set(make_tracks(tmp_path / "p2"), tmp_path / "d2", SetConfig(name="x"))
    assert one["dataset_hash"] == two["dataset_hash"]  # same inputs elsewhere, same hash
    tracks = make_tracks(tmp_path / "p3")
    tracks[0]["caption"] = tracks[0]["caption"].replace("funk", "disco")
    three = build_set(tracks, tmp_path / "d3", SetConfig(name="x"))
    assert three["dataset_hash"] != one["dataset_hash"]
    assert dataset_hash([], SetConfig(repeat=1)) != dataset_hash([], SetConfig(repeat=2))


def test_a_failed_build_leaves_the_previous_set_whole(tmp_path: Path, built) -> None:
    folder, summary = built
    before = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    tracks = make_tracks(tmp_path / "prepared2")
    Path(tracks[1]["prepared_path"]).write_bytes(b"changed")
    with pytest.raises(SetError, match="changed since it was annotated"):
        build_set(tracks, folder.parent, SetConfig(name="demo", repeat=3))
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == before
    assert json.loads((folder / "summary.json").read_text())["dataset_hash"] == summary["dataset_hash"]
    assert not list((folder.parent / ".staging").glob("demo.*"))


def test_config_is_validated_before_any_file(tmp_path: Path) -> None:
    for bad in (
        SetConfig(name="../up"),
        SetConfig(name="annotations"),
        SetConfig(repeat=0),
        SetConfig(validation_fraction=1.0),
        SetConfig(audio_format="wav"),
    ):
        with pytest.raises(SetError):
            build_set([], tmp_path / "ts", bad)
    assert not (tmp_path / "ts").exists()


def test_mp3_layout_is_320_kbps(tmp_path: Path) -> None:
    import soundfile as sf

    build_set(make_tracks(tmp_path / "p"), tmp_path / "ts", SetConfig(name="m", audio_format="mp3", repeat=1))
    mp3 = next((tmp_path / "ts" / "m" / "ace_step_v1" / "train").glob("*.mp3"))
    kbps = mp3.stat().st_size * 8 / sf.info(str(mp3)).duration / 1000
    assert 300 <= kbps <= 340
    assert checks.datasets_loads_rows_match(tmp_path / "ts" / "m").passed


def test_gates_pass_on_a_good_set(built) -> None:
    folder, _ = built
    outcomes = [
        checks.annotations_complete(folder),
        checks.tags_from_vocabulary(folder, PRESETS),
        checks.caption_tempo_matches_bpm(folder),
        checks.split_has_validation(folder),
        checks.datasets_loads_rows_match(folder),
        checks.low_confidence(folder, 0.43, 0.5),
    ]
    assert all(o.passed for o in outcomes), [o.description for o in outcomes if not o.passed]
    balance = checks.style_balance(folder, PRESETS, 0.1)
    table = balance.metadata["style_distribution"].rows
    assert table and sum(r["tracks"] for r in table if r["style"] == "(all)") == 4


def _first(folder: Path, pattern: str) -> Path:
    return next(folder.glob(pattern))


def test_gates_catch_what_a_trainer_would_get_wrong(built) -> None:
    folder, _ = built
    train1, train15 = folder / "ace_step_v1" / "train", folder / "ace_step_v15" / "train"
    prompt = _first(train1, "*_prompt.txt")
    prompt.write_text(prompt.read_text() + ", dubstep")
    assert "dubstep" in checks.tags_from_vocabulary(folder, PRESETS).description
    cap = _first(train15, "*.caption.txt")
    cap.write_text(cap.read_text().replace(" BPM", "0 BPM", 1))
    assert not checks.caption_tempo_matches_bpm(folder).passed
    # a row that no longer matches its folder's files
    lyrics = _first(train1, "*_lyrics.txt")
    lyrics.write_text("[Verse]\nchanged")
    assert "first difference" in checks.datasets_loads_rows_match(folder).description
    shutil.rmtree(folder / "ace_step_v1" / "validation_hf")
    assert "load_from_disk failed" in checks.datasets_loads_rows_match(folder).description
    for f in (folder / "ace_step_v15" / "validation").glob("*.flac"):
        f.unlink()
    assert not checks.split_has_validation(folder).passed


def test_warnings(built) -> None:
    folder, _ = built
    tracks = json.loads((folder / "tracks.json").read_text())
    tracks[0]["bpm_confidence"] = 0.1
    (folder / "tracks.json").write_text(json.dumps(tracks))
    low = checks.low_confidence(folder, 0.43, 0.5)
    first = low.metadata["low_confidence_files"].rows[0]
    assert not low.passed and first["file"] == f"{tracks[0]['stem']}.flac" and first["field"] == "bpm"
    assert checks.style_balance(folder, PRESETS, 0.5).passed  # 2 core + 2 instrumental
    assert not checks.style_balance(folder, PRESETS, 0.6).passed
