"""Benchmark the rudiment dataset pipeline against raw FluidSynth on the same notes.

Workload (fixed): about N samples (default 400) spread over the 40 rudiments:
performances, MIDI and labels generated with the rudiment domain code
(`rudiments.dataset.generate_partition`) into a temporary data dir, and
rendered with audio (`audio.render.render_partitions`: dry FluidSynth render,
onset alignment, augmentation, FLAC, audio.parquet; mono unless
`--channels 2`) on a pool with one process per core. The pool
(`audio.render.RenderPool`) is started first, and each rudiment is generated
(its `prepare` hook, on a thread) while the one before it is planned, queued
and rendered, so the pool's start-up and the rendering of earlier rudiments
overlap the generation, as a caller of the domain code would arrange it. (The Dagster assets
`rudiment_performances` and `rudiment_audio` are separate steps; the audio
step starts its pool before planning.) The gates of every partition are
evaluated and must pass.

Baseline, measured in the same run: pyfluidsynth's `Synth.get_samples` on the
very same notes, each sample on the soundfont the pipeline gave it, one synth
per soundfont in this process, audio between events pulled with
`get_samples` (the plain way to render offline with pyfluidsynth), no effects,
no files.

Prints samples/s, audio seconds per wall second, peak RSS (this process and
the largest worker), and the ratio of the pipeline's speed to the baseline's
(target >= 0.5). The pipeline runs on every core and the baseline on one, as
a user would run either. Wall-clock ratios on a shared machine depend on what
else runs, so the ratio of CPU time per audio second is printed too (per
core, and times the workers: the wall ratio an idle machine would give).

    python bench/generate.py [--samples 400] [--workers 0] [--channels 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def workload(data: Path, n_samples: int, seed: int) -> tuple[list[str], Callable[[str], int]]:
    """The workload's slugs, and the function that generates one slug's performances, MIDI and
    labels (the rudiment domain code) and returns its sample count."""
    from music_assets.rudiments.constants import RUDIMENT_SLUGS
    from music_assets.rudiments.dataset import DatasetSettings, generate_partition
    from music_assets.rudiments.library import get_rudiment
    from music_assets.rudiments.profiles import generate_profiles

    slugs = list(RUDIMENT_SLUGS[: max(1, min(len(RUDIMENT_SLUGS), n_samples))])
    n_profiles = max(1, math.ceil(n_samples / len(slugs)))
    settings = DatasetSettings.resolve("demo", seed=seed, num_profiles=n_profiles, tempos_per_pair=1, lengths_beats=[8])
    profiles = generate_profiles(n_profiles, seed)

    def generate(slug: str) -> int:
        return generate_partition(get_rudiment(slug), profiles, settings, data).samples.num_rows

    return slugs, generate


def raw_fluidsynth(
    data: Path, slugs: list[str], soundfonts: dict[str, str]
) -> tuple[float, float, float, dict[str, float]]:
    """Audio seconds, wall and CPU seconds rendering every sample's notes with plain get_samples,
    and the speed per soundfont."""
    import fluidsynth
    import pandas as pd
    import pretty_midi

    from music_assets.audio.render import TAIL_SEC
    from music_assets.audio.synthesis import DEFAULT_SAMPLE_RATE, DRUM_CHANNEL, GM_DRUM_BANK, POLYPHONY
    from music_assets.layout import performance_dir

    sr = DEFAULT_SAMPLE_RATE
    work: list[tuple[str, list[tuple[int, int, int, int]], int]] = []  # soundfont, events, frames
    for slug in slugs:
        audio = pd.read_parquet(performance_dir(slug, data) / "audio.parquet", columns=["sample_id", "soundfont"])
        samples = pd.read_parquet(performance_dir(slug, data) / "samples.parquet", columns=["sample_id", "midi_path"])
        for _sid, sf_name, midi in audio.merge(samples, on="sample_id")[
            ["sample_id", "soundfont", "midi_path"]
        ].itertuples(index=False):
            pm = pretty_midi.PrettyMIDI(str(data / midi))
            events = []
            for inst in pm.instruments:
                for n in inst.notes:
                    events.append((int(round(n.start * sr)), 1, n.pitch, n.velocity))
                    events.append((int(round(n.end * sr)), 0, n.pitch, 0))
            events.sort()
            work.append((sf_name, events, int(round((pm.get_end_time() + TAIL_SEC) * sr))))
    synths = {}
    for name, path in soundfonts.items():
        s = fluidsynth.Synth(
            gain=0.5,
            samplerate=float(sr),
            **{"synth.reverb.active": 0, "synth.chorus.active": 0, "synth.cpu-cores": 1, "synth.polyphony": POLYPHONY},
        )
        sfid = s.sfload(path)
        s.program_select(DRUM_CHANNEL, sfid, GM_DRUM_BANK, 0)
        synths[name] = s
    per_sf: dict[str, list[float]] = {name: [0.0, 0.0] for name in soundfonts}
    t_all, c_all = time.perf_counter(), time.process_time()
    for sf_name, events, frames in work:
        s = synths[sf_name]
        t0 = time.perf_counter()
        pos = 0
        for frame, on, pitch, vel in events:
            if frame > pos:
                s.get_samples(min(frame, frames) - pos)
                pos = min(frame, frames)
            if on:
                s.noteon(DRUM_CHANNEL, pitch, vel)
            else:
                s.noteoff(DRUM_CHANNEL, pitch)
        if frames > pos:
            s.get_samples(frames - pos)
        s.all_sounds_off(DRUM_CHANNEL)
        per_sf[sf_name][0] += frames / sr
        per_sf[sf_name][1] += time.perf_counter() - t0
    seconds, cpu = time.perf_counter() - t_all, time.process_time() - c_all
    for s in synths.values():
        s.delete()
    audio_sec = sum(v[0] for v in per_sf.values())
    return audio_sec, seconds, cpu, {k: (v[0] / v[1] if v[1] else 0.0) for k, v in per_sf.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=400, help="about this many samples (default 400)")
    ap.add_argument("--workers", type=int, default=0, help="rendering processes (0: one per core)")
    ap.add_argument("--channels", type=int, default=1, choices=(1, 2), help="mono (default) or stereo files")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, default=None, help="generate into this folder and keep it")
    args = ap.parse_args(argv)

    from music_assets.audio import render
    from music_assets.audio.synthesis import DEFAULT_SOUNDFONTS

    workers = render.default_workers() if args.workers <= 0 else args.workers
    tmp = None
    if args.keep is None:
        tmp = tempfile.mkdtemp(prefix="bench-generate-")
        data = Path(tmp)
    else:
        data = args.keep
        data.mkdir(parents=True, exist_ok=True)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        gen_wall = gen_cpu = 0.0
        n = 0

        def generate_timed(slug: str) -> None:  # on render_partitions' prepare thread
            nonlocal gen_wall, gen_cpu, n
            t, c = time.perf_counter(), time.thread_time()  # this thread's CPU: rendering runs meanwhile
            n += generate(slug)
            gen_wall += time.perf_counter() - t
            gen_cpu += time.thread_time() - c

        with render.RenderPool(workers) as pool:
            slugs, generate = workload(data, args.samples, args.seed)
            rendered = render.render_partitions(
                slugs, data, seed=args.seed, channels=args.channels, pool=pool, prepare=generate_timed
            )
        c_all = time.process_time() - c0
        wall = time.perf_counter() - t0
        run = rendered.run
        audio_sec = sum(float(r["audio_duration_sec"]) for r in run.rows)
        failed = [f"{slug}:{g.name}" for slug in slugs for g in render.check_partition(slug, data) if not g.passed]

        raw_audio, raw_sec, raw_cpu, raw_by_sf = raw_fluidsynth(
            data, slugs, {p.name: str(p) for p in DEFAULT_SOUNDFONTS}
        )
        raw_speed = raw_audio / raw_sec
        pipe_speed = audio_sec / wall
        # with one worker the jobs run in this process: their CPU time is already in c_all
        pipe_cpu = c_all + (run.cpu_seconds if run.workers > 1 else 0.0)
        render_cpu = run.cpu_seconds if run.workers > 1 else c_all - gen_cpu
        rss_main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        print(
            f"workload: {n} samples over {len(slugs)} rudiments, {audio_sec:.0f} s of audio, "
            f"{args.channels} channel(s) "
            f"({audio_sec / max(n, 1):.2f} s each), {run.workers} worker process(es), {os.cpu_count()} CPU(s), "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        where = "in this process, while the workers render earlier rudiments" if run.workers > 1 else "in this process"
        print(f"  generate performances + MIDI + labels: {gen_wall:6.2f} s wall, {gen_cpu:6.2f} s CPU ({where})")
        print(
            f"  render + align + augment + FLAC:       {render_cpu:6.2f} s CPU "
            f"({render_cpu / max(n, 1) * 1000:.1f} ms per sample)"
        )
        print(f"  everything, every process:             {wall:6.2f} s wall, {pipe_cpu:6.2f} s CPU")
        print(f"pipeline: {n / wall:.1f} samples/s, {pipe_speed:.1f} audio s per wall s ({wall:.2f} s)")
        print(
            f"raw FluidSynth get_samples, same notes, one process: {raw_speed:.1f} audio s per s ("
            + ", ".join(f"{k} {v:.0f}" for k, v in raw_by_sf.items())
            + ")"
        )
        print(f"peak RSS: main process {rss_main:.0f} MiB, largest worker {run.peak_rss_mib:.0f} MiB")
        print(f"gates: {'all passed' if not failed else 'FAILED: ' + ', '.join(failed[:10])}")
        ratio = pipe_speed / raw_speed
        cpu_ratio = (raw_cpu / raw_audio) / (pipe_cpu / audio_sec)
        print(
            f"ratio pipeline / raw FluidSynth (wall clock, pipeline on {run.workers} workers): "
            f"{ratio:.2f} (target >= 0.50)"
        )
        print(
            f"  CPU time per audio second, raw / pipeline: {cpu_ratio:.2f} per core; x {run.workers} workers = "
            f"{cpu_ratio * run.workers:.2f} on an otherwise idle machine"
        )
        return 0 if not failed else 1
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
