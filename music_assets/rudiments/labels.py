"""Merging the per-rudiment tables into the dataset's label files, and the checks on them.

`merge_labels` streams: it holds one partition's tables at a time and appends
them to four `pyarrow.parquet.ParquetWriter`s (one row group per partition),
so memory does not grow with the number of samples. `samples.parquet` is each
partition's performance samples joined with its `audio.parquet` on `sample_id`
(all columns of both; an audio column that repeats a samples column is dropped).

The checks read the written files back (in record batches) and return a
`CheckOutcome`; they are shared by the per-partition checks of
`rudiment_performances` and the dataset-level checks of `rudiment_labels`.
Per-sample bookkeeping (ids, stroke counts) grows with the number of samples,
never with the number of strokes.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from music_assets import layout
from music_assets.io import atomic_path
from music_assets.rudiments.constants import SKILL_TIERS
from music_assets.rudiments.dataset import SCHEMAS
from music_assets.rudiments.library import Rudiment
from music_assets.rudiments.midi import DRUM_CHANNEL, read_midi_summary
from music_assets.rudiments.performance import PRIMARY_TYPES, SNARE_PITCH, STROKE_TYPES
from music_assets.rudiments.scores import SCORE_COLUMNS

# Published ranges per tier: SD of the timing error (ms) and velocity coefficient of variation.
REALISM_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "professional": {"timing_error_sd_ms": (5.0, 15.0), "velocity_cv": (0.05, 0.12)},
    "advanced": {"timing_error_sd_ms": (8.0, 25.0), "velocity_cv": (0.08, 0.18)},
    "intermediate": {"timing_error_sd_ms": (20.0, 45.0), "velocity_cv": (0.12, 0.25)},
    "beginner": {"timing_error_sd_ms": (35.0, 80.0), "velocity_cv": (0.18, 0.35)},
}
PRIMARY_NAMES = [STROKE_TYPES[c] for c in PRIMARY_TYPES]
BATCH_ROWS = 65_536
MERGE_BATCH_ROWS = 16_384  # rows per row group of the merged tables: merging holds one batch, not a partition
EXAMPLES = 5


class LabelsError(RuntimeError):
    """A partition's tables are missing or inconsistent; the message names the file."""


@dataclass(frozen=True)
class TableSet:
    """The four label tables of one partition or of the merged dataset."""

    samples: Path
    strokes: Path
    measures: Path
    exercises: Path

    @classmethod
    def in_folder(cls, folder: Path) -> TableSet:
        return cls(*(folder / f"{name}.parquet" for name in layout.PARTITION_TABLES))

    @property
    def paths(self) -> dict[str, Path]:
        return dict(
            zip(layout.PARTITION_TABLES, (self.samples, self.strokes, self.measures, self.exercises), strict=True)
        )


@dataclass
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- merging
@dataclass
class MergeSummary:
    rows: dict[str, int]
    partitions: list[str]
    audio_columns: list[str]


def _read(path: Path, what: str) -> pa.Table:
    if not path.is_file():
        raise LabelsError(f"{path}: missing ({what})")
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise LabelsError(f"{path}: unreadable parquet ({exc})") from exc


def _read_batches(path: Path, what: str) -> Iterator[pa.RecordBatch]:
    """The rows of `path` in batches of at most MERGE_BATCH_ROWS, with _read's errors."""
    if not path.is_file():
        raise LabelsError(f"{path}: missing ({what})")
    try:
        yield from pq.ParquetFile(path).iter_batches(batch_size=MERGE_BATCH_ROWS)
    except (OSError, pa.ArrowException) as exc:
        raise LabelsError(f"{path}: unreadable parquet ({exc})") from exc


def _conform(table: pa.Table, schema: pa.Schema, path: Path) -> pa.Table:
    missing = [n for n in schema.names if n not in table.column_names]
    if missing:
        raise LabelsError(f"{path}: columns {missing} are missing")
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise LabelsError(f"{path}: columns do not match the expected types ({exc})") from exc


def join_audio(samples: pa.Table, audio: pa.Table, audio_file: Path) -> pa.Table:
    """`samples` with the columns of `audio` (matched on sample_id; nulls where audio has no row)."""
    ids = audio.column("sample_id").to_pylist()
    if len(set(ids)) != len(ids):
        dup = [k for k, v in Counter(ids).items() if v > 1][:EXAMPLES]
        raise LabelsError(f"{audio_file}: duplicate sample_id rows {dup}")
    row_of = {sid: i for i, sid in enumerate(ids)}
    take = pa.array([row_of.get(sid) for sid in samples.column("sample_id").to_pylist()], type=pa.int64())
    extra = [c for c in audio.column_names if c not in samples.column_names]
    joined = samples
    for name in extra:
        col = audio.column(name)
        if pa.types.is_large_string(col.type):
            col = col.cast(pa.string())
        joined = joined.append_column(name, col.take(take))
    return joined


