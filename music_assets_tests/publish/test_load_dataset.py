"""The staged folder loads as a Hub user loads the pushed repository: `datasets.load_dataset(folder)` with no
data_files and no casting, a family subset, streaming, and the stroke table; audio decodes in each, in both the
small (browsable media files) and the large (parquet only) layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from music_assets.publish.checks import offline_datasets
from music_assets.rudiments.library import get_rudiment

SPLITS = ("train", "validation", "test")


@pytest.fixture(params=["staged_files", "staged_embedded"])
def staged(request):
    return request.getfixturevalue(request.param)


def _assert_decodes(row: dict, root: Path) -> None:
    """The row's audio is the rendered file, decoded: same rate, same length; its MIDI is the file's bytes."""
    src = root / "rudiments/audio" / row["rudiment_slug"] / f"{row['sample_id']}.flac"
    info = sf.info(src)
    audio = row["audio"]
    assert audio["sampling_rate"] == 44100 == info.samplerate
    assert len(audio["array"]) == info.frames > 0
    samples = audio.get_all_samples()
    assert samples.sample_rate == 44100 and tuple(samples.data.shape) == (info.channels, info.frames)
    midi = root / "rudiments/midi" / row["rudiment_slug"] / f"{row['sample_id']}.mid"
    assert row["midi"]["bytes"] == midi.read_bytes()


def test_load_dataset_of_the_folder_decodes_audio_everywhere(staged, labelled, tmp_path: Path) -> None:
    folder, root = str(staged.staging), labelled.root
    with offline_datasets():  # no network in tests; a local folder needs none anyway
        import datasets

        ds = datasets.load_dataset(folder, cache_dir=str(tmp_path / "cache"))
        assert list(ds) == list(SPLITS)
        assert {s: ds[s].num_rows for s in SPLITS} == {
            s: sum(1 for p in labelled.profiles.values() if p == s) * 3 for s in SPLITS
        }
        assert isinstance(ds["train"].features["audio"], datasets.Audio)
        for split in SPLITS:
            _assert_decodes(ds[split][0], root)
        assert sorted(i for s in SPLITS for i in ds[s]["sample_id"]) == sorted(labelled.sample_ids)

        flam = datasets.load_dataset(folder, "flam", cache_dir=str(tmp_path / "cache"))
        assert list(flam) == list(SPLITS) and isinstance(flam["test"].features["audio"], datasets.Audio)
        assert {s: flam[s].num_rows for s in SPLITS} == dict.fromkeys(SPLITS, 2)
        assert {get_rudiment(r).category for s in SPLITS for r in flam[s]["rudiment_slug"]} == {"flam"}
        _assert_decodes(flam["validation"][1], root)

        streamed = datasets.load_dataset(folder, streaming=True)
        assert isinstance(streamed, datasets.IterableDatasetDict) and list(streamed) == list(SPLITS)
        rows = list(streamed["test"])
        assert len(rows) == ds["test"].num_rows
        _assert_decodes(rows[-1], root)
        first_flam = next(iter(datasets.load_dataset(folder, "flam", split="train", streaming=True)))
        assert first_flam["rudiment_slug"] == "flam"
        _assert_decodes(first_flam, root)

        strokes = datasets.load_dataset(folder, "strokes", cache_dir=str(tmp_path / "cache"))
        assert list(strokes) == list(SPLITS) and "audio" not in strokes["train"].features
        train_ids = set(ds["train"]["sample_id"])
        assert set(strokes["train"]["sample_id"]) == train_ids
        assert sum(strokes[s].num_rows for s in SPLITS) == 6 * len(labelled.sample_ids)  # six strokes each
        measures = datasets.load_dataset(folder, "measures", split="validation", cache_dir=str(tmp_path / "cache"))
        assert set(measures["sample_id"]) == set(ds["validation"]["sample_id"])
