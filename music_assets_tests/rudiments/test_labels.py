"""Label merging (streamed, joined with audio), the file-based checks, and realism at demo scale."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from music_assets import layout
from music_assets.io import write_parquet
from music_assets.rudiments.dataset import DatasetSettings, generate_partition
from music_assets.rudiments.labels import (
    LabelsError,
    TableSet,
    check_integrity,
    check_realism,
    check_scores,
    check_stroke_counts,
    check_tempos,
    merge_labels,
)
from music_assets.rudiments.library import load_library
from music_assets.rudiments.midi import write_midi
from music_assets.rudiments.performance import compiled, perform
from music_assets.rudiments.profiles import generate_profiles
from music_assets_tests.rudiments.audio_stub import render_stub_audio
from music_assets_tests.rudiments.test_performance import PERFECT

SLUGS = ["single_paradiddle", "flam_accent", "drag"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Three partitions (8 players each) with stand-in audio, merged into labels."""
    root = tmp_path_factory.mktemp("labels") / "data"
    settings = DatasetSettings.resolve("demo", num_profiles=8)
    profiles = generate_profiles(settings.num_profiles, settings.seed)
    lib = load_library()
    for slug in SLUGS:
        generate_partition(lib[slug], profiles, settings, root)
    render_stub_audio(root, SLUGS)
    merge_labels(SLUGS, root)
    return root


@pytest.fixture
def copy(dataset: Path, tmp_path: Path) -> Path:
    """A private copy to break things in."""
    root = tmp_path / "data"
    shutil.copytree(dataset, root)
    return root


def _labels(root: Path) -> TableSet:
    return TableSet.in_folder(layout.labels_dir(root))


def test_merge_writes_all_partitions_one_row_group_each(dataset: Path) -> None:
    tables = _labels(dataset)
    samples = pd.read_parquet(tables.samples)
    assert len(samples) == 3 * 8 and samples["rudiment_slug"].drop_duplicates().tolist() == SLUGS
    for col in ("audio_path", "soundfont", "aug_preset", "audio_duration_sec", "split", "midi_path", "skill_tier"):
        assert col in samples.columns
    assert samples["audio_path"].notna().all()
    for name, path in tables.paths.items():
        meta = pq.ParquetFile(path).metadata
        assert meta.num_row_groups == len(SLUGS), name  # written one partition at a time
        if name != "samples":
            per_partition = sum(
                pq.read_metadata(layout.performance_dir(s, dataset) / f"{name}.parquet").num_rows for s in SLUGS
            )
            assert meta.num_rows == per_partition
    assert pq.read_schema(tables.samples).field("sample_id").type == pa.string()


def test_checks_pass_on_the_merged_labels(dataset: Path) -> None:
    tables = _labels(dataset)
    for outcome in (
        check_integrity(tables, dataset, require_audio=True),
        check_scores(tables),
        check_stroke_counts(tables, dataset),
    ):
        assert outcome.passed, outcome.description


def test_integrity_fails_without_the_audio_file(copy: Path) -> None:
    victim = pd.read_parquet(_labels(copy).samples)["audio_path"].iloc[5]
    (copy / victim).unlink()
    outcome = check_integrity(_labels(copy), copy, require_audio=True)
    assert not outcome.passed and "without their audio file" in outcome.description
    assert Path(victim).stem in outcome.metadata["examples"]


def test_integrity_fails_on_orphan_rows_and_missing_midi(copy: Path) -> None:
    tables = _labels(copy)
    strokes = pq.read_table(tables.strokes)
    orphan = strokes.slice(0, 1).set_column(0, "sample_id", pa.array(["nobody"], pa.string()))
    write_parquet(tables.strokes, pa.concat_tables([strokes, orphan]))
    (copy / pd.read_parquet(tables.samples)["midi_path"].iloc[0]).unlink()
    outcome = check_integrity(tables, copy)
    assert not outcome.passed
    assert (
        outcome.metadata["strokes rows without a sample"] == 1
        and outcome.metadata["samples without their MIDI file"] == 1
    )


def test_scores_check_fails_outside_0_100(copy: Path) -> None:
    tables = _labels(copy)
    ex = pd.read_parquet(tables.exercises)
    ex.loc[3, "hand_balance"] = 120.0
    write_parquet(tables.exercises, pa.Table.from_pandas(ex, preserve_index=False))
    outcome = check_scores(tables)
    assert not outcome.passed and "hand_balance" in outcome.description


def test_stroke_count_check_fails_when_the_midi_disagrees(copy: Path) -> None:
    tables = _labels(copy)
    row = pd.read_parquet(tables.samples).iloc[2]
    other = perform(compiled(row["rudiment_slug"]), PERFECT, 90, 1, False, __import__("numpy").random.default_rng(0))
    write_midi(other, copy / row["midi_path"])
    outcome = check_stroke_counts(tables, copy)
    assert not outcome.passed and outcome.metadata["count mismatches"] == 1
    assert row["sample_id"] in outcome.metadata["examples"]


