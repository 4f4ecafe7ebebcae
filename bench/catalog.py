"""Benchmark the audio catalog: a cold run (every file decoded) against a warm re-run.

Creates N short files (default 2000: 0.5-2 s WAV and FLAC, mono and stereo,
8-22 kHz) in a temporary folder, catalogs them with no previous catalog (cold:
hash + full decode + measurements, in the process pool), writes the parquet,
then catalogs the unchanged tree again (warm: walk + stat, every row reused).
Prints files/s for both and the cold/warm ratio. The files were just written,
so "cold" means no previous catalog, not a cold page cache.

    python bench/catalog.py [--n 2000] [--workers 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def make_files(root: Path, n: int) -> int:
    import numpy as np
    import soundfile as sf

    from music_assets.seeding import stable_rng

    total = 0
    for i in range(n):
        rng = stable_rng("bench-catalog", i)
        sr = int(rng.choice([8000, 16000, 22050]))
        channels = int(rng.integers(1, 3))
        t = np.arange(int(sr * rng.uniform(0.5, 2.0))) / sr
        x = 0.4 * np.sin(2 * np.pi * rng.uniform(80, 800) * t) * np.exp(-2 * t) + 0.01 * rng.standard_normal(len(t))
        audio = np.repeat(x[:, None], channels, axis=1).astype(np.float32)
        fmt = "FLAC" if i % 3 == 0 else "WAV"
        path = root / f"set_{i // 100:03d}" / f"take_{i:05d}.{fmt.lower()}"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, audio, sr, format=fmt, subtype="PCM_16")
        total += path.stat().st_size
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="cold vs warm audio catalog")
    parser.add_argument("--n", type=int, default=2000, help="number of files (default 2000)")
    parser.add_argument("--workers", type=int, default=0, help="analysis processes (default: one per core)")
    args = parser.parse_args(argv)

    from music_assets.audio.catalog import build_catalog, default_workers, load_previous
    from music_assets.io import write_parquet

    with tempfile.TemporaryDirectory(prefix="bench_catalog_") as tmp:
        root = Path(tmp) / "audio"
        t0 = time.perf_counter()
        size = make_files(root, args.n)
        print(f"created {args.n} files ({size / 2**20:.1f} MiB) in {time.perf_counter() - t0:.1f} s")
        parquet = Path(tmp) / "audio_catalog.parquet"

        t0 = time.perf_counter()
        cold = build_catalog([root], workers=args.workers)
        write_parquet(parquet, cold.table())
        cold_s = time.perf_counter() - t0
        assert cold.analyzed == args.n and all(r["status"] == "ok" for r in cold.rows), "cold run lost files"

        t0 = time.perf_counter()
        warm = build_catalog([root], previous=load_previous(parquet), workers=args.workers)
        write_parquet(parquet, warm.table())
        warm_s = time.perf_counter() - t0
        assert warm.reused == args.n and warm.analyzed == 0, "warm run re-analysed files"
        assert warm.table().equals(cold.table()), "warm rows differ from cold rows"

    workers = args.workers or default_workers()
    print(f"cold catalog: {cold_s:7.2f} s  {args.n / cold_s:9.1f} files/s  ({workers} workers: decode + measure)")
    print(f"warm re-run:  {warm_s:7.2f} s  {args.n / warm_s:9.1f} files/s  (walk + stat, rows reused)")
    print(f"cold/warm ratio: {cold_s / warm_s:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