def merge_labels(slugs: Sequence[str], root: Path) -> MergeSummary:
    """Write `rudiments/labels/{samples,strokes,measures,exercises}.parquet` from the partitions.

    Every partition in `slugs` must have its performance tables and its
    `audio.parquet`; a missing one is an error naming the file. Files are
    replaced atomically, and only when all four were written.
    """
    out_dir = layout.labels_dir(root)
    rows = dict.fromkeys(layout.PARTITION_TABLES, 0)
    writers: dict[str, pq.ParquetWriter] = {}
    samples_schema: pa.Schema | None = None
    audio_columns: list[str] = []
    with contextlib.ExitStack() as stack:
        tmp = {name: stack.enter_context(atomic_path(out_dir / f"{name}.parquet")) for name in layout.PARTITION_TABLES}
        for slug in slugs:
            folder = layout.performance_dir(slug, root)
            tables = TableSet.in_folder(folder)
            audio_file = folder / f"{layout.AUDIO_TABLE}.parquet"
            samples = _conform(_read(tables.samples, f"performances of {slug}"), SCHEMAS["samples"], tables.samples)
            audio = _read(audio_file, f"audio of {slug}; materialize rudiment_audio for this partition")
            if "sample_id" not in audio.column_names:
                raise LabelsError(f"{audio_file}: has no sample_id column")
            joined = join_audio(samples, audio, audio_file)
            if samples_schema is None:
                samples_schema = joined.schema
                audio_columns = [c for c in joined.column_names if c not in SCHEMAS["samples"].names]
            elif joined.schema.names != samples_schema.names:
                raise LabelsError(
                    f"{audio_file}: audio columns {joined.column_names[len(SCHEMAS['samples']) :]} "
                    f"differ from the first partition's {audio_columns}"
                )
            parts = {"samples": [_conform(joined, samples_schema, audio_file)]}
            for name in ("strokes", "measures", "exercises"):
                path = tables.paths[name]
                # in batches: a full-preset partition has 250,000 strokes
                parts[name] = (
                    _conform(pa.Table.from_batches([b]), SCHEMAS[name], path)
                    for b in _read_batches(path, f"{name} of {slug}")
                )
            for name, chunks in parts.items():
                if name not in writers:
                    schema = samples_schema if name == "samples" else SCHEMAS[name]
                    writers[name] = stack.enter_context(pq.ParquetWriter(tmp[name], schema, compression="zstd"))
                for table in chunks:
                    writers[name].write_table(table, row_group_size=max(1, table.num_rows))
                    rows[name] += table.num_rows
            del parts, joined, samples, audio
        if not writers:
            raise LabelsError("no partitions to merge")
        for w in writers.values():
            w.close()
    return MergeSummary(rows=rows, partitions=list(slugs), audio_columns=audio_columns)


# ---------------------------------------------------------------- reading helpers
def _batches(path: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
    yield from pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=columns)


def _sample_frame(path: Path, columns: Iterable[str]) -> pd.DataFrame:
    names = pq.read_schema(path).names
    return pq.read_table(path, columns=[c for c in columns if c in names]).to_pandas()


