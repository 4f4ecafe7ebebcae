"""The staging folder: layout, types, embedded media, browsable hard links, shard and row-group sizes,
no needless rewrites, bad input."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from music_assets.publish import layout
from music_assets.publish.staging import StagingError, StagingSettings, stage
from music_assets.publish.staging import shards as staging
from music_assets.rudiments.library import get_rudiment
from music_assets_tests.publish.conftest import EMBEDDED, build_staging, copy_tree, link_tree
from music_assets_tests.publish.labelled_dataset import SCORES

MEDIA = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
# the fixture's rudiments: single_stroke_roll, flam, single_paradiddle
FAMILIES = {"roll", "flam", "diddle"}


def _shard_of(row: dict, count: int = 1) -> str:
    return f"data/{get_rudiment(row['rudiment_slug']).category}/{row['split']}-00000-of-{count:05d}.parquet"


def _mtimes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_file_mode_layout(staged_files, labelled) -> None:
    s = staged_files.staging
    assert staged_files.data.mode == "files"
    assert {p.relative_to(s).as_posix() for p in (s / "data").rglob("*.parquet")} == {
        f"data/{family}/{split}-00000-of-00001.parquet"
        for family in FAMILIES
        for split in ("train", "validation", "test")
    }
    assert (s / "README.md").is_file() and (s / layout.SCORE_PLOT).is_file() and (s / layout.RUDIMENT_PLOT).is_file()
    assert {p.relative_to(s).as_posix() for p in (s / "auxiliary").rglob("*")} == {
        "auxiliary/strokes",
        "auxiliary/measures",
        *(
            f"auxiliary/{t}/{split}-00000-of-00001.parquet"
            for t in ("strokes", "measures")
            for split in ("train", "validation", "test")
        ),
    }
    assert not any(p.is_symlink() for p in s.rglob("*"))

    shard = pq.read_table(s / "data/flam/train-00000-of-00001.parquet")
    samples = pq.read_table(labelled.root / "rudiments/labels/samples.parquet")
    # every samples column but the data-dir paths, then the scores
    expected = (
        ["sample_id", "audio", "midi"]
        + [c for c in samples.column_names if c not in ("sample_id", "audio_path", "midi_path")]
        + list(SCORES)
    )
    assert shard.column_names == expected
    assert shard.num_rows == 2 and set(shard["split"].to_pylist()) == {"train"}
    assert set(shard["rudiment_slug"].to_pylist()) == {"flam"}
    for f in shard.schema:
        assert not pa.types.is_large_string(f.type), f.name
    # the media themselves are in the parquet, in both layouts
    assert shard.schema.field("audio").type == MEDIA and shard.schema.field("midi").type == MEDIA
    assert b'"audio": {"_type": "Audio"}' in shard.schema.metadata[b"huggingface"]
    row = shard.slice(0, 1).to_pylist()[0]
    src = labelled.root / "rudiments/audio/flam" / f"{row['sample_id']}.flac"
    assert row["audio"] == {"bytes": src.read_bytes(), "path": f"{row['sample_id']}.flac"}
    midi = labelled.root / "rudiments/midi/flam" / f"{row['sample_id']}.mid"
    assert row["midi"] == {"bytes": midi.read_bytes(), "path": f"{row['sample_id']}.mid"}
    # and browsable: hard links to the rendered files, named by the `path` fields
    assert os.path.samefile(s / "audio/flam" / row["audio"]["path"], staged_files.root / src.relative_to(labelled.root))
    assert (s / "midi/flam" / row["midi"]["path"]).read_bytes() == midi.read_bytes()
    assert staged_files.data.media.linked == 2 * len(labelled.sample_ids)
    # strokes and measures follow their sample's split
    strokes = pq.read_table(s / "auxiliary/strokes/validation-00000-of-00001.parquet")
    split_of = dict(zip(samples["sample_id"].to_pylist(), samples["split"].to_pylist(), strict=True))
    assert strokes.num_rows > 0 and {split_of[i] for i in strokes["sample_id"].to_pylist()} == {"validation"}


def test_row_groups_and_shards_are_sized_for_the_hub(
    staged_files, staged_embedded, tmp_path, labelled, monkeypatch
) -> None:
    for staged, limit_mb in ((staged_files, 500.0), (staged_embedded, EMBEDDED.shard_size_mb)):
        for path in (staged.staging / "data").rglob("*.parquet"):
            meta = pq.ParquetFile(path).metadata
            assert max(meta.row_group(g).num_rows for g in range(meta.num_row_groups)) <= 100
            assert path.stat().st_size <= limit_mb * 1e6 or meta.num_rows == 1, path
    # shards of at most 0.4 MB: both rows of a family's split (about 0.3 MB of FLAC) fit in one
    root = link_tree(labelled.root, tmp_path / "data")
    monkeypatch.setattr(staging, "SAMPLE_ROWS_PER_GROUP", 1)
    two = build_staging(root, root / "hf_staging", StagingSettings(file_budget=0, shard_size_mb=0.4))
    for family, by_split in two.data.shards.items():
        for split, rels in by_split.items():
            assert rels == [f"data/{family}/{split}-00000-of-00001.parquet"]
            meta = pq.ParquetFile(root / "hf_staging" / rels[0]).metadata
            assert meta.num_rows == 2 and meta.num_row_groups == 2
            assert (root / "hf_staging" / rels[0]).stat().st_size <= 0.4e6


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
    labels = root / "rudiments/labels"
    samples = pq.read_table(labels / "samples.parquet")
    dropped = samples.slice(0, 1).to_pylist()[0]
    # one sample re-rendered (new file replaces the old, as atomic writers do), one sample gone with its labels
    changed = next(r for r in samples.to_pylist() if r["split"] != dropped["split"])
    flac = root / changed["audio_path"]
    data = flac.read_bytes()
    flac.unlink()
    flac.write_bytes(data + b"\0")
    for name in ("samples", "strokes", "measures"):
        t = pq.read_table(labels / f"{name}.parquet")
        (labels / f"{name}.parquet").unlink()
        pq.write_table(t.filter(pc.not_equal(t["sample_id"], dropped["sample_id"])), labels / f"{name}.parquet")

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
    # only the shard that lost a row, the shard holding the new audio, the dropped sample's label shards
    # (and the card) are rewritten
    split = dropped["split"]
    assert sorted(again.data.parquet_written) == sorted(
        [
            _shard_of(dropped),
            _shard_of(changed),
            f"auxiliary/measures/{split}-00000-of-00001.parquet",
            f"auxiliary/strokes/{split}-00000-of-00001.parquet",
        ]
    )
    shard = pq.read_table(root / "hf_staging" / _shard_of(changed))
    audio = dict(zip(shard["sample_id"].to_pylist(), shard["audio"].to_pylist(), strict=True))
    assert audio[changed["sample_id"]]["bytes"] == data + b"\0"


def test_embedded_mode_keeps_only_the_parquet_files(staged_embedded, labelled) -> None:
    s = staged_embedded.staging
    assert staged_embedded.data.mode == "embedded"
    assert not (s / "audio").exists() and not (s / "midi").exists()
    by_family = layout.family_shards(s)
    assert set(by_family) == FAMILIES
    for family, shards in by_family.items():
        assert set(shards) == {"train", "validation", "test"}
        for split, files in shards.items():
            assert len(files) >= 2, (family, split)
            assert [layout.parse_shard_name(p.name)[1:] for p in files] == [(i, len(files)) for i in range(len(files))]
    t = pq.read_table(by_family["roll"]["train"][0])
    assert t.schema.field("audio").type == MEDIA
    assert b'"audio": {"_type": "Audio"}' in t.schema.metadata[b"huggingface"]
    row = t.slice(0, 1).to_pylist()[0]
    src = labelled.root / "rudiments/audio" / row["rudiment_slug"] / f"{row['sample_id']}.flac"
    assert row["audio"] == {"bytes": src.read_bytes(), "path": src.name}
    assert (
        row["midi"]["bytes"]
        == (labelled.root / "rudiments/midi" / row["rudiment_slug"] / f"{row['sample_id']}.mid").read_bytes()
    )
    shards = layout.split_shards(s)
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


def test_unknown_rudiments_and_label_rows_of_unknown_samples_are_refused(tmp_path: Path, labelled) -> None:
    root = link_tree(labelled.root, tmp_path / "data")
    strokes_path = root / "rudiments/labels/strokes.parquet"
    strokes = pq.read_table(strokes_path)
    strokes_path.unlink()
    ids = strokes["sample_id"].to_pylist()
    ids[3] = "no-such-sample"
    pq.write_table(strokes.set_column(0, "sample_id", pa.array(ids)), strokes_path)
    with pytest.raises(
        StagingError, match=r"strokes.parquet: 1 row\(s\) of sample_id\(s\) not in samples.parquet: no-such"
    ):
        stage(root, root / "hf_staging")
    s_path = root / "rudiments/labels/samples.parquet"
    samples = pq.read_table(s_path)
    s_path.unlink()
    slugs = samples["rudiment_slug"].to_pylist()
    slugs[0] = "triple_paradiddle_diddle"
    i = samples.column_names.index("rudiment_slug")
    pq.write_table(samples.set_column(i, "rudiment_slug", pa.array(slugs)), s_path)
    with pytest.raises(StagingError, match="unknown rudiment_slug triple_paradiddle_diddle"):
        stage(root, root / "hf_staging")


def test_a_folder_in_the_old_flat_layout_is_brought_to_the_new_one(tmp_path: Path, labelled, staged_files) -> None:
    root = link_tree(labelled.root, tmp_path / "data")
    link_tree(staged_files.staging, root / "hf_staging")
    old = ["data/train-00000-of-00001.parquet", "auxiliary/strokes.parquet", "auxiliary/measures.parquet"]
    for rel in old:
        shutil.copy(root / "hf_staging/auxiliary/strokes/train-00000-of-00001.parquet", root / "hf_staging" / rel)
    again = build_staging(root, root / "hf_staging")
    assert sorted(again.removed) == sorted(old) and again.data.parquet_written == []
    assert not any((root / "hf_staging" / rel).exists() for rel in old)


def _media_digests(root: Path) -> dict[str, str]:
    """What the partitions' manifests record: path relative to the data dir -> sha256."""
    from music_assets.io import sha256_file

    return {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.suffix in {".flac", ".mid"} and "hf_staging" not in p.parts
    }


