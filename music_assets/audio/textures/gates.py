"""The checks of a written texture folder, measured from its files against its index."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from music_assets.audio.analysis import AudioAnalysisError
from music_assets.audio.textures.build import INDEX_NAME, measure
from music_assets.audio.textures.profiles import CHANNELS, KINDS, LOOPABLE_KINDS, PROFILES, SAMPLE_RATE, SUBTYPE
from music_assets.checks import CheckResult

SEAM_MAX_RATIO = 8.0
MAX_CLIPPED_RATIO = 0.001
MIN_PEAK_DBFS = -50.0
CHECK_DESCRIPTIONS = {
    "decodes": f"every file listed in {INDEX_NAME} exists and decodes whole; no kind of the profile is missing",
    "format_48k_stereo": f"{SAMPLE_RATE} Hz, {CHANNELS} channels, 24-bit",
    "duration_in_range": "every file's duration inside its profile's range for its kind",
    "not_clipped": f"at most {MAX_CLIPPED_RATIO:.1%} of each file's samples at full scale",
    "not_silent": f"every file peaks above {MIN_PEAK_DBFS:g} dBFS",
    "loop_seam_click_free": f"loopable kinds ({', '.join(sorted(LOOPABLE_KINDS))}): seam discontinuity "
    f"<= {SEAM_MAX_RATIO:g} (seam jump over the RMS sample step within 10 ms of it)",
}


def check_textures(folder: str | os.PathLike[str]) -> list[CheckResult]:
    """The gates of one source's textures, measured again from the files as they are on disk."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    folder = Path(folder)
    index = folder / INDEX_NAME
    try:
        rows = pq.read_table(index).to_pylist()
    except (OSError, ValueError) as exc:
        return [
            CheckResult(name=n, passed=False, description=f"{d}: cannot read {index}: {exc}")
            for n, d in CHECK_DESCRIPTIONS.items()
        ]
    measured: dict[str, dict[str, Any]] = {}
    unreadable: list[str] = []
    for r in rows:
        try:
            measured[r["file"]] = measure(folder / r["file"])
        except (AudioAnalysisError, OSError) as exc:
            unreadable.append(f"{r['file']}: {exc}")
    profiles = {r["profile"] for r in rows}
    missing_kinds = [
        f"{k} ({name})"
        for name in sorted(profiles)
        if name in PROFILES
        for k in KINDS
        if PROFILES[name].count(k) and not any(r["kind"] == k for r in rows)
    ]
    unknown = sorted(profiles - set(PROFILES))
    ok = [(r, measured[r["file"]]) for r in rows if r["file"] in measured]

    def failing(pred) -> list[str]:
        return [f"{r['file']}: {why}" for r, m in ok if (why := pred(r, m))]

    eps = 0.5 / SAMPLE_RATE

    def bad_duration(r, m):
        if r["profile"] not in PROFILES:
            return f"unknown profile {r['profile']!r}"
        lo, hi = PROFILES[r["profile"]].duration_range(r["kind"])
        d = m["duration_sec"]
        return None if lo - eps <= d <= hi + eps else f"{d:.3f} s not in [{lo:g}, {hi:g}] s"

    results = {
        "decodes": unreadable + [f"no {k}" for k in missing_kinds] + [f"unknown profile {p!r}" for p in unknown],
        "format_48k_stereo": failing(
            lambda r, m: (
                None
                if (m["sample_rate"], m["channels"], m["subtype"]) == (SAMPLE_RATE, CHANNELS, SUBTYPE)
                else f"{m['sample_rate']} Hz, {m['channels']} ch, {m['subtype']}"
            )
        ),
        "duration_in_range": failing(bad_duration),
        "not_clipped": failing(
            lambda r, m: None if m["clipped_ratio"] <= MAX_CLIPPED_RATIO else f"{m['clipped_ratio']:.4%} clipped"
        ),
        "not_silent": failing(
            lambda r, m: None if m["peak_dbfs"] > MIN_PEAK_DBFS else f"peak {m['peak_dbfs']:.1f} dBFS"
        ),
        "loop_seam_click_free": failing(
            lambda r, m: (
                None
                if r["kind"] not in LOOPABLE_KINDS or m["seam_discontinuity"] <= SEAM_MAX_RATIO
                else f"seam discontinuity {m['seam_discontinuity']:.2f}"
            )
        ),
    }
    worst_seam = max((m["seam_discontinuity"] for r, m in ok if r["kind"] in LOOPABLE_KINDS), default=0.0)
    extra: dict[str, dict[str, float | int | str]] = {
        "not_silent": {"min_peak_dbfs": round(min((m["peak_dbfs"] for _, m in ok), default=0.0), 2)},
        "not_clipped": {"max_clipped_ratio": max((m["clipped_ratio"] for _, m in ok), default=0.0)},
        "loop_seam_click_free": {"max_seam_discontinuity": round(worst_seam, 3), "threshold": SEAM_MAX_RATIO},
    }
    out = []
    for name, desc in CHECK_DESCRIPTIONS.items():
        problems = results[name]
        if name != "decodes":
            problems = problems + [f"{u.split(':')[0]}: not readable" for u in unreadable]
        text = f"{len(rows)} files; want {desc}" + ("" if not problems else ": " + "; ".join(problems[:10]))
        out.append(
            CheckResult(
                name=name,
                passed=not problems and bool(rows),
                description=text,
                metadata={"files": len(rows), "failing": len(problems), **extra.get(name, {})},
            )
        )
    return out
