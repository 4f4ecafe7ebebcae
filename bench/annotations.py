"""Accuracy of track_annotations' BPM, key and meter: essentia (chosen) against a plain librosa baseline.

Renders its own labelled set with FluidSynth (`music_assets.training_sets.labelled`: drums, bass,
chords and a melody at a known BPM in a known key and meter; tempos 70-150 BPM, all twelve tonics,
major and minor, every fourth track in 3/4), written as the prepared sources are (48 kHz stereo
24-bit FLAC), then measures every file with each method, in the same process:

    essentia        RhythmExtractor2013 (multifeature) + KeyExtractor (bgate) + our tempo-octave check
    essentia-plain  the same without the octave check
    librosa         beat_track + Krumhansl-Schmuckler on CQT chroma (the baseline; no octave check)
    librosa+octave  the baseline with the octave check, to show what the check alone does

and prints, per method: BPM accuracy (within +-2 % of the truth; half or double counted wrong, and
counted separately), key accuracy (exact; the relative major/minor counted separately), meter
accuracy (3/4 vs 4/4), and seconds per track (median, after one warm-up call per method: librosa's
first call compiles its numba kernels). `--list` prints every track's estimates.

    python bench/annotations.py [--tracks 24] [--seconds 30] [--list]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

METHODS = {
    "essentia": ("essentia", True),
    "essentia-plain": ("essentia", False),
    "librosa": ("librosa", False),
    "librosa+octave": ("librosa", True),
}
BPM_TARGET, KEY_TARGET = 0.95, 0.90


def bpm_verdict(estimate: float, truth: float) -> str:
    """'ok' within +-2 %, 'half'/'double' at the tempo octave (counted wrong), else 'wrong'."""
    for label, factor in (("ok", 1.0), ("half", 0.5), ("double", 2.0)):
        if abs(estimate - truth * factor) <= 0.02 * truth * factor:
            return label
    return "wrong"


def key_verdict(estimate: str, truth: str) -> str:
    from music_assets.training_sets.keys import normalize_key, relative

    if normalize_key(estimate) == normalize_key(truth):
        return "ok"
    return "relative" if normalize_key(estimate) == relative(truth) else "wrong"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="BPM/key/meter accuracy: essentia vs librosa")
    parser.add_argument("--tracks", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--list", action="store_true", help="print every track's estimates")
    args = parser.parse_args(argv)

    import soxr

    from music_assets.audio.io import write_flac
    from music_assets.training_sets import analysis
    from music_assets.training_sets.labelled import labelled_set, render

    tracks = labelled_set(args.tracks, args.seconds)
    with tempfile.TemporaryDirectory(prefix="bench-annotations-") as tmp:
        t0 = time.perf_counter()
        files = []
        for tr in tracks:
            audio = soxr.resample(render(tr, sample_rate=44100), 44100, 48000, quality="HQ")
            files.append(write_flac(Path(tmp) / f"{tr.name}.flac", audio, 48000))
        print(f"rendered {len(tracks)} labelled tracks of {args.seconds:g} s in {time.perf_counter() - t0:.1f} s")
        results: dict[str, list] = {}
        for name, (method, octave) in METHODS.items():
            mono, stereo, sr = analysis.load(files[0])
            analysis.measure_array(mono[: 10 * analysis.SAMPLE_RATE], stereo[: 10 * sr], sr, method, octave)  # warm-up
            rows = []
            for tr, f in zip(tracks, files, strict=True):
                t = time.perf_counter()
                m = analysis.measure(f, method=method, octave_check=octave)
                rows.append((tr, m, time.perf_counter() - t))
            results[name] = rows

    if args.list:
        print(f"\n{'track':34s} " + " ".join(f"{n:>26s}" for n in results))
        for i, tr in enumerate(tracks):
            cells = []
            for rows in results.values():
                m = rows[i][1]
                cells.append(f"{m.bpm:6.1f} {m.key:9s} {m.time_signature}/4")
            print(f"{tr.name:34s} " + " ".join(f"{c:>26s}" for c in cells))

    print(f"\n{len(tracks)} tracks, {args.seconds:g} s each, 70-150 BPM, 12 tonics x major/minor, 3/4 and 4/4")
    header = ("method", "BPM ok", "half", "double", "key ok", "relative", "meter ok", "s/track")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    summary = {}
    for name, rows in results.items():
        n = len(rows)
        bpm = [bpm_verdict(m.bpm, tr.bpm) for tr, m, _ in rows]
        key = [key_verdict(m.key, tr.key) for tr, m, _ in rows]
        meter = sum(m.time_signature == tr.beats_per_bar for tr, m, _ in rows)
        secs = statistics.median(s for *_, s in rows)
        summary[name] = (bpm.count("ok") / n, key.count("ok") / n, secs)
        print(
            f"| {name} | {bpm.count('ok') / n:.1%} | {bpm.count('half')} | {bpm.count('double')} | "
            f"{key.count('ok') / n:.1%} | {key.count('relative')} | {meter / n:.1%} | {secs:.2f} |"
        )
    chosen, base = summary["essentia"], summary["librosa"]
    print(
        f"\nchosen (essentia) vs baseline (librosa): BPM {chosen[0]:.1%} vs {base[0]:.1%}, "
        f"key {chosen[1]:.1%} vs {base[1]:.1%}, {chosen[2]:.2f} vs {base[2]:.2f} s/track "
        f"(x{base[2] / chosen[2]:.2f} faster)"
    )
    met = chosen[0] >= BPM_TARGET and chosen[1] >= KEY_TARGET and chosen[0] >= base[0] and chosen[1] >= base[1]
    print(
        f"targets (BPM >= {BPM_TARGET:.0%}, key >= {KEY_TARGET:.0%}, no worse than the baseline): "
        + ("met" if met else "NOT met")
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