def _shard_bytes(staging: Path) -> dict[str, bytes]:
    return {str(p.relative_to(staging)): p.read_bytes() for p in sorted(staging.rglob("*.parquet"))}


def test_recorded_media_hashes_make_shards_byte_identical_across_runs(tmp_path: Path, labelled) -> None:
    """Two runs that render the same bytes (new files, new modification times) stage byte-identical
    shards when the media's recorded sha256 identify them; a file whose content changed while its
    size and modification time were put back is still rebuilt."""
    roots = [copy_tree(labelled.root, tmp_path / name) for name in ("one", "two")]
    for p in roots[1].rglob("*"):
        if p.suffix in {".flac", ".mid"}:
            os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))  # re-rendered a second later
    shards = []
    for root in roots:
        stage(root, root / "hf_staging", EMBEDDED, media_digests=_media_digests(root))
        shards.append(_shard_bytes(root / "hf_staging"))
    assert shards[0] and shards[0] == shards[1]
    # Without recorded hashes the fingerprint falls back to modification times: the footers differ.
    for root in roots:
        shutil.rmtree(root / "hf_staging")
        stage(root, root / "hf_staging", EMBEDDED)
    assert _shard_bytes(roots[0] / "hf_staging") != _shard_bytes(roots[1] / "hf_staging")

    root = roots[0]
    stage(root, root / "hf_staging", EMBEDDED, media_digests=_media_digests(root))
    flac = next(p for p in sorted(root.rglob("*.flac")) if "hf_staging" not in p.parts)
    st, data = flac.stat(), bytearray(flac.read_bytes())
    data[-1] ^= 0xFF  # same size; then the old modification time back
    flac.write_bytes(bytes(data))
    os.utime(flac, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = stage(root, root / "hf_staging", EMBEDDED, media_digests=_media_digests(root))
    assert len(again.parquet_written) == 1, again.parquet_written
