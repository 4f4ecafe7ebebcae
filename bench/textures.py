"""Benchmark texture_beds' generation against librosa's own phase vocoder on the same audio.

Prepares the demo sources `make run` prepares (48 kHz stereo, as prepared_sources
writes them) into a temporary folder, or, with `--synthetic SECONDS`, one
synthesized source of that length. Then, in the same process:

1. the whole texture set of `--profile` for every source (`make_textures`:
   region finding, noise floor, pads, swells, clouds, hiss, FLAC writes and the
   measurements of the index), timed;
2. `librosa.effects.time_stretch` (the phase vocoder) over every source's whole
   audio, stereo, at the profile's middle stretch factor, timed.

Prints textures/s, source seconds/s and texture seconds/s of (1), the seconds of
(2) and the ratio (1)/(2). librosa's lazy imports are paid before either
timing. Timings on a shared machine are noisy.

    python bench/textures.py [--profile default] [--synthetic SECONDS] [--repeat 1]
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The three demo files the default selection keeps (the others are clipped, silent or scratch).
DEMO_SOURCES = ("bounces/funk_groove_96bpm.mp3", "masters/ballad_strings.mp3", "tracks/jazz_trio_take2.flac")


def synthetic_source(seconds: float):
    """A chord with a slow tremolo, a few soft hits and a noise floor: stable regions and transients."""
    import numpy as np

    from music_assets.seeding import stable_rng

    rng = stable_rng("bench-textures", seconds)
    sr = 48000
    t = np.arange(int(seconds * sr)) / sr
    x = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) * (1 + 0.2 * np.sin(2 * np.pi * 0.3 * t))
    for at in rng.integers(0, len(t) - 4800, size=int(seconds)):
        x[at : at + 4800] += 0.3 * np.exp(-np.arange(4800) / 600) * rng.standard_normal(4800)
    x = x + 0.003 * rng.standard_normal(len(t))
    return np.stack([x, np.roll(x, 240)], axis=1).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="texture beds vs librosa's phase vocoder")
    parser.add_argument("--profile", default="default", help="texture profile (default: default)")
    parser.add_argument("--synthetic", type=float, default=0.0, help="one synthesized source of this many seconds")
    parser.add_argument("--repeat", type=int, default=1, help="repeat both timings, keep the fastest")
    args = parser.parse_args(argv)

    import librosa
    import numpy as np
    import soundfile as sf

    from music_assets.audio import textures
    from music_assets.audio.preparation import prepare_source

    profile = textures.get_profile(args.profile)
    with tempfile.TemporaryDirectory(prefix="bench_textures_") as tmp:
        tmp = Path(tmp)
        sources: list[Path] = []
        if args.synthetic > 0:
            sources.append(tmp / "synthetic.flac")
            sf.write(sources[0], synthetic_source(args.synthetic), 48000, subtype="PCM_24")
        else:
            for rel in DEMO_SOURCES:
                src = ROOT / "data" / "raw_audio" / rel
                if not src.is_file():
                    raise SystemExit(f"{src} is missing: run from a checkout, or pass --synthetic SECONDS")
                sources.append(prepare_source(src, tmp / f"{Path(rel).stem}.flac").path)
        audio = {p: sf.read(p, dtype="float32", always_2d=True)[0] for p in sources}
        source_sec = sum(len(a) for a in audio.values()) / 48000

        # Pay librosa's lazy imports (and any JIT) before timing either side.
        warm = np.zeros((2, 48000), dtype=np.float32) + 1e-3
        librosa.effects.time_stretch(warm, rate=0.5)
        librosa.onset.onset_strength(y=warm[0], sr=48000)
        librosa.feature.spectral_centroid(y=warm[0], sr=48000)

        gen_times, pv_times, n_files, texture_sec = [], [], 0, 0.0
        for r in range(args.repeat):
            t0 = time.perf_counter()
            n_files, texture_sec = 0, 0.0
            for p in sources:
                made = textures.make_textures(p, tmp / f"out{r}" / p.stem, p.stem, profile, seed=0)
                n_files += len(made.rows)
                texture_sec += sum(row["duration_sec"] for row in made.rows)
            gen_times.append(time.perf_counter() - t0)
            rate = 2.0 / sum(profile.stretch)  # the profile's middle stretch factor
            t0 = time.perf_counter()
            for a in audio.values():
                librosa.effects.time_stretch(np.ascontiguousarray(a.T), rate=rate)
            pv_times.append(time.perf_counter() - t0)
    gen, pv = min(gen_times), min(pv_times)
    print(f"sources: {len(sources)}, {source_sec:.1f} s of 48 kHz stereo audio; profile {profile.name}")
    print(f"textures: {n_files} files, {texture_sec:.1f} s of audio in {gen:.2f} s")
    print(f"  {n_files / gen:.2f} textures/s, {source_sec / gen:.1f} source s/s, {texture_sec / gen:.1f} texture s/s")
    print(f"librosa phase vocoder alone (time_stretch x{1 / rate:.2f} of every whole source): {pv:.2f} s")
    print(f"ratio textures / phase vocoder: {gen / pv:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
