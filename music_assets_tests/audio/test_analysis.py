"""Streaming audio measurements on generated signals with known answers."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest

from music_assets.audio.analysis import DB_FLOOR, AudioAnalysisError, analyze_array, analyze_file
from music_assets.audio.signals import music_like, tone, write
from music_assets_tests.audio.audio_trees import truncate


def test_a_sine_at_minus_6_dbfs() -> None:
    s = analyze_array(tone(2.0, sr=48000, amp=0.5, freq=1000.0), 48000)
    assert s.peak_dbfs == pytest.approx(-6.02, abs=0.01)
    assert s.rms_dbfs == pytest.approx(-6.02 - 3.01, abs=0.01)
    assert s.clipped_ratio == 0.0 and s.silence_ratio == 0.0
    assert s.duration_sec == pytest.approx(2.0)


def test_a_clipped_sine() -> None:
    # 2 sin(x) clipped to +-1 sits at full scale where |sin| >= 1/2: two thirds of the time.
    x = np.clip(2.0 * tone(2.0, sr=48000, amp=1.0, freq=100.0), -1.0, 1.0)
    assert analyze_array(x, 48000).clipped_ratio == pytest.approx(2 / 3, abs=0.005)
    assert analyze_array(0.5 * x, 48000).clipped_ratio == 0.0


def test_a_half_silent_signal() -> None:
    x = np.concatenate([tone(2.0, sr=16000, amp=0.3), np.zeros(32000, dtype=np.float32)])
    assert analyze_array(x, 16000).silence_ratio == pytest.approx(0.5, abs=0.01)
    # -70 dBFS counts as silence, -50 dBFS does not
    assert analyze_array(tone(1.0, sr=16000, amp=10 ** (-70 / 20)), 16000).silence_ratio == 1.0
    assert analyze_array(tone(1.0, sr=16000, amp=10 ** (-50 / 20)), 16000).silence_ratio == 0.0


def test_loudness_matches_pyloudnorm_and_does_not_depend_on_block_size() -> None:
    rng = np.random.default_rng(1)
    x = np.stack([music_like(6.0, 44100, seed=1), 0.05 * rng.standard_normal(6 * 44100)], axis=1).astype(np.float32)
    reference = pyloudnorm.Meter(44100).integrated_loudness(x.astype(np.float64))
    small, large = analyze_array(x, 44100, block_frames=1001), analyze_array(x, 44100)
    assert large.loudness_lufs == pytest.approx(reference, abs=1e-6)
    assert small.loudness_lufs == pytest.approx(large.loudness_lufs, abs=1e-9)
    assert (small.peak_dbfs, small.clipped_ratio, small.silence_ratio) == (
        large.peak_dbfs,
        large.clipped_ratio,
        large.silence_ratio,
    )


def test_loudness_is_null_when_too_short_or_silent() -> None:
    assert analyze_array(tone(0.3, sr=48000), 48000).loudness_lufs is None
    silent = analyze_array(np.zeros(48000, dtype=np.float32), 48000)
    assert silent.loudness_lufs is None and silent.peak_dbfs == DB_FLOOR and silent.silence_ratio == 1.0


@pytest.mark.parametrize(
    "name,fmt,subtype",
    [
        ("x.wav", "WAV", "PCM_16"),
        ("x.flac", "FLAC", "PCM_24"),
        ("x.ogg", "OGG", "VORBIS"),
        ("x.mp3", "MP3", "MPEG_LAYER_III"),
        ("x.aiff", "AIFF", "PCM_16"),
    ],
)
def test_files_of_every_format_decode_whole(tmp_path: Path, name: str, fmt: str, subtype: str) -> None:
    x = np.stack([tone(1.5, sr=16000, amp=0.5), tone(1.5, sr=16000, amp=0.25)], axis=1)
    s = analyze_file(write(tmp_path / name, x, sr=16000, fmt=fmt, subtype=subtype))
    assert (s.sample_rate, s.channels) == (16000, 2)
    assert s.duration_sec == pytest.approx(1.5, abs=0.08)  # lossy codecs pad a little
    assert s.peak_dbfs == pytest.approx(-6.02, abs=0.5)
    assert s.subtype == subtype


def test_bad_files_raise_with_the_reason(tmp_path: Path) -> None:
    def reason(path: Path) -> str:
        with pytest.raises(AudioAnalysisError) as err:
            analyze_file(path)
        return str(err.value)

    (tmp_path / "empty.wav").write_bytes(b"")
    assert reason(tmp_path / "empty.wav") == "empty file (0 bytes)"
    (tmp_path / "notes.mp3").write_text("not audio at all\n" * 30)
    assert "not a decodable audio file" in reason(tmp_path / "notes.mp3")
    assert (
        reason(write(tmp_path / "header.wav", np.zeros(0, np.float32), subtype="PCM_16"))
        == "no audio frames (header only)"
    )
    flac = truncate(write(tmp_path / "cut.flac", music_like(2.0)))
    assert reason(flac).startswith("corrupt or truncated stream: decoding failed after")
    wav = truncate(write(tmp_path / "cut.wav", music_like(2.0), subtype="PCM_16"), 0.6)
    assert reason(wav).startswith("truncated: the data chunk declares 32000 bytes")
    aiff = truncate(write(tmp_path / "cut.aiff", music_like(2.0), subtype="PCM_16"), 0.6)
    assert reason(aiff).startswith("truncated:")
    # The MP3 header (Xing) declares the full length; the decoder runs out early.
    mp3 = truncate(write(tmp_path / "cut.mp3", music_like(4.0, 16000), sr=16000), 0.5)
    assert "but only" in reason(mp3)


def test_memory_stays_bounded_on_a_long_file(tmp_path: Path) -> None:
    # 10 minutes decoded at once would be 19 MB of float32; streaming needs a few blocks.
    sr, minutes = 8000, 10
    x = np.tile(music_like(10.0, sr), 6 * minutes)
    path = write(tmp_path / "long.wav", x, sr=sr, subtype="PCM_16")
    del x
    analyze_array(tone(0.5), 8000)  # imports (scipy) are not what is measured
    tracemalloc.start()
    try:
        s = analyze_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert s.duration_sec == pytest.approx(minutes * 60)
    assert peak < 6 * 2**20, f"peak {peak / 2**20:.1f} MiB"