def test_tempo_check_fails_outside_the_ranges(copy: Path) -> None:
    tables = TableSet.in_folder(layout.performance_dir("drag", copy))
    profiles = generate_profiles(8, 0)
    assert check_tempos(tables, load_library(), profiles).passed
    samples = pd.read_parquet(tables.samples)
    samples.loc[1, "tempo_bpm"] = 250.0
    write_parquet(tables.samples, pa.Table.from_pandas(samples, preserve_index=False))
    outcome = check_tempos(tables, load_library(), profiles)
    assert not outcome.passed and samples.loc[1, "sample_id"] in outcome.metadata["examples"]


def test_merge_needs_every_partitions_audio(copy: Path) -> None:
    (layout.performance_dir("drag", copy) / "audio.parquet").unlink()
    before = (layout.labels_dir(copy) / "samples.parquet").read_bytes()
    with pytest.raises(LabelsError, match=r"drag/audio\.parquet: missing"):
        merge_labels(SLUGS, copy)
    assert (layout.labels_dir(copy) / "samples.parquet").read_bytes() == before  # nothing written is lost
    assert not list(layout.labels_dir(copy).glob(".*partial"))


def test_realism_check_can_fail(copy: Path) -> None:
    tables = TableSet.in_folder(layout.performance_dir("flam_accent", copy))
    strokes = pq.read_table(tables.strokes).to_pandas()
    strokes["timing_error_ms"] *= 6  # far too sloppy for every tier
    write_parquet(tables.strokes, pa.Table.from_pandas(strokes, preserve_index=False))
    outcome, table = check_realism(tables)
    assert not outcome.passed and "professional: mean timing SD" in outcome.description
    assert set(table["tier"]) == {"beginner", "intermediate", "advanced", "professional"}


def test_regenerating_with_fewer_players_removes_their_midi(tmp_path: Path) -> None:
    r = load_library()["flam"]
    for n in (8, 4):
        settings = DatasetSettings.resolve("demo", num_profiles=n)
        result = generate_partition(r, generate_profiles(n, 0), settings, tmp_path)
    assert result.removed_stale_midi == 4 and result.samples.num_rows == 4
    assert len(list(layout.midi_dir("flam", tmp_path).glob("*.mid"))) == 4


def test_regenerating_sweeps_the_temp_files_of_a_killed_writer(tmp_path: Path) -> None:
    r = load_library()["flam"]
    settings = DatasetSettings.resolve("demo", num_profiles=4)
    first = generate_partition(r, generate_profiles(4, 0), settings, tmp_path)
    midi, tables = layout.midi_dir("flam", tmp_path), layout.performance_dir("flam", tmp_path)
    left = [midi / ".flam-p00001-t0-b8.mid.4242-0badf00d.partial", tables / ".strokes.parquet.4242-0badf00d.partial"]
    for p in left:
        p.write_bytes(b"half a file")
    again = generate_partition(r, generate_profiles(4, 0), settings, tmp_path)
    assert not any(p.exists() for p in left)
    assert again.samples.equals(first.samples)


def test_realism_at_demo_scale(tmp_path: Path) -> None:
    """The demo preset (40 rudiments x 20 players) lands in the published ranges, tiers ordered."""
    settings = DatasetSettings.resolve("demo")
    profiles = generate_profiles(settings.num_profiles, settings.seed)
    sets = []
    for slug, r in load_library().items():
        generate_partition(r, profiles, settings, tmp_path)
        sets.append(TableSet.in_folder(layout.performance_dir(slug, tmp_path)))
    outcome, table = check_realism(sets)
    assert outcome.passed, outcome.description
    assert table["samples"].sum() == 800
    assert (table["timing_sd_in_range"] >= 0.8).all() and (table["velocity_cv_in_range"] >= 0.8).all()


def test_partitions_are_written_and_merged_in_bounded_chunks(tmp_path: Path, monkeypatch) -> None:
    """A full-preset partition has 2,500 samples: generating writes its tables a chunk of samples
    at a time and merging copies them a batch of rows at a time, with the same rows as in one go."""
    from music_assets.rudiments import dataset
    from music_assets.rudiments.labels import merge as labels

    r = load_library()["flam"]
    settings = DatasetSettings.resolve("demo", num_profiles=8)
    profiles = generate_profiles(8, 0)
    whole = generate_partition(r, profiles, settings, tmp_path / "whole")
    monkeypatch.setattr(dataset, "CHUNK_SAMPLES", 3)
    monkeypatch.setattr(labels, "MERGE_BATCH_ROWS", 50)
    chunked = generate_partition(r, profiles, settings, tmp_path / "chunked")
    assert chunked.samples.equals(whole.samples) and chunked.samples.num_rows == 8
    for name in layout.PARTITION_TABLES:
        a = pq.ParquetFile(layout.performance_dir("flam", tmp_path / "whole") / f"{name}.parquet")
        b = pq.ParquetFile(layout.performance_dir("flam", tmp_path / "chunked") / f"{name}.parquet")
        assert b.metadata.num_row_groups == 3 and a.metadata.num_row_groups == 1, name  # 3 + 3 + 2 samples
        assert b.read().equals(a.read()), name
    render_stub_audio(tmp_path / "chunked", ["flam"])
    merge_labels(["flam"], tmp_path / "chunked")
    merged = _labels(tmp_path / "chunked").strokes
    assert pq.read_table(merged).equals(
        pq.read_table(layout.performance_dir("flam", tmp_path / "chunked") / "strokes.parquet")
    )
    meta = pq.ParquetFile(merged).metadata
    assert meta.num_rows > 100 and max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) <= 50
