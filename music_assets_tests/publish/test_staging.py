"""The staging folder: layout, types, media by hard link, embedded shards, no needless rewrites, bad input."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from music_assets.publish import layout
from music_assets.publish.staging import StagingError, stage
from music_assets_tests.publish.conftest import EMBEDDED, build_staging, link_tree
from music_assets_tests.publish.labelled_dataset import SCORES


def _mtimes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_file_mode_layout(staged_files, labelled) -> None:
    s = staged_files.staging
    assert staged_files.data.mode == "files"
    assert sorted(p.name for p in (s / "data").iterdir()) == [
        "test-00000-of-00001.parquet",
        "train-00000-of-00001.parquet",
        "validation-00000-of-00001.parquet",
    ]
    assert (s / "README.md").is_file() and (s / layout.SCORE_PLOT).is_file() and (s / layout.RUDIMENT_PLOT).is_file()
    assert {p.name for p in (s / "auxiliary").iterdir()} == {"strokes.parquet", "measures.parquet"}
    assert not any(p.is_symlink() for p in s.rglob("*"))

    train = pq.read_table(s / "data" / "train-00000-of-00001.parquet")
    samples = pq.read_table(labelled.root / "rudiments/labels/samples.parquet")
    # every samples column but the data-dir paths, then the scores; audio/midi relative to staging
    expected = (
        ["sample_id", "audio", "midi"]
        + [c for c in samples.column_names if c not in ("sample_id", "audio_path", "midi_path")]
        + list(SCORES)
    )
    assert train.column_names == expected
    assert train.num_rows == 6 and set(train["split"].to_pylist()) == {"train"}
    for f in train.schema:
        assert not pa.types.is_large_string(f.type), f.name
    assert train.schema.field("audio").type == pa.string() and train.schema.field("midi").type == pa.string()
    row = train.slice(0, 1).to_pylist()[0]
    assert row["audio"] == f"audio/{row['rudiment_slug']}/{row['sample_id']}.flac"
    assert row["midi"] == f"midi/{row['rudiment_slug']}/{row['sample_id']}.mid"
    # media are hard links to the rendered files
    src = labelled.root / "rudiments/audio" / row["rudiment_slug"] / f"{row['sample_id']}.flac"
    assert os.path.samefile(s / row["audio"], staged_files.root / src.relative_to(labelled.root))
    assert staged_files.data.media.linked == 2 * len(labelled.sample_ids)


def test_rerun_with_unchanged_inputs_rewrites_nothing(tmp_path: Path, labelled, staged_files) -> None:
    # a data dir with the same inputs and the staging folder a previous run left there
    root = link_tree(labelled.root, tmp_path / "data")
    link_tree(staged_files.staging, root / "hf_staging")
    before = _mtimes(root / "hf_staging")
    inodes = {p: (root / "hf_staging" / p).stat().st_ino for p in before}
    again = build_staging(root, root / "hf_staging")
    assert again.data.media.written == 0 and again.data.media.unchanged == 2 * len(labelled.sample_ids)
    assert again.data.parquet_written == [] and again.card.written == [] and again.removed == []
    assert _mtimes(root / "hf_staging") == before
    assert {p: (root / "hf_staging" / p).stat().st_ino for p in before} == inodes


def test_copies_where_hard_links_fail_and_keeps_unchanged_copies(
    tmp_path: Path, labelled, staged_files, monkeypatch
) -> None:
    root = link_tree(labelled.root, tmp_path / "data")
    link_tree(staged_files.staging, root / "hf_staging")
    for media in ("audio", "midi"):
        shutil.rmtree(root / "hf_staging" / media)

    def no_links(src, dst, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    first = build_staging(root, root / "hf_staging")
    assert first.data.media.copied == 2 * len(labelled.sample_ids) and first.data.media.linked == 0
    some = next((root / "hf_staging" / "audio").rglob("*.flac"))
    assert some.stat().st_nlink == 1 and not some.is_symlink()
    before = _mtimes(root / "hf_staging" / "audio")
    again = build_staging(root, root / "hf_staging")
    assert again.data.media.written == 0
    assert _mtimes(root / "hf_staging" / "audio") == before


def test_changed_and_removed_samples_update_only_what_changed(tmp_path: Path, labelled, staged_files) -> None:
    root = link_tree(labelled.root, tmp_path / "data")
    link_tree(staged_files.staging, root / "hf_staging")
    samples_path = root / "rudiments/labels/samples.parquet"
    samples = pq.read_table(samples_path)
    dropped = samples.slice(0, 1).to_pylist()[0]
    # one sample re-rendered (new file replaces the old, as atomic writers do), one sample gone
    changed = samples.slice(1, 1).to_pylist()[0]
    flac = root / changed["audio_path"]
    data = flac.read_bytes()
    flac.unlink()
    flac.write_bytes(data + b"\0")
    samples_path.unlink()
    pq.write_table(samples.slice(1), samples_path)

    again = build_staging(root, root / "hf_staging")
    assert again.data.media.written == 1
    staged_audio = root / "hf_staging" / f"audio/{changed['rudiment_slug']}/{changed['sample_id']}.flac"
    assert staged_audio.read_bytes() == data + b"\0"
    gone = {
        f"audio/{dropped['rudiment_slug']}/{dropped['sample_id']}.flac",
        f"midi/{dropped['rudiment_slug']}/{dropped['sample_id']}.mid",
    }
    assert gone <= set(again.removed)
    assert not any((root / "hf_staging" / g).exists() for g in gone)
    # only the split that lost a row and the card are rewritten
    split = dropped["split"]
    assert again.data.parquet_written == [f"data/{split}-00000-of-00001.parquet"]


def test_embedded_mode_shards_media_into_parquet(staged_embedded, labelled) -> None:
    s = staged_embedded.staging
    assert staged_embedded.data.mode == "embedded"
    assert not (s / "audio").exists() and not (s / "midi").exists()
    shards = layout.split_shards(s)
    assert set(shards) == {"train", "validation", "test"}
    for split, files in shards.items():
        assert len(files) >= 2, split
        assert [layout.parse_shard_name(p.name)[1:] for p in files] == [(i, len(files)) for i in range(len(files))]
    t = pq.read_table(shards["train"][0])
    audio_type = t.schema.field("audio").type
    assert audio_type == pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    assert b'"audio": {"_type": "Audio"}' in t.schema.metadata[b"huggingface"]
    row = t.slice(0, 1).to_pylist()[0]
    src = labelled.root / "rudiments/audio" / row["rudiment_slug"] / f"{row['sample_id']}.flac"
    assert row["audio"] == {"bytes": src.read_bytes(), "path": src.name}
    assert (
        row["midi"]["bytes"]
        == (labelled.root / "rudiments/midi" / row["rudiment_slug"] / f"{row['sample_id']}.mid").read_bytes()
    )
    assert sum(pq.ParquetFile(p).metadata.num_rows for ps in shards.values() for p in ps) == len(labelled.sample_ids)


def test_switching_to_embedded_removes_the_media_files_and_a_rerun_keeps_the_shards(
    tmp_path: Path, labelled, staged_embedded
) -> None:
    assert {r for r in staged_embedded.removed if r.startswith(("audio/", "midi/"))} == {
        f"{kind}/{p.parent.name}/{p.name}"
        for kind in ("audio", "midi")
        for p in (labelled.root / "rudiments" / kind).rglob("*.*")
    }
    root = link_tree(labelled.root, tmp_path / "data")
    link_tree(staged_embedded.staging, root / "hf_staging")
    before = _mtimes(root / "hf_staging")
    again = build_staging(root, root / "hf_staging", EMBEDDED)
    assert again.data.parquet_written == [] and again.card.written == [] and again.removed == []
    assert _mtimes(root / "hf_staging") == before


def test_missing_inputs_are_named(tmp_path: Path, labelled) -> None:
    root = link_tree(labelled.root, tmp_path / "data")
    gone = next((root / "rudiments/audio").rglob("*.flac"))
    gone.unlink()
    with pytest.raises(StagingError, match=rf"1 media file\(s\) missing: {gone}"):
        stage(root, root / "hf_staging")
    (root / "rudiments/labels/exercises.parquet").unlink()
    with pytest.raises(StagingError, match=r"exercises.parquet: missing; materialize rudiment_labels first"):
        stage(root, root / "hf_staging")


def test_samples_without_scores_or_with_bad_split_are_refused(tmp_path: Path, labelled) -> None:
    root = link_tree(labelled.root, tmp_path / "data")
    ex_path = root / "rudiments/labels/exercises.parquet"
    ex = pq.read_table(ex_path)
    ex_path.unlink()
    pq.write_table(ex.slice(1), ex_path)
    with pytest.raises(StagingError, match="no exercise scores for sample"):
        stage(root, root / "hf_staging")
    pq.write_table(ex, ex_path)
    s_path = root / "rudiments/labels/samples.parquet"
    samples = pq.read_table(s_path)
    s_path.unlink()
    splits = samples["split"].to_pylist()
    splits[0] = "dev"
    pq.write_table(samples.set_column(samples.column_names.index("split"), "split", pa.array(splits)), s_path)
    with pytest.raises(StagingError, match="split must be one of train, validation, test, got dev"):
        stage(root, root / "hf_staging")
