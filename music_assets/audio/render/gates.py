"""The blocking audio gates of a written partition, computed from its files and tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from music_assets import layout
from music_assets.audio.render.plan import SAMPLE_RATE, SUBTYPE, TAIL_SEC, read_table
from music_assets.checks import CheckResult

# gate thresholds (the acceptance limits)
DURATION_TOLERANCE_SEC = 0.050
MAX_CLIPPED_RATIO = 0.001
SILENCE_DBFS = -60.0  # a file whose peak stays below this is silent
MAX_ALIGN_MEDIAN_MS = 5.0


def _duration_problems(merged, data: Path) -> tuple[list[str], float]:
    """The files failing the duration gate (why, one line each) and the worst offset (s) of the others."""
    import soundfile as sf  # noqa: PLC0415

    bad_duration: list[str] = []
    worst_dur = 0.0
    for sid, rel, dur, channels in zip(
        merged["sample_id"], merged["audio_path"], merged["duration_sec"], merged["audio_channels"], strict=True
    ):
        if not isinstance(rel, str):
            bad_duration.append(f"{sid}: no audio row")
            continue
        path = data / rel
        try:
            info = sf.info(str(path))
        except Exception as exc:  # noqa: BLE001 - missing or unreadable file
            bad_duration.append(f"{rel}: unreadable ({type(exc).__name__})")
            continue
        if (
            info.samplerate != SAMPLE_RATE
            or info.channels != channels
            or channels not in (1, 2)
            or info.subtype != SUBTYPE
        ):
            bad_duration.append(
                f"{rel}: {info.samplerate} Hz, {info.channels} ch, {info.subtype}; "
                f"expected {SAMPLE_RATE} Hz, {channels} ch, {SUBTYPE}"
            )
            continue
        off = abs(info.frames / info.samplerate - (float(dur) + TAIL_SEC))
        worst_dur = max(worst_dur, off)
        if off > DURATION_TOLERANCE_SEC:
            bad_duration.append(f"{rel}: {info.frames / info.samplerate:.3f} s, expected {float(dur) + TAIL_SEC:.3f} s")
    return bad_duration, worst_dur


def check_partition(slug: str, data: Path) -> list[CheckResult]:
    """The blocking gates of one partition, computed from its written files and tables.

    - duration: every FLAC exists, is 44.1 kHz 24-bit with the channel count its
      audio.parquet row records (1 or 2), and lasts the MIDI
      length (`duration_sec`) + TAIL_SEC within +-50 ms (read from the file header);
    - clipping: at most 0.1 % of the samples of any file at full scale;
    - silence: no file whose peak stays below -60 dBFS;
    - alignment: in every sample, onsets in the dry render are within a median
      5 ms of the labelled non-grace strokes.
    """
    perf = layout.performance_dir(slug, data)
    samples = read_table(perf / "samples.parquet", ["sample_id", "duration_sec"])
    audio = read_table(
        perf / "audio.parquet",
        [
            "sample_id",
            "audio_path",
            "audio_channels",
            "audio_peak_dbfs",
            "audio_clipped_ratio",
            "align_median_error_ms",
        ],
    )
    merged = samples.merge(audio, on="sample_id", how="left")
    n = len(merged)

    bad_duration, worst_dur = _duration_problems(merged, data)

    def _listing(items: list[str]) -> str:
        return "; ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")

    clip = merged["audio_clipped_ratio"].astype(float)
    peak = merged["audio_peak_dbfs"].astype(float)
    align = merged["align_median_error_ms"].astype(float)
    clipped = merged.loc[~(clip <= MAX_CLIPPED_RATIO), "sample_id"].tolist()
    silent = merged.loc[~(peak >= SILENCE_DBFS), "sample_id"].tolist()
    misaligned = merged.loc[~(align <= MAX_ALIGN_MEDIAN_MS), "sample_id"].tolist()
    return [
        CheckResult(
            name="audio_duration_matches_midi",
            passed=not bad_duration and n > 0,
            description=f"{n - len(bad_duration)}/{n} files last the MIDI length + {TAIL_SEC} s within "
            f"+-{DURATION_TOLERANCE_SEC * 1000:.0f} ms"
            + (f"; failing: {_listing(bad_duration)}" if bad_duration else ""),
            metadata={"samples": n, "failing": len(bad_duration), "worst_offset_ms": round(worst_dur * 1000, 2)},
        ),
        CheckResult(
            name="audio_not_clipped",
            passed=not clipped and n > 0,
            description=f"{n - len(clipped)}/{n} files with at most {MAX_CLIPPED_RATIO:.1%} clipped samples"
            + (f"; failing: {_listing(clipped)}" if clipped else ""),
            metadata={"samples": n, "failing": len(clipped), "max_clipped_ratio": float(clip.max()) if n else 0.0},
        ),
        CheckResult(
            name="audio_not_silent",
            passed=not silent and n > 0,
            description=f"{n - len(silent)}/{n} files peak above {SILENCE_DBFS:.0f} dBFS"
            + (f"; silent: {_listing(silent)}" if silent else ""),
            metadata={"samples": n, "failing": len(silent), "min_peak_dbfs": float(peak.min()) if n else 0.0},
        ),
        CheckResult(
            name="audio_aligned_with_labels",
            passed=not misaligned and n > 0,
            description=f"{n - len(misaligned)}/{n} samples with median |onset - labelled stroke| "
            f"<= {MAX_ALIGN_MEDIAN_MS} ms" + (f"; failing: {_listing(misaligned)}" if misaligned else ""),
            metadata={"samples": n, "failing": len(misaligned)}
            | (
                {
                    "median_error_ms": round(float(np.nanmedian(align)), 3),
                    "worst_sample_error_ms": round(float(np.nanmax(align)), 3),
                }
                if np.isfinite(align).any()
                else {}
            ),
        ),
    ]
