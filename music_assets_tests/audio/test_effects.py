"""Augmentation presets: seeded parameters, the effect chain, background beds."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import soundfile as sf

from music_assets.audio import effects
from music_assets.audio.presets import PRESET_NAMES, PRESETS, AugmentationError, AugParams, Bed, draw_params
from music_assets.audio.synthesis import DEFAULT_SOUNDFONTS, NoteEvent, get_renderer
from music_assets.seeding import stable_rng

SR = 44100


@pytest.fixture(scope="module")
def dry() -> np.ndarray:
    notes = [NoteEvent(0.05 + 0.125 * k, 38, 70 + 5 * (k % 8), 0.05) for k in range(12)]
    return get_renderer(DEFAULT_SOUNDFONTS[0]).render(notes, total_seconds=2.0, planar=True)


def _params(preset: str, sid: str = "s1", beds=()) -> AugParams:
    return draw_params(preset, stable_rng(sid, 0, "augment"), 2.0, beds)


def test_presets_cover_the_required_rooms() -> None:
    assert {"clean_studio", "practice_room", "gym", "garage", "marching_field", "lofi"} <= set(PRESET_NAMES)


def test_parameters_are_seeded_per_sample_and_stay_in_the_preset_ranges() -> None:
    a = _params("gym", "s1")
    assert repr(_params("gym", "s1")) == repr(a)  # same draws (in any process: stable_rng hashes the id)
    assert _params("gym", "s2").rt60_s != a.rt60_s
    assert draw_params("gym", stable_rng("s1", 1, "augment"), 2.0).rt60_s != a.rt60_s  # another seed
    gym = PRESETS["gym"]
    assert gym.rt60_s[0] <= a.rt60_s <= gym.rt60_s[1]
    assert gym.highpass_hz[0] <= a.highpass_hz <= gym.highpass_hz[1]
    assert a.bit_depth in gym.bit_depths and a.noise_color in gym.noise_colors
    cols = a.columns()
    assert cols["aug_preset"] == "gym"
    fields = {f.name for f in dataclasses.fields(AugParams)} - {"preset"}
    assert set(cols) == {"aug_preset"} | {f"aug_{f}" for f in fields}
    assert cols["aug_bed_source"] == "" and math.isnan(cols["aug_bed_snr_db"])  # no prepared sources given


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_every_preset_keeps_length_stages_the_peak_and_never_clips(dry, preset) -> None:
    p = _params(preset)
    before = dry.copy()
    out = effects.augment(dry, SR, p, stable_rng("s1", 0, "signal"))
    assert np.array_equal(dry, before)  # the caller's render is left alone
    assert out.shape == dry.shape == (2, 2 * SR) and out.dtype == np.float32
    assert np.isfinite(out).all()
    peak = float(np.abs(out).max())
    assert peak < 1.0
    assert 20 * math.log10(peak) == pytest.approx(p.peak_dbfs, abs=0.1)
    assert not np.allclose(out[0], out[1])  # the room is stereo
    again = effects.augment(dry, SR, p, stable_rng("s1", 0, "signal"))
    assert np.array_equal(out, again)


@pytest.mark.parametrize("preset", ["gym", "lofi"])
def test_mono_renders_stay_mono_through_the_chain(dry, preset) -> None:
    mono = dry.mean(axis=0, keepdims=True)
    p = _params(preset)
    out = effects.augment(mono, SR, p, stable_rng("s1", 0, "signal"))
    assert out.shape == (1, 2 * SR)
    assert 20 * math.log10(float(np.abs(out).max())) == pytest.approx(p.peak_dbfs, abs=0.1)
    assert np.array_equal(out, effects.augment(mono, SR, p, stable_rng("s1", 0, "signal")))
    with pytest.raises(AugmentationError, match="channels, frames"):
        effects.augment(dry.T, SR, p, stable_rng("s1", 0, "signal"))  # interleaved is refused, not misread


def test_lofi_reduces_the_bit_depth(dry) -> None:
    p = dataclasses.replace(_params("lofi"), bit_depth=8)
    out = effects.augment(dry, SR, p, stable_rng("s1", 0, "signal"))
    steps = out * 128
    assert np.allclose(steps, np.round(steps), atol=1e-4)
    assert len(np.unique(out)) <= 256


def test_a_large_room_adds_a_decaying_tail(dry) -> None:
    hit = np.zeros((SR, 2), dtype=np.float32)
    hit[1000:1100] = 0.5
    p = dataclasses.replace(_params("gym"), rt60_s=2.0, reverb_wet_db=-3.0)
    wet = effects.add_reverb(np.ascontiguousarray(hit.T), p, SR, stable_rng("r"))
    tail = wet[:, int(0.3 * SR) : int(0.5 * SR)]
    later = wet[:, int(0.7 * SR) : int(0.9 * SR)]
    assert np.abs(tail).max() > 1e-3  # the room still rings 0.2 s after the hit
    assert np.sqrt((later**2).mean()) < np.sqrt((tail**2).mean())  # and decays


def test_a_silent_render_stays_silent() -> None:
    silence = np.zeros((2, SR), dtype=np.float32)
    out = effects.augment(silence, SR, _params("gym"), stable_rng("s"))
    assert not out.any()


def test_background_beds_come_from_prepared_sources(tmp_path, dry) -> None:
    prepared = tmp_path / "sources" / "prepared"
    prepared.mkdir(parents=True)
    t = np.arange(3 * 48000) / 48000
    crowd = 0.3 * np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], axis=1)
    sf.write(prepared / "src_crowd.flac", crowd.astype(np.float32), 48000, subtype="PCM_24")
    beds = effects.beds_in(prepared)
    assert beds == [Bed("src_crowd", str(prepared / "src_crowd.flac"), 3.0)]

    picked = [p for p in (_params("marching_field", f"s{i}", beds) for i in range(20)) if p.bed_source]
    assert picked, "marching_field uses a bed for most samples when one exists"
    p = picked[0]
    assert p.bed_source == "src_crowd" and 0.0 <= p.bed_offset_sec <= 1.0 and np.isfinite(p.bed_snr_db)
    with_bed = effects.augment(dry, SR, p, stable_rng("x"), beds)
    without = effects.augment(dry, SR, dataclasses.replace(p, bed_source=""), stable_rng("x"), beds)
    assert not np.allclose(with_bed, without)
    # the 220 Hz bed tone is in the output (resampled from 48 kHz, looped past its 3 s)
    spec = np.abs(np.fft.rfft(with_bed[0] - without[0]))
    assert abs(np.argmax(spec) * SR / len(with_bed[0]) - 220) < 3
    with pytest.raises(AugmentationError, match="src_other"):
        effects.augment(dry, SR, dataclasses.replace(p, bed_source="src_other"), stable_rng("x"), beds)


def test_unknown_preset_and_unreadable_bed_are_clear_errors(tmp_path) -> None:
    with pytest.raises(AugmentationError, match="concert_hall"):
        _params("concert_hall")
    (tmp_path / "broken.flac").write_bytes(b"not audio")
    with pytest.raises(AugmentationError, match="broken.flac"):
        effects.beds_in(tmp_path)
