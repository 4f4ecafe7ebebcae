"""Rendering a partition's performances to FLAC + audio.parquet, and its quality gates."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from music_assets import layout
from music_assets.audio import presets, render
from music_assets.audio.render import pool as render_pool
from music_assets.audio.render import worker as render_worker
from music_assets.audio.render import write as render_write
from music_assets.audio.synthesis import DEFAULT_SOUNDFONTS
from music_assets.io import sha256_file
from music_assets_tests.audio.fake_performances import shift_labels, write_performances

SLUG = "flam_tap"


def _gates(data: Path, slug: str = SLUG) -> dict[str, bool]:
    return {g.name: g.passed for g in render.check_partition(slug, data)}


def test_soundfonts_and_presets_are_dealt_evenly_whatever_the_input_order() -> None:
    ids = [f"sample-{i}" for i in range(24)]
    got = render.assign_variants(ids, 2, presets.PRESET_NAMES, seed=0, salt=SLUG)
    assert Counter(got.values()) == Counter({(sf_i, p): 2 for sf_i in range(2) for p in presets.PRESET_NAMES})
    assert render.assign_variants(list(reversed(ids)), 2, presets.PRESET_NAMES, seed=0, salt=SLUG) == got
    assert render.assign_variants(ids, 2, presets.PRESET_NAMES, seed=1, salt=SLUG) != got
    few = render.assign_variants(ids[:4], 2, presets.PRESET_NAMES, seed=0, salt=SLUG)
    assert sorted(Counter(sf_i for sf_i, _ in few.values()).values()) == [2, 2]  # both soundfonts early


def test_a_partition_renders_to_flac_and_audio_table(data_dir: Path) -> None:
    samples = write_performances(data_dir, SLUG, n=4)
    calls: list[tuple[int, int]] = []
    out = render.render_partitions([SLUG], data_dir, workers=1, progress=lambda d, t: calls.append((d, t)))
    out = out.partitions[SLUG]
    assert calls == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]  # samples rendered of total
    table = pq.read_table(out.table_path)
    assert out.table_path == data_dir / "rudiments" / "performances" / SLUG / "audio.parquet"
    assert table.column("sample_id").to_pylist() == samples["sample_id"].tolist()
    for name in ("sample_id", "audio_path", "soundfont", "aug_preset", "aug_noise_color", "aug_bed_source"):
        assert table.schema.field(name).type == pa.string()
    for name in (
        "aug_rt60_s",
        "aug_reverb_wet_db",
        "aug_highpass_hz",
        "aug_comp_ratio",
        "aug_noise_snr_db",
        "aug_bit_depth",
        "aug_peak_dbfs",
        "audio_duration_sec",
        "audio_sample_rate",
        "audio_peak_dbfs",
        "audio_channels",
        "audio_clipped_ratio",
        "align_median_error_ms",
    ):
        assert name in table.column_names
    rows = table.to_pylist()
    assert {r["soundfont"] for r in rows} == {p.name for p in DEFAULT_SOUNDFONTS}
    for row, (_, s) in zip(rows, samples.iterrows(), strict=True):
        path = data_dir / row["audio_path"]
        assert row["audio_path"] == f"rudiments/audio/{SLUG}/{s['sample_id']}.flac"
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype, info.format) == (44100, 1, "PCM_24", "FLAC")
        assert row["audio_channels"] == 1
        assert info.frames / 44100 == pytest.approx(s["duration_sec"] + render.TAIL_SEC, abs=0.002)
        audio, _ = sf.read(str(path), dtype="float32")
        assert 20 * np.log10(np.abs(audio).max()) == pytest.approx(row["audio_peak_dbfs"], abs=0.01)
        assert row["align_median_error_ms"] < 2.0
    assert not list((data_dir / "rudiments" / "audio" / SLUG).glob(".*partial"))
    assert _gates(data_dir) == dict.fromkeys(_gates(data_dir), True) and len(_gates(data_dir)) == 4


def test_stereo_on_request_and_a_file_with_the_wrong_channels_fails_the_format_gate(data_dir: Path) -> None:
    write_performances(data_dir, SLUG, n=2)
    rows = render.render_partitions([SLUG], data_dir, workers=1, channels=2).partitions[SLUG].rows
    stereo, _ = sf.read(str(data_dir / rows[0]["audio_path"]), dtype="float32")
    assert stereo.ndim == 2 and stereo.shape[1] == 2 and not np.allclose(stereo[:, 0], stereo[:, 1])  # a stereo room
    assert all(r["audio_channels"] == 2 for r in rows) and all(_gates(data_dir).values())
    render.render_partitions([SLUG], data_dir, workers=1)  # back to mono
    victim = data_dir / rows[0]["audio_path"]
    sf.write(str(victim), stereo, 44100, format="FLAC", subtype="PCM_24")  # a stale stereo file under a mono row
    duration = next(g for g in render.check_partition(SLUG, data_dir) if g.name == "audio_duration_matches_midi")
    assert not duration.passed and f"{victim.name}: 44100 Hz, 2 ch" in duration.description
    with pytest.raises(render.RenderError, match="channels must be 1"):
        render.render_partitions([SLUG], data_dir, workers=1, channels=6)


def test_prepared_sources_become_background_beds(data_dir: Path) -> None:
    prepared = data_dir / "sources" / "prepared"
    prepared.mkdir(parents=True)
    t = np.arange(2 * 48000) / 48000
    sf.write(
        prepared / "src_wind.flac", np.stack([np.sin(2 * np.pi * 90 * t)] * 2, axis=1) * 0.3, 48000, subtype="PCM_24"
    )
    write_performances(data_dir, SLUG, n=4)
    rows = render.render_partitions([SLUG], data_dir, presets=["marching_field"], workers=1).partitions[SLUG].rows
    with_bed = [r for r in rows if r["aug_bed_source"]]
    assert with_bed and all(r["aug_bed_source"] == "src_wind" and np.isfinite(r["aug_bed_snr_db"]) for r in with_bed)
    off = render.render_partitions([SLUG], data_dir, presets=["marching_field"], workers=1, use_beds=False)
    assert not any(r["aug_bed_source"] for r in off.partitions[SLUG].rows)


def test_the_same_config_gives_identical_files_in_other_processes_and_orders(data_dir: Path) -> None:
    write_performances(data_dir, SLUG, n=3)
    jobs = list(render.plan_partition(SLUG, data_dir, list(DEFAULT_SOUNDFONTS), presets.PRESET_NAMES, seed=0))
    render.render_jobs(jobs, workers=1)
    first = {j.sample_id: sha256_file(j.audio_path) for j in jobs}
    for j in jobs:
        Path(j.audio_path).unlink()
    # other processes (a spawned pool), other order: the last sample first, each soundfont loaded fresh
    run = render.render_jobs(list(reversed(jobs)), workers=2)
    assert run.workers == 2 and run.cpu_seconds > 0 and run.peak_rss_mib > 0
    assert [r["sample_id"] for r in run.rows] == [j.sample_id for j in reversed(jobs)]
    assert {j.sample_id: sha256_file(j.audio_path) for j in jobs} == first
    other_seed = list(render.plan_partition(SLUG, data_dir, list(DEFAULT_SOUNDFONTS), presets.PRESET_NAMES, seed=1))
    render.render_jobs(other_seed[:1], workers=1)
    assert sha256_file(other_seed[0].audio_path) != first[other_seed[0].sample_id]


def test_partitions_prepared_as_they_are_queued_render_the_same_files(data_dir: Path, tmp_path: Path) -> None:
    slugs = [SLUG, "drag"]
    for slug in slugs:
        write_performances(data_dir, slug, n=3)
    planned_first = render.render_partitions(slugs, data_dir, workers=1)
    expected = {
        s: {r["sample_id"]: sha256_file(data_dir / r["audio_path"]) for r in planned_first.partitions[s].rows}
        for s in slugs
    }

    streamed = tmp_path / "streamed"
    calls: list[tuple[str, bool]] = []

    def prepare(slug: str) -> None:  # produce the performances only when asked for them
        calls.append((slug, (layout.performance_dir(slug, streamed) / "samples.parquet").exists()))
        write_performances(streamed, slug, n=3)

    seen: list[tuple[int, int]] = []
    with render.RenderPool(2) as pool:
        out = render.render_partitions(
            slugs, streamed, pool=pool, prepare=prepare, progress=lambda i, n: seen.append((i, n))
        )
    assert calls == [(SLUG, False), ("drag", False)]
    # Streamed, the total is the count of jobs drawn so far: it grows to 6 as partitions are prepared.
    assert out.run.workers == 2 and [d for d, _ in seen] == list(range(1, 7)) and seen[-1] == (6, 6)
    assert all(d <= n for d, n in seen) and [n for _, n in seen] == sorted(n for _, n in seen)
    for s in slugs:
        rows = out.partitions[s].rows
        assert [r["sample_id"] for r in rows] == [r["sample_id"] for r in planned_first.partitions[s].rows]
        assert {r["sample_id"]: sha256_file(streamed / r["audio_path"]) for r in rows} == expected[s]
        assert pq.read_table(out.partitions[s].table_path).num_rows == 3
    assert all(_gates(streamed, s) == dict.fromkeys(_gates(streamed, s), True) for s in slugs)


def test_each_soundfont_is_loaded_once_per_process(data_dir: Path, monkeypatch) -> None:
    from music_assets.audio import synthesis

    loads = []

    class CountingRenderer(synthesis.Renderer):
        def __init__(self, soundfont, *args, **kwargs):
            loads.append(Path(soundfont).name)
            super().__init__(soundfont, *args, **kwargs)

    monkeypatch.setattr(synthesis, "Renderer", CountingRenderer)
    monkeypatch.setattr(synthesis, "_RENDERERS", {})
    monkeypatch.setattr(render_worker, "_LATENCY", {})
    write_performances(data_dir, SLUG, n=6)
    render.render_partitions([SLUG], data_dir, workers=1)
    assert sorted(loads) == sorted(p.name for p in DEFAULT_SOUNDFONTS)


def test_workers_default_to_one_per_core_with_one_blas_thread(monkeypatch) -> None:
    import os

    from threadpoolctl import threadpool_info

    assert render.default_workers() == len(os.sched_getaffinity(0))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "4")
    render_pool._init_worker()  # the pool's initializer
    assert all(os.environ[v] == "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"))
    assert all(pool["num_threads"] == 1 for pool in threadpool_info())


def test_shifted_labels_fail_the_alignment_gate(data_dir: Path) -> None:
    write_performances(data_dir, SLUG, n=2)
    shift_labels(data_dir, SLUG, 10.0)
    render.render_partitions([SLUG], data_dir, workers=1)
    gates = _gates(data_dir)
    assert gates["audio_aligned_with_labels"] is False
    assert gates["audio_duration_matches_midi"] and gates["audio_not_clipped"] and gates["audio_not_silent"]


def test_a_file_of_the_wrong_length_fails_the_duration_gate(data_dir: Path) -> None:
    write_performances(data_dir, SLUG, n=2)
    out = render.render_partitions([SLUG], data_dir, workers=1).partitions[SLUG]
    victim = data_dir / out.rows[0]["audio_path"]
    audio, sr = sf.read(str(victim), dtype="int32")
    sf.write(str(victim), audio[: -int(0.2 * sr)], sr, format="FLAC", subtype="PCM_24")
    gates = render.check_partition(SLUG, data_dir)
    duration = next(g for g in gates if g.name == "audio_duration_matches_midi")
    assert not duration.passed and victim.name in duration.description
    victim.unlink()
    assert not _gates(data_dir)["audio_duration_matches_midi"]


def test_a_badly_gain_staged_preset_fails_the_clipping_gate(data_dir: Path, monkeypatch) -> None:
    write_performances(data_dir, SLUG, n=2)
    hot = {name: dataclasses.replace(p, peak_dbfs=(20.0, 20.0)) for name, p in presets.PRESETS.items()}
    monkeypatch.setattr(presets, "PRESETS", hot)
    rows = render.render_partitions([SLUG], data_dir, workers=1).partitions[SLUG].rows
    assert all(r["audio_clipped_ratio"] > 0.001 for r in rows)
    assert _gates(data_dir)["audio_not_clipped"] is False


def test_a_silent_render_fails_the_silence_gate(data_dir: Path) -> None:
    import pretty_midi

    samples = write_performances(data_dir, SLUG, n=2)
    # pitch 1 has no sound in the General MIDI drum kit
    midi = data_dir / samples["midi_path"].iloc[0]
    pm = pretty_midi.PrettyMIDI(str(midi))
    for note in pm.instruments[0].notes:
        note.pitch = 1
    pm.write(str(midi))
    render.render_partitions([SLUG], data_dir, workers=1)
    gates = _gates(data_dir)
    assert gates["audio_not_silent"] is False and gates["audio_aligned_with_labels"] is False


def test_missing_inputs_are_clear_errors_and_keep_earlier_output(data_dir: Path) -> None:
    with pytest.raises(render.RenderError, match="samples.parquet: missing; materialize rudiment_performances"):
        render.render_partitions([SLUG], data_dir, workers=1)
    write_performances(data_dir, SLUG, n=2)
    out = render.render_partitions([SLUG], data_dir, workers=1).partitions[SLUG]
    before = {r["audio_path"]: sha256_file(data_dir / r["audio_path"]) for r in out.rows}
    (data_dir / out.rows[1]["audio_path"].replace("audio", "midi", 1).replace(".flac", ".mid")).write_bytes(b"junk")
    with pytest.raises(render.RenderError, match=r"\.mid: not a readable MIDI file"):
        render.render_partitions([SLUG], data_dir, workers=1)
    assert {p: sha256_file(data_dir / p) for p in before} == before
    with pytest.raises(render.RenderError, match="nope.sf2"):
        render.render_partitions([SLUG], data_dir, soundfonts=["/nowhere/nope.sf2"], workers=1)


def test_a_lazy_job_stream_is_drawn_only_a_few_jobs_ahead(data_dir: Path, monkeypatch) -> None:
    # ProcessPoolExecutor.map would queue every job (and keep every result) at once; the pool's map
    # draws them as the workers free up, so a long run holds a bounded number of jobs
    monkeypatch.setattr(render_pool, "PENDING_JOBS_PER_WORKER", 2)  # 2 workers: 4 jobs
    write_performances(data_dir, SLUG, n=24)
    jobs = list(render.plan_partition(SLUG, data_dir, list(DEFAULT_SOUNDFONTS), presets.PRESET_NAMES, seed=0))
    seen: list[tuple[int, int]] = []
    with render.RenderPool(2) as pool:
        run = render.render_jobs(iter(jobs), pool=pool, progress=lambda i, n: seen.append((i, n)))
    assert [r["sample_id"] for r in run.rows] == [j.sample_id for j in jobs]  # in order
    assert run.samples == 24 and seen[-1] == (24, 24)
    # ahead of the results: at most the jobs drawn while the pool started (4), 4 queued chunks
    # of 2, and the chunk being formed
    assert max(n - i for i, n in seen) <= 4 + 8 + 2 < 24


def test_streamed_partitions_hold_only_the_pending_window_of_jobs(data_dir: Path, monkeypatch) -> None:
    # A partition has samples / 40 jobs: holding a whole planned partition (or the jobs drawn
    # while the pool started) until its last job is drawn would grow with the sample count.
    # Count the jobs alive in this process while rendering: at most the window, not a partition.
    import weakref

    monkeypatch.setattr(render_pool, "PENDING_JOBS_PER_WORKER", 2)  # 2 workers: 4 jobs
    slugs = [SLUG, "drag"]
    alive: set[int] = set()
    peak = [0]
    plan = render.plan_partition

    def tracked_plan(*args, **kwargs):
        planned = plan(*args, **kwargs)

        def tracked():
            for job in planned:
                alive.add(id(job))
                weakref.finalize(job, alive.discard, id(job))
                yield job

        return render.PlannedPartition(len(planned), tracked)

    def prepare(slug: str) -> None:
        write_performances(data_dir, slug, n=24)

    def progress(done: int, total: int) -> None:
        peak[0] = max(peak[0], len(alive))

    monkeypatch.setattr(render_write, "plan_partition", tracked_plan)
    with render.RenderPool(2) as pool:
        out = render.render_partitions(slugs, data_dir, pool=pool, prepare=prepare, progress=progress)
    assert out.run.samples == 48 and not alive
    # the jobs drawn while the pool started (4), 4 queued chunks of 2, the chunk being formed
    # and the one being rendered: not the 24 of a partition
    assert 0 < peak[0] <= 4 + 8 + 2 + 2 < 24


def test_the_next_partition_is_prepared_while_one_renders(data_dir: Path, monkeypatch) -> None:
    # producing partition k + 1 overlaps rendering partition k, so the pending window need not
    # hold a partition's worth of jobs to keep the workers busy meanwhile
    monkeypatch.setattr(render_pool, "PENDING_JOBS_PER_WORKER", 2)  # 2 workers: 4 jobs
    events: list[tuple[str, object]] = []

    def prepare(slug: str) -> None:
        if slug == "broken":
            raise ValueError("no performances for broken")
        events.append(("prepared", slug))
        write_performances(data_dir, slug, n=8)

    out = render.render_partitions(
        [SLUG, "drag"], data_dir, workers=2, prepare=prepare, progress=lambda done, total: events.append(("done", done))
    )
    assert out.run.samples == 16 and [out.partitions[s].num_rows for s in (SLUG, "drag")] == [8, 8]
    # prepared before the first sample was rendered: not once the window let the first partition's
    # last job be drawn (after at least 8 - 4 samples)
    assert events.index(("prepared", "drag")) < events.index(("done", 1))
    with pytest.raises(ValueError, match="no performances for broken"):
        render.render_partitions([SLUG, "broken"], data_dir, workers=2, prepare=prepare)
