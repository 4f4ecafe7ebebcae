"""Preparation to 48 kHz stereo 24-bit FLAC, trimming, normalization, quality score and the gates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from music_assets.audio.preparation import (
    QUALITY_WEIGHTS,
    PreparationError,
    check_prepared,
    prepare_source,
)
from music_assets.audio.signals import music_like, tone, write


def _gates(path: Path) -> dict[str, bool]:
    return {c.name: c.passed for c in check_prepared(path)}


def test_a_mono_source_becomes_48k_stereo_at_minus_1_dbfs(tmp_path: Path) -> None:
    src = write(tmp_path / "in.wav", 0.3 * music_like(32.0, 22050), sr=22050, subtype="PCM_16")
    p = prepare_source(src, tmp_path / "out.flac")
    audio, sr = sf.read(p.path)
    info = sf.info(p.path)
    assert (sr, audio.shape[1], info.subtype) == (48000, 2, "PCM_24")
    assert len(audio) / sr == pytest.approx(32.0, abs=1e-3)
    assert np.array_equal(audio[:, 0], audio[:, 1])
    assert 20 * np.log10(np.abs(audio).max()) == pytest.approx(-1.0, abs=0.001)
    assert not p.cut_at_max and p.source_offset_sec == 0.0 and (p.source_sample_rate, p.source_channels) == (22050, 1)
    assert _gates(p.path) == dict.fromkeys(_gates(p.path), True)
    assert 0 < p.quality_score <= 100
    assert p.quality_score == pytest.approx(
        sum(QUALITY_WEIGHTS[k] * v for k, v in p.quality_components.items()), abs=0.05
    )
    assert p.quality_components["stereo"] == 0.0 and p.quality_components["bandwidth"] == pytest.approx(0.5)
    again = prepare_source(src, tmp_path / "again.flac")
    assert again.path.read_bytes() == p.path.read_bytes()


def test_long_sources_are_cut_with_a_fade_and_leading_silence_is_dropped(tmp_path: Path) -> None:
    x = np.concatenate([np.zeros(8000 * 5, np.float32), music_like(50.0, 8000)])
    p = prepare_source(write(tmp_path / "in.flac", x), tmp_path / "out.flac", max_duration_sec=40.0)
    audio, sr = sf.read(p.path)
    assert len(audio) == 40 * 48000 and p.cut_at_max
    assert p.source_offset_sec == pytest.approx(5.0, abs=0.01)
    assert np.abs(audio[-10:]).max() < 1e-3  # faded out, no click at the cut


def test_leading_silence_is_kept_when_dropping_it_would_leave_too_little(tmp_path: Path) -> None:
    x = np.concatenate([np.zeros(8000 * 10, np.float32), music_like(25.0, 8000)])
    p = prepare_source(write(tmp_path / "in.flac", x), tmp_path / "out.flac")
    assert p.source_offset_sec == 0.0 and p.output.duration_sec == pytest.approx(35.0, abs=1e-3)


def test_more_than_two_channels_fold_to_stereo(tmp_path: Path) -> None:
    m = music_like(31.0, 8000)
    six = np.stack([m, 0 * m, m, 0 * m, m, 0 * m], axis=1)
    p = prepare_source(write(tmp_path / "in.wav", six, subtype="PCM_16"), tmp_path / "out.flac")
    audio, _ = sf.read(p.path)
    assert audio.shape[1] == 2 and np.abs(audio[:, 1]).max() < 1e-3 < np.abs(audio[:, 0]).max()


def test_sources_that_cannot_be_prepared_raise_naming_the_file(tmp_path: Path) -> None:
    short = write(tmp_path / "short.wav", music_like(20.0, 8000))
    with pytest.raises(PreparationError, match=r"short\.wav: 20\.0 s of audio, preparation needs at least 30 s"):
        prepare_source(short, tmp_path / "out.flac")
    silent = write(tmp_path / "silent.wav", np.zeros(8000 * 31, np.float32))
    with pytest.raises(PreparationError, match="silent.wav"):
        prepare_source(silent, tmp_path / "out.flac")
    assert not (tmp_path / "out.flac").exists()


def test_the_gates_fail_on_files_that_break_them(tmp_path: Path) -> None:
    clipped = np.clip(3 * music_like(20.0, 44100), -1, 1)
    assert _gates(write(tmp_path / "bad.flac", clipped, sr=44100, subtype="PCM_24")) == {
        "duration_in_range": False,
        "not_clipped": False,
        "not_mostly_silent": True,
        "format_48k_stereo": False,
    }
    quiet = np.concatenate([tone(10.0, sr=48000, channels=2), np.zeros((48000 * 25, 2), np.float32)])
    assert _gates(write(tmp_path / "quiet.flac", quiet, sr=48000, subtype="PCM_24")) == {
        "duration_in_range": True,
        "not_clipped": True,
        "not_mostly_silent": False,
        "format_48k_stereo": True,
    }
    (tmp_path / "gone.flac").write_bytes(b"")
    assert not any(_gates(tmp_path / "gone.flac").values())


def test_a_clipped_source_scores_lower(tmp_path: Path) -> None:
    clean = music_like(31.0, 8000, seed=5)
    hot = np.clip(4 * clean, -1, 1)
    a = prepare_source(write(tmp_path / "clean.wav", clean), tmp_path / "a.flac")
    b = prepare_source(write(tmp_path / "hot.wav", hot), tmp_path / "b.flac")
    assert b.quality_components["clipping"] == 0.0 < a.quality_components["clipping"]
    assert b.quality_score < a.quality_score