def _count_by_sample(path: Path) -> Counter:
    counts: Counter = Counter()
    for batch in _batches(path, ["sample_id"]):
        vc = pc.value_counts(batch.column(0))
        counts.update(dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True)))
    return counts


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A small markdown table (for metadata)."""
    if not rows:
        return "(none)"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.3g}" if abs(v) < 1 else f"{v:.1f}"
    return str(v)


# ---------------------------------------------------------------- checks
def check_integrity(tables: TableSet, root: Path, require_audio: bool = False) -> CheckOutcome:
    """Every stroke/measure/exercise row has its sample; every sample has its MIDI (and audio) file."""
    root = Path(root)
    cols = ["sample_id", "midi_path"] + (["audio_path"] if require_audio else [])
    samples = _sample_frame(tables.samples, cols)
    problems: dict[str, list[str]] = {}
    ids = samples["sample_id"].tolist()
    dup = [k for k, v in Counter(ids).items() if v > 1]
    if dup:
        problems["duplicate sample_id"] = dup
    known = set(ids)
    for name in ("strokes", "measures", "exercises"):
        counts = _count_by_sample(tables.paths[name])
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
        return CheckOutcome(False, "; ".join(f"{len(v)} {k}" for k, v in problems.items()), meta)
    return CheckOutcome(True, f"{len(ids)} samples, every row has its sample and every sample its files", meta)


def check_scores(tables: TableSet) -> CheckOutcome:
    """Every exercise score is null or within 0-100, and overall_score is never null."""
    bad: dict[str, int] = dict.fromkeys(SCORE_COLUMNS, 0)
    n = 0
    for batch in _batches(tables.exercises, list(SCORE_COLUMNS)):
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
        return CheckOutcome(False, f"scores outside 0-100 (or a missing overall score) in {failing}", meta)
    return CheckOutcome(True, f"all 14 scores of {n} samples are within 0-100", meta)


# Value ranges of the label columns: what any performance can produce (measured over 6 rudiments x
# 250 players x 2 tempos x 2 lengths: timing errors within +-475 ms, every onset inside the take).
# A value outside them is damage that kept the file readable (a flipped byte in a data page), or a
# generator bug: either way the labels must not ship.
MAX_ABS_TIMING_ERROR_MS = 1000.0
MAX_DURATION_SEC = 3600.0
MIDI_VELOCITY = (1, 127)
MAX_FLAM_SPACING_MS = 1000.0
TIME_TOLERANCE_MS = 1e-6


def check_value_ranges(tables: TableSet) -> CheckOutcome:
    """Every label value is finite and in range: performed onsets inside the take (0 <= t <= duration),
    intended ones within 1 s of it,
    |timing_error_ms| <= 1 s and equal to actual - intended, velocities 1-127, flam spacing 0-1 s,
    durations in (0, 3600] s, per-sample timing SD and velocity CV finite and >= 0, measure statistics
    finite. Reads the files in batches."""
    samples = _sample_frame(tables.samples, ["sample_id", "duration_sec", "timing_error_sd_ms", "velocity_cv"])
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
    for batch in _batches(tables.strokes, cols):
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
    for batch in _batches(tables.measures, ["sample_id", *measure_cols]):
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
        return CheckOutcome(False, "; ".join(f"{len(v)} {k}" for k, v in bad.items()), meta)
    return CheckOutcome(True, f"every value of {len(samples)} samples and {n} strokes is finite and in range", meta)


def check_stroke_counts(tables: TableSet, root: Path) -> CheckOutcome:
    """Stroke rows per sample = num_strokes = note count of its MIDI file (all snare, channel 10)."""
    root = Path(root)
    samples = _sample_frame(tables.samples, ["sample_id", "num_strokes", "midi_path"])
    counts = _count_by_sample(tables.strokes)
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
        return CheckOutcome(
            False,
            f"{len(mismatch)} count mismatches, {len(not_drums)} files not snare on channel 10, "
            f"{len(unreadable)} unreadable",
            meta,
        )
    return CheckOutcome(
        True, f"stroke rows = num_strokes = MIDI notes for {len(samples)} samples; all snare 38 on channel 10", meta
    )


def check_tempos(tables: TableSet, rudiments: Mapping[str, Rudiment], profiles: pd.DataFrame) -> CheckOutcome:
    """Every tempo lies inside the rudiment's tempo range and the player's comfortable range."""
    s = _sample_frame(tables.samples, ["sample_id", "rudiment_slug", "profile_id", "tempo_bpm"]).merge(
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
        return CheckOutcome(False, f"{len(outside)} tempos outside the rudiment's or the player's range", meta)
    return CheckOutcome(True, "every tempo is inside the rudiment's and the player's range", meta)


def per_sample_realism(tables: TableSet) -> pd.DataFrame:
    """timing_error_sd_ms and velocity_cv of each sample, recomputed from the strokes file (primary strokes)."""
    ids, sums = [], []
    cols = ["sample_id", "stroke_type", "timing_error_ms", "intended_velocity", "actual_velocity"]
    for batch in _batches(tables.strokes, cols):
        batch = batch.filter(pc.is_in(batch.column("stroke_type"), pa.array(PRIMARY_NAMES)))
        if batch.num_rows == 0:
            continue
        sid, inv = np.unique(batch.column("sample_id").to_numpy(zero_copy_only=False), return_inverse=True)
        e = batch.column("timing_error_ms").to_numpy()
        r = batch.column("actual_velocity").to_numpy() / batch.column("intended_velocity").to_numpy()
        ids.append(sid)
        sums.append(
            np.stack(
                [np.bincount(inv, weights=w, minlength=len(sid)) for w in (np.ones_like(e), e, e * e, r, r * r)], 1
            )
        )
    if not ids:
        return pd.DataFrame(columns=["timing_error_sd_ms", "velocity_cv"])
    sid, inv = np.unique(np.concatenate(ids), return_inverse=True)  # a sample may span batches
    stacked = np.concatenate(sums)
    n, e, e2, r, r2 = (np.bincount(inv, weights=stacked[:, k], minlength=len(sid)) for k in range(5))
    e_mean, r_mean = e / n, r / n
    return pd.DataFrame(
        {
            "timing_error_sd_ms": np.sqrt(np.maximum(e2 / n - e_mean**2, 0.0)),
            "velocity_cv": np.sqrt(np.maximum(r2 / n - r_mean**2, 0.0)) / r_mean,
        },
        index=pd.Index(sid, name="sample_id"),
    )


def realism_table(tables: TableSet | Sequence[TableSet]) -> pd.DataFrame:
    """Per tier: measured timing-error SD and velocity CV (mean, P10, P90, share in range) and mean
    timing_accuracy, over one set of tables or several (e.g. every partition)."""
    sets = [tables] if isinstance(tables, TableSet) else list(tables)
    frames = []
    for ts in sets:
        samples = _sample_frame(ts.samples, ["sample_id", "skill_tier"]).set_index("sample_id")
        acc = _sample_frame(ts.exercises, ["sample_id", "timing_accuracy"]).set_index("sample_id")
        frames.append(per_sample_realism(ts).join(samples, how="inner").join(acc, how="left"))
    stats = pd.concat(frames)
    rows = []
    for tier in reversed(SKILL_TIERS):
        d = stats[stats["skill_tier"] == tier]
        if d.empty:
            continue
        (t_lo, t_hi), (v_lo, v_hi) = REALISM_RANGES[tier]["timing_error_sd_ms"], REALISM_RANGES[tier]["velocity_cv"]
        sd, cv = d["timing_error_sd_ms"], d["velocity_cv"]
        rows.append(
            {
                "tier": tier,
                "samples": len(d),
                "timing_sd_mean_ms": sd.mean(),
                "timing_sd_p10_ms": sd.quantile(0.1),
                "timing_sd_p90_ms": sd.quantile(0.9),
                "timing_sd_range_ms": f"{t_lo:g}-{t_hi:g}",
                "timing_sd_in_range": float(sd.between(t_lo, t_hi).mean()),
                "velocity_cv_mean": cv.mean(),
                "velocity_cv_p10": cv.quantile(0.1),
                "velocity_cv_p90": cv.quantile(0.9),
                "velocity_cv_range": f"{v_lo:g}-{v_hi:g}",
                "velocity_cv_in_range": float(cv.between(v_lo, v_hi).mean()),
                "timing_accuracy_mean": d["timing_accuracy"].mean(),
            }
        )
    return pd.DataFrame(rows)


def check_realism(tables: TableSet | Sequence[TableSet]) -> tuple[CheckOutcome, pd.DataFrame]:
    """Per tier, the mean measured timing SD and velocity CV lie in the published ranges, and the
    tier means of timing_accuracy are strictly ordered (beginner < ... < professional)."""
    table = realism_table(tables)
    problems = []
    for row in table.to_dict("records"):
        ranges = REALISM_RANGES[row["tier"]]
        lo, hi = ranges["timing_error_sd_ms"]
        if not lo <= row["timing_sd_mean_ms"] <= hi:
            problems.append(f"{row['tier']}: mean timing SD {row['timing_sd_mean_ms']:.1f} ms outside {lo:g}-{hi:g}")
        lo, hi = ranges["velocity_cv"]
        if not lo <= row["velocity_cv_mean"] <= hi:
            problems.append(f"{row['tier']}: mean velocity CV {row['velocity_cv_mean']:.3f} outside {lo:g}-{hi:g}")
    acc = [r["timing_accuracy_mean"] for r in reversed(table.to_dict("records"))]  # beginner first
    if any(not b > a for a, b in zip(acc, acc[1:], strict=False)):
        problems.append(
            "tier means of timing_accuracy are not strictly increasing from beginner to professional: "
            + ", ".join(f"{t}={a:.1f}" for t, a in zip(reversed(table["tier"].tolist()), acc, strict=True))
        )
    meta = {"realism": markdown_table(table.to_dict("records"))}
    if table.empty:
        return CheckOutcome(False, "no samples", meta), table
    if problems:
        return CheckOutcome(False, "; ".join(problems), meta), table
    return CheckOutcome(True, "every tier inside the published ranges; timing_accuracy ordered by tier", meta), table
