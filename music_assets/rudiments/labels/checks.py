"""The checks on label tables, computed from the written files: integrity, scores, ranges, stroke counts, tempos."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from music_assets.checks import CheckResult
from music_assets.rudiments.labels.tables import (
    EXAMPLES,
    TableSet,
    count_by_sample,
    markdown_table,
    read_columns,
    sample_frame,
)
from music_assets.rudiments.library import Rudiment
from music_assets.rudiments.midi import DRUM_CHANNEL, read_midi_summary
from music_assets.rudiments.performance import SNARE_PITCH
from music_assets.rudiments.scores import SCORE_COLUMNS


def check_integrity(tables: TableSet, root: Path, require_audio: bool = False) -> CheckResult:
    """Every stroke/measure/exercise row has its sample; every sample has its MIDI (and audio) file."""
    root = Path(root)
    cols = ["sample_id", "midi_path"] + (["audio_path"] if require_audio else [])
    samples = sample_frame(tables.samples, cols)
    problems: dict[str, list[str]] = {}
    ids = samples["sample_id"].tolist()
    dup = [k for k, v in Counter(ids).items() if v > 1]
    if dup:
        problems["duplicate sample_id"] = dup
    known = set(ids)
    for name in ("strokes", "measures", "exercises"):
        counts = count_by_sample(tables.paths[name])
        orphans = [s for s in counts if s not in known]
        if orphans:
            problems[f"{name} rows without a sample"] = orphans
        if name == "exercises":
            wrong = [s for s in ids if counts.get(s, 0) != 1]
            if wrong:
                problems["samples without exactly one exercises row"] = wrong
        elif name == "strokes":
            empty = [s for s in ids if counts.get(s, 0) == 0]
            if empty:
                problems["samples without strokes"] = empty
    no_midi = [sid for sid, p in zip(ids, samples["midi_path"], strict=True) if not p or not (root / p).is_file()]
    if no_midi:
        problems["samples without their MIDI file"] = no_midi
    if require_audio:
        if "audio_path" not in samples:
            problems["samples without an audio_path column"] = ids
        else:
            no_audio = [
                sid
                for sid, p in zip(ids, samples["audio_path"], strict=True)
                if p is None or (isinstance(p, float) and math.isnan(p)) or not (root / str(p)).is_file()
            ]
            if no_audio:
                problems["samples without their audio file"] = no_audio
    meta = {"samples": len(ids), **{k: len(v) for k, v in problems.items()}}
    if problems:
        meta["examples"] = markdown_table(
            [
                {"problem": k, "count": len(v), "examples": ", ".join(map(str, v[:EXAMPLES]))}
                for k, v in problems.items()
            ]
        )
        return CheckResult(False, "; ".join(f"{len(v)} {k}" for k, v in problems.items()), meta)
    return CheckResult(True, f"{len(ids)} samples, every row has its sample and every sample its files", meta)


def check_scores(tables: TableSet) -> CheckResult:
    """Every exercise score is null or within 0-100, and overall_score is never null."""
    bad: dict[str, int] = dict.fromkeys(SCORE_COLUMNS, 0)
    n = 0
    for batch in read_columns(tables.exercises, list(SCORE_COLUMNS)):
        n += batch.num_rows
        for name in SCORE_COLUMNS:
            col = batch.column(name)
            out = pc.or_(pc.less(col, 0.0), pc.greater(col, 100.0))
            bad[name] += int(pc.sum(pc.fill_null(out, False)).as_py() or 0)
            if name == "overall_score":
                bad[name] += col.null_count
    failing = {k: v for k, v in bad.items() if v}
    meta = {"rows": n, **{f"out of range: {k}": v for k, v in failing.items()}}
    if failing:
        return CheckResult(False, f"scores outside 0-100 (or a missing overall score) in {failing}", meta)
    return CheckResult(True, f"all 14 scores of {n} samples are within 0-100", meta)


# Value ranges of the label columns: what any performance can produce (measured over 6 rudiments x
# 250 players x 2 tempos x 2 lengths: timing errors within +-475 ms, every onset inside the take).
# A value outside them is damage that kept the file readable (a flipped byte in a data page), or a
# generator bug: either way the labels must not ship.
MAX_ABS_TIMING_ERROR_MS = 1000.0
MAX_DURATION_SEC = 3600.0
MIDI_VELOCITY = (1, 127)
MAX_FLAM_SPACING_MS = 1000.0
TIME_TOLERANCE_MS = 1e-6


def check_value_ranges(tables: TableSet) -> CheckResult:
    """Every label value is finite and in range: performed onsets inside the take (0 <= t <= duration),
    intended ones within 1 s of it,
    |timing_error_ms| <= 1 s and equal to actual - intended, velocities 1-127, flam spacing 0-1 s,
    durations in (0, 3600] s, per-sample timing SD and velocity CV finite and >= 0, measure statistics
    finite. Reads the files in batches."""
    samples = sample_frame(tables.samples, ["sample_id", "duration_sec", "timing_error_sd_ms", "velocity_cv"])
    bad: dict[str, list[str]] = {}

    def flag(what: str, ids: Iterable[Any]) -> None:
        ids = list(ids)
        if ids:
            bad.setdefault(what, []).extend(str(i) for i in ids)

    dur = samples["duration_sec"].astype(float)
    flag(
        f"samples with duration_sec outside (0, {MAX_DURATION_SEC:g}]",
        samples.loc[~((dur > 0) & (dur <= MAX_DURATION_SEC)), "sample_id"],
    )
    for col in ("timing_error_sd_ms", "velocity_cv"):
        v = samples[col].astype(float)
        flag(f"samples with {col} not finite or < 0", samples.loc[~(np.isfinite(v) & (v >= 0)), "sample_id"])
    duration_ms = dict(zip(samples["sample_id"], dur * 1000.0, strict=True))
    cols = [
        "sample_id",
        "intended_time_ms",
        "actual_time_ms",
        "timing_error_ms",
        "intended_velocity",
        "actual_velocity",
        "flam_spacing_ms",
    ]
    n = 0
    for batch in read_columns(tables.strokes, cols):
        n += batch.num_rows
        sid = batch.column("sample_id").to_numpy(zero_copy_only=False)
        limit = np.array([duration_ms.get(x, np.nan) for x in sid], dtype=float)
        intended = batch.column("intended_time_ms").to_numpy(zero_copy_only=False).astype(float)
        actual = batch.column("actual_time_ms").to_numpy(zero_copy_only=False).astype(float)
        error = batch.column("timing_error_ms").to_numpy(zero_copy_only=False).astype(float)
        ok = np.isfinite(actual) & (actual >= 0) & (actual <= limit + TIME_TOLERANCE_MS)
        flag("strokes with actual_time_ms not inside the take (0..duration)", sid[~ok])
        # the grid point a stroke aimed at: within a timing error of the take (a rushed last note ends it early)
        ok = (
            np.isfinite(intended)
            & (intended >= -MAX_ABS_TIMING_ERROR_MS)
            & (intended <= limit + MAX_ABS_TIMING_ERROR_MS)
        )
        flag(f"strokes with intended_time_ms more than {MAX_ABS_TIMING_ERROR_MS:g} ms outside the take", sid[~ok])
        ok = np.isfinite(error) & (np.abs(error) <= MAX_ABS_TIMING_ERROR_MS)
        flag(f"strokes with |timing_error_ms| > {MAX_ABS_TIMING_ERROR_MS:g} or not finite", sid[~ok])
        mismatch = np.abs(error - (actual - intended)) > 1e-6 * np.maximum(1.0, np.abs(actual))
        flag("strokes whose timing_error_ms is not actual - intended", sid[ok & mismatch])
        lo, hi = MIDI_VELOCITY
        for name in ("intended_velocity", "actual_velocity"):
            col = batch.column(name)
            v = col.to_numpy(zero_copy_only=False).astype(float)
            flag(f"strokes with {name} outside {lo}-{hi}", sid[~((v >= lo) & (v <= hi))])
        spacing = batch.column("flam_spacing_ms")
        valid = ~np.asarray(spacing.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        sp = spacing.fill_null(0.0).to_numpy(zero_copy_only=False).astype(float)
        ok = ~valid | (np.isfinite(sp) & (sp >= 0) & (sp <= MAX_FLAM_SPACING_MS))
        flag(f"strokes with flam_spacing_ms outside 0-{MAX_FLAM_SPACING_MS:g}", sid[~ok])
    measure_cols = [c for c in pq.read_schema(tables.measures).names if c not in ("sample_id", "measure_index")]
    for batch in read_columns(tables.measures, ["sample_id", *measure_cols]):
        sid = batch.column("sample_id").to_numpy(zero_copy_only=False)
        for name in measure_cols:
            col = batch.column(name)
            v = col.fill_null(0).to_numpy(zero_copy_only=False).astype(float)
            flag(f"measures with {name} not finite", sid[~np.isfinite(v)])
    meta: dict[str, Any] = {"samples": len(samples), "strokes": n, **{k: len(v) for k, v in bad.items()}}
    if bad:
        meta["examples"] = markdown_table(
            [{"problem": k, "rows": len(v), "samples": ", ".join(sorted(set(v))[:EXAMPLES])} for k, v in bad.items()]
        )
        return CheckResult(False, "; ".join(f"{len(v)} {k}" for k, v in bad.items()), meta)
    return CheckResult(True, f"every value of {len(samples)} samples and {n} strokes is finite and in range", meta)


def check_stroke_counts(tables: TableSet, root: Path) -> CheckResult:
    """Stroke rows per sample = num_strokes = note count of its MIDI file (all snare, channel 10)."""
    root = Path(root)
    samples = sample_frame(tables.samples, ["sample_id", "num_strokes", "midi_path"])
    counts = count_by_sample(tables.strokes)
    mismatch: list[str] = []
    not_drums: list[str] = []
    unreadable: list[str] = []
    for sid, expected, rel in zip(samples["sample_id"], samples["num_strokes"], samples["midi_path"], strict=True):
        try:
            summary = read_midi_summary(root / rel)
        except (OSError, ValueError, EOFError) as exc:
            unreadable.append(f"{sid} ({exc})")
            continue
        if not (counts.get(sid, 0) == int(expected) == summary.note_count):
            mismatch.append(
                f"{sid}: {counts.get(sid, 0)} strokes, num_strokes {expected}, {summary.note_count} MIDI notes"
            )
        if summary.channels != {DRUM_CHANNEL} or summary.pitches != {SNARE_PITCH}:
            not_drums.append(f"{sid}: channels {sorted(summary.channels)}, pitches {sorted(summary.pitches)}")
    meta = {
        "samples": len(samples),
        "count mismatches": len(mismatch),
        "not snare on channel 10": len(not_drums),
        "unreadable MIDI": len(unreadable),
    }
    problems = mismatch + not_drums + unreadable
    if problems:
        meta["examples"] = "\n".join(problems[:EXAMPLES])
        return CheckResult(
            False,
            f"{len(mismatch)} count mismatches, {len(not_drums)} files not snare on channel 10, "
            f"{len(unreadable)} unreadable",
            meta,
        )
    return CheckResult(
        True, f"stroke rows = num_strokes = MIDI notes for {len(samples)} samples; all snare 38 on channel 10", meta
    )


def check_tempos(tables: TableSet, rudiments: Mapping[str, Rudiment], profiles: pd.DataFrame) -> CheckResult:
    """Every tempo lies inside the rudiment's tempo range and the player's comfortable range."""
    s = sample_frame(tables.samples, ["sample_id", "rudiment_slug", "profile_id", "tempo_bpm"]).merge(
        profiles[["profile_id", "comfort_tempo_min_bpm", "comfort_tempo_max_bpm"]], on="profile_id", how="left"
    )
    r_min = s["rudiment_slug"].map({k: r.tempo_min_bpm for k, r in rudiments.items()})
    r_max = s["rudiment_slug"].map({k: r.tempo_max_bpm for k, r in rudiments.items()})
    inside = s["tempo_bpm"].between(r_min, r_max) & s["tempo_bpm"].between(
        s["comfort_tempo_min_bpm"], s["comfort_tempo_max_bpm"]
    )
    outside = [
        f"{row.sample_id}: {row.tempo_bpm} bpm (rudiment {lo:g}-{hi:g}, player "
        f"{row.comfort_tempo_min_bpm:.0f}-{row.comfort_tempo_max_bpm:.0f})"
        for row, lo, hi in zip(s[~inside].itertuples(), r_min[~inside], r_max[~inside], strict=True)
    ]
    meta = {"samples": len(s), "outside": len(outside)}
    if outside:
        meta["examples"] = "\n".join(outside[:EXAMPLES])
        return CheckResult(False, f"{len(outside)} tempos outside the rudiment's or the player's range", meta)
    return CheckResult(True, "every tempo is inside the rudiment's and the player's range", meta)
