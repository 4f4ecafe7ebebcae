"""Texture beds on synthetic sources with known answers: tone -> pads, noise -> hiss, clicks -> seams."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from music_assets.audio import effects, textures
from music_assets.audio.textures import SAMPLE_RATE as SR

SMALL = textures.TextureProfile(
    "default", pads=1, swells=1, clouds=1, hiss_loops=1, flickers=1, pad_sec=(4.0, 6.0), cloud_sec=(4.0, 6.0)
)


def _write(path: Path, audio: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio.astype(np.float32), SR, subtype="PCM_24")
    return path


def _tone(seconds: float = 10.0, hz: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = amp * np.sin(2 * np.pi * hz * t)
    return np.stack([x, x], axis=1)


def _noise(seconds: float, rms_dbfs: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((int(seconds * SR), 2)) * 10 ** (rms_dbfs / 20)


def _rows(folder: Path) -> list[dict]:
    return pq.read_table(folder / textures.INDEX_NAME).to_pylist()


def test_a_sustained_tone_gives_pads_with_its_centroid(tmp_path: Path) -> None:
    src = _write(tmp_path / "tone.flac", _tone(hz=440.0))
    made = textures.make_textures(src, tmp_path / "out", "tone", SMALL, seed=0)
    pads = [r for r in made.rows if r["kind"] == "pads"]
    assert len(pads) == 1 and pads[0]["file"] == "pads/pad_00.flac"
    assert pads[0]["spectral_centroid_hz"] == pytest.approx(440.0, rel=0.05)
    lo, hi = SMALL.pad_sec
    assert lo <= pads[0]["duration_sec"] <= hi and pads[0]["loopable"]
    assert pads[0]["seam_discontinuity"] <= textures.SEAM_MAX_RATIO
    audio, sr = sf.read(tmp_path / "out" / pads[0]["file"], always_2d=True)
    assert sr == SR and audio.shape[1] == 2
    # The phase vocoder keeps the pitch: the spectrum's peak is still the tone.
    spec = np.abs(np.fft.rfft(audio[:, 0]))
    assert np.argmax(spec) * SR / len(audio) == pytest.approx(440.0, abs=2.0)
    assert all(o.passed for o in textures.check_textures(made.folder)), textures.check_textures(made.folder)


def test_a_noise_only_source_gives_hiss_at_its_level(tmp_path: Path) -> None:
    src = _write(tmp_path / "noise.flac", _noise(10.0, -30.0))
    made = textures.make_textures(src, tmp_path / "out", "noise", SMALL, seed=0)
    loop = next(r for r in made.rows if r["kind"] == "hiss" and r["variant"] == "loop")
    assert loop["noise_floor_dbfs"] == pytest.approx(-30.0, abs=1.0)
    assert loop["rms_dbfs"] == pytest.approx(-30.0, abs=1.0)
    assert loop["param_hiss_rms_dbfs"] == pytest.approx(loop["rms_dbfs"], abs=0.3)
    flicker = next(r for r in made.rows if r["variant"] == "flicker")
    assert flicker["rms_dbfs"] < loop["rms_dbfs"]  # the flicker only ever dips
    # A floor far below the profile's range is lifted to its bottom, not kept inaudible.
    quiet = _write(tmp_path / "quiet.flac", _noise(10.0, -80.0))
    lifted = textures.make_textures(quiet, tmp_path / "out_q", "quiet", SMALL, seed=0)
    row = next(r for r in lifted.rows if r["variant"] == "loop")
    assert row["noise_floor_dbfs"] == pytest.approx(-80.0, abs=1.0)
    assert row["rms_dbfs"] == pytest.approx(SMALL.hiss_rms_dbfs[0], abs=0.3)


def test_loop_seams_of_a_clicking_file_fail_and_of_crossfaded_loops_pass(tmp_path: Path) -> None:
    # 1.00025 s of 440 Hz: the file ends 0.11 periods into a cycle, so looping it jumps.
    clicking = _tone(1.00025)[:, 0]
    assert textures.seam_discontinuity(clicking) > textures.SEAM_MAX_RATIO
    whole = _tone(1.0)[:, 0]  # exactly 440 periods: the seam is one ordinary step
    assert textures.seam_discontinuity(whole) < 1.5
    material = _noise(2.0, -20.0).T
    loop = textures.make_loop(material, SR)
    assert textures.seam_discontinuity(loop.T) < textures.SEAM_MAX_RATIO
    assert textures.seam_discontinuity(material[:, :SR].T) < textures.SEAM_MAX_RATIO  # noise: no click either
    assert textures.seam_discontinuity(np.zeros((100, 2))) == 0.0

    # A made set whose pad is replaced by a clicking file fails the seam gate only, naming the file.
    src = _write(tmp_path / "tone.flac", _tone())
    made = textures.make_textures(src, tmp_path / "out", "tone", SMALL, seed=0)
    pad = made.folder / "pads" / "pad_00.flac"
    _write(pad, _tone(5.00025))
    outcomes = {o.name: o for o in textures.check_textures(made.folder)}
    assert (
        not outcomes["loop_seam_click_free"].passed
        and "pads/pad_00.flac" in outcomes["loop_seam_click_free"].description
    )
    assert all(o.passed for n, o in outcomes.items() if n != "loop_seam_click_free")


def test_the_gates_catch_bad_files(tmp_path: Path) -> None:
    src = _write(tmp_path / "tone.flac", _tone())
    made = textures.make_textures(src, tmp_path / "out", "tone", SMALL, seed=0)
    folder = made.folder

    def failed() -> set[str]:
        return {o.name for o in textures.check_textures(folder) if not o.passed}

    assert failed() == set()
    cloud = folder / "clouds" / "cloud_00.flac"
    _write(cloud, np.clip(_tone(5.0, amp=3.0), -1, 1))  # flat tops: clipped
    assert "not_clipped" in failed()
    _write(cloud, _tone(5.0, amp=0.001))  # -60 dBFS peak
    assert "not_silent" in failed()
    _write(cloud, _tone(30.0))  # longer than the profile allows
    assert "duration_in_range" in failed()
    sf.write(cloud, _tone(5.0)[:, :1], 44100, subtype="PCM_16")
    assert {"format_48k_stereo"} <= failed()
    cloud.write_bytes(b"not audio")
    assert {"decodes", "format_48k_stereo"} <= failed()
    cloud.unlink()
    assert "decodes" in failed()


def test_the_same_config_rewrites_identical_bytes_and_seeds_differ(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    # A tone with a little noise and a few transients, so region finding has a choice.
    audio = _tone(12.0) + _noise(12.0, -40.0)
    for at in rng.integers(0, 11 * SR, size=6):
        audio[at : at + 200] += 0.4
    src = _write(tmp_path / "src.flac", audio * 0.8)
    a = textures.make_textures(src, tmp_path / "a", "s1", "default", seed=0)
    b = textures.make_textures(src, tmp_path / "b", "s1", "default", seed=0)
    files = sorted(p.relative_to(a.folder) for p in a.folder.rglob("*.flac"))
    assert len(files) == sum(textures.PROFILES["default"].count(k) for k in textures.KINDS)
    assert files == sorted(p.relative_to(b.folder) for p in b.folder.rglob("*.flac"))
    for rel in [*files, Path(textures.INDEX_NAME)]:
        assert (a.folder / rel).read_bytes() == (b.folder / rel).read_bytes(), rel
    c = textures.make_textures(src, tmp_path / "c", "s1", "default", seed=1)
    assert (a.folder / files[0]).read_bytes() != (c.folder / files[0]).read_bytes()


def test_stable_regions_avoid_the_transients() -> None:
    audio = _tone(20.0) + _noise(20.0, -50.0)
    for at in range(0, 10 * SR, SR // 4):  # a click every 250 ms in the first 10 s
        audio[at : at + 100] += 0.4
    regions = textures.stable_regions(audio, SR, 3.0, 2)
    assert len(regions) == 2
    starts = sorted(r.start_sec for r in regions)
    assert starts[0] >= 9.9 and starts[1] - starts[0] >= 3.0 - 0.02 and starts[1] + 3.0 <= 20.0 + 0.02
    assert all(r.flux < 1.0 for r in regions)  # steadier than the file on average
    # Silence is stable too, but is not a candidate: no region overlaps a silent stretch.
    audio[13 * SR : 15 * SR] = 0.0
    regions = textures.stable_regions(audio, SR, 3.0, 2)
    assert len(regions) == 2 and all(r.start_sec >= 14.99 or r.start_sec + 3.0 <= 13.01 for r in regions)


def test_index_columns_profiles_and_stale_files(tmp_path: Path) -> None:
    src = _write(tmp_path / "tone.flac", _tone() + _noise(10.0, -50.0))
    noisy = textures.make_textures(src, tmp_path / "out", "tone", "noisy", seed=0, license="CC-BY-4.0")
    rows = _rows(noisy.folder)
    assert tuple(pq.read_schema(noisy.index_path).names) == textures.INDEX_COLUMNS
    assert {r["license"] for r in rows} == {"CC-BY-4.0"} and {r["profile"] for r in rows} == {"noisy"}
    p = textures.PROFILES["noisy"]
    for r in rows:
        for name in textures.PARAMS_BY_KIND[r["kind"]]:
            if name != "hiss_rms_dbfs":
                lo, hi = getattr(p, name)
                assert lo <= r[f"param_{name}"] <= hi, (r["file"], name)
        assert np.isnan(r["param_grain_ms"]) == (r["kind"] != "clouds")
    assert sum(r["kind"] == "hiss" for r in rows) == 4
    # Back to the default profile: the extra hiss files of `noisy` are removed.
    textures.make_textures(src, tmp_path / "out", "tone", "default", seed=0)
    assert sorted(p.name for p in (noisy.folder / "hiss").glob("*.flac")) == ["flicker_00.flac", "hiss_00.flac"]
    assert {r["profile"] for r in _rows(noisy.folder)} == {"default"}
    # Bright textures of the tone + noise are brighter than dark ones.
    bright = textures.make_textures(src, tmp_path / "b", "tone", "bright", seed=0).rows
    dark = textures.make_textures(src, tmp_path / "d", "tone", "dark", seed=0).rows
    hiss_c = {name: next(r for r in rs if r["variant"] == "loop")["spectral_centroid_hz"]
              for name, rs in (("bright", bright), ("dark", dark))}  # fmt: skip
    assert hiss_c["bright"] > 2 * hiss_c["dark"]


def test_bad_input_and_bad_profiles_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(textures.TextureError, match="unknown texture profile 'loud'"):
        textures.get_profile("loud")
    with pytest.raises(textures.TextureError, match="grain_ms range"):
        dataclasses.replace(SMALL, grain_ms=(1.0, 50.0))
    bad = tmp_path / "broken.flac"
    bad.write_bytes(b"not audio")
    with pytest.raises(textures.TextureError, match="broken.flac: not readable audio"):
        textures.make_textures(bad, tmp_path / "o", "x")
    mono = tmp_path / "mono.flac"
    sf.write(mono, np.zeros(SR * 3, dtype=np.float32) + 0.1, SR)
    with pytest.raises(textures.TextureError, match="mono.flac: 48000 Hz, 1 ch"):
        textures.make_textures(mono, tmp_path / "o", "x")
    silent = _write(tmp_path / "silent.flac", np.zeros((SR * 3, 2)))
    with pytest.raises(textures.TextureError, match="silent.flac: digitally silent"):
        textures.make_textures(silent, tmp_path / "o", "x")


def test_texture_hiss_and_clouds_become_the_background_beds(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    prepared = _write(sources / "prepared" / "src_a.flac", _tone() + _noise(10.0, -40.0))
    assert [b.source_id for b in effects.background_beds(sources)] == ["src_a"]  # no textures: as before
    textures.make_textures(prepared, sources / "textures" / "src_a", "src_a", SMALL, seed=0)
    _write(sources / "textures" / "gone" / "hiss" / "hiss_00.flac", _noise(5.0, -30.0))  # no longer prepared
    beds = effects.background_beds(sources)
    assert [b.source_id for b in beds] == [
        "textures/src_a/clouds/cloud_00.flac",
        "textures/src_a/hiss/flicker_00.flac",
        "textures/src_a/hiss/hiss_00.flac",
    ]
    assert all(Path(b.path).is_file() and 4.0 <= b.duration_sec <= 8.0 for b in beds)


def test_rudiment_audio_mixes_texture_beds_and_records_their_paths(data_dir: Path) -> None:
    from music_assets.audio import render  # noqa: PLC0415
    from music_assets_tests.audio.fake_performances import write_performances  # noqa: PLC0415

    slug = "flam_tap"
    sources = data_dir / "sources"
    prepared = _write(sources / "prepared" / "src_a.flac", _tone(12.0) + _noise(12.0, -40.0))
    textures.make_textures(prepared, sources / "textures" / "src_a", "src_a", SMALL, seed=0)
    write_performances(data_dir, slug, n=4)

    def rows() -> list[dict]:
        return render.render_partitions([slug], data_dir, presets=["marching_field"], workers=1).partitions[slug].rows

    first = rows()
    beds = {r["aug_bed_source"] for r in first if r["aug_bed_source"]}
    assert beds and beds <= {b.source_id for b in effects.texture_beds_in(sources)}
    assert all(b.startswith("textures/src_a/") and (sources / b).is_file() for b in beds)
    digest = [(r["audio_path"], (data_dir / r["audio_path"]).read_bytes()) for r in first]
    assert [(r["audio_path"], (data_dir / r["audio_path"]).read_bytes()) for r in rows()] == digest
