"""Symbolic rudiment dataset: generation speed and the realism table per tier.

Workload: the demo preset (40 rudiments x 20 players = 800 samples) generated
with its MIDI files, label tables and per-partition checks, as
`rudiment_performances` does. Baselines measured in the same run:
- bare: the same 800 performances computed without labels, MIDI or files
  (the pipeline's share of extra work is `bare / pipeline`);
- mido: the same MIDI files built message by message with mido (the
  direct encoder's speed-up is `mido / direct`).
Then the realism table (measured timing-error SD, velocity CV, mean
timing_accuracy per tier against the published ranges) at demo scale and at
`--players` players x 40 rudiments (default 250: 10,000 samples).

    python bench/rudiments_symbolic.py [--players 250]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from music_assets import layout  # noqa: E402
from music_assets.defs.rudiments.assets import _partition_outcomes  # noqa: E402
from music_assets.rudiments.dataset import DatasetSettings, generate_partition, plan_partition, play  # noqa: E402
from music_assets.rudiments.labels import TableSet, check_realism  # noqa: E402
from music_assets.rudiments.library import load_library  # noqa: E402
from music_assets.rudiments.midi import midi_bytes, mido_file  # noqa: E402
from music_assets.rudiments.performance import compile_rudiment  # noqa: E402
from music_assets.rudiments.profiles import generate_profiles  # noqa: E402

COLUMNS = [
    "tier",
    "samples",
    "timing_sd_mean_ms",
    "timing_sd_range_ms",
    "timing_sd_in_range",
    "velocity_cv_mean",
    "velocity_cv_range",
    "velocity_cv_in_range",
    "timing_accuracy_mean",
]


def generate(root: Path, settings: DatasetSettings, with_checks: bool) -> tuple[float, float, list[TableSet]]:
    """Wall and CPU seconds to generate (and check) every partition, and the partitions' tables."""
    os.environ["MUSIC_ASSETS_DATA_DIR"] = str(root)
    lib = load_library()
    profiles = generate_profiles(settings.num_profiles, settings.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    sets = []
    for slug, r in lib.items():
        generate_partition(r, profiles, settings, root)
        if with_checks:
            _partition_outcomes(slug, r, profiles, root)
        sets.append(TableSet.in_folder(layout.performance_dir(slug, root)))
    return time.perf_counter() - t0, time.process_time() - c0, sets


def realism(sets: list[TableSet], label: str) -> None:
    outcome, table = check_realism(sets)
    print(f"\nrealism, {label}: {'PASS' if outcome.passed else 'FAIL: ' + outcome.description}")
    print(table[COLUMNS].round(3).to_string(index=False))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--players", type=int, default=250, help="players for the larger-scale realism table")
    args = ap.parse_args()
    lib = load_library()
    demo = DatasetSettings.resolve("demo")
    with tempfile.TemporaryDirectory() as tmp:
        elapsed, cpu, sets = generate(Path(tmp) / "demo", demo, with_checks=True)
        n = 40 * demo.num_profiles
        profiles = generate_profiles(demo.num_profiles, demo.seed)
        work = [(plan, compile_rudiment(r)) for r in lib.values() for plan in plan_partition(r, profiles, demo)[0]]
        t0 = time.perf_counter()
        perfs = [play(plan, comp) for plan, comp in work]
        bare = time.perf_counter() - t0
        t0 = time.perf_counter()
        for p in perfs:
            midi_bytes(p)
        direct = time.perf_counter() - t0
        t0 = time.perf_counter()
        for p in perfs:
            mido_file(p).save(file=io.BytesIO())
        with_mido = time.perf_counter() - t0
        print(
            f"demo preset: {n} samples, performances + MIDI + labels + checks in {elapsed:.2f} s "
            f"({cpu:.2f} s CPU) = {n / elapsed:.0f} samples/s"
        )
        print(f"  baseline, bare performances only: {bare:.2f} s; pipeline / bare time = {elapsed / bare:.1f}x")
        print(
            f"  MIDI encoding: direct {direct * 1000 / n:.2f} ms/file, mido {with_mido * 1000 / n:.2f} ms/file "
            f"= {with_mido / direct:.1f}x faster"
        )
        print(f"  peak RSS {psutil.Process().memory_info().rss / 2**20:.0f} MiB")
        realism(sets, f"demo scale ({n} samples)")
        big = DatasetSettings.resolve("demo", num_profiles=args.players)
        elapsed, cpu, sets = generate(Path(tmp) / "big", big, with_checks=False)
        print(f"\n{args.players} players: {40 * args.players} samples generated in {elapsed:.1f} s ({cpu:.1f} s CPU)")
        realism(sets, f"{args.players} players x 40 rudiments ({40 * args.players} samples)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
