"""How realistic the performances are per skill tier: per-sample measures, the tier table, its check."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from music_assets.checks import CheckResult
from music_assets.rudiments.constants import SKILL_TIERS
from music_assets.rudiments.labels.tables import TableSet, markdown_table, read_columns, sample_frame
from music_assets.rudiments.performance import PRIMARY_TYPES, STROKE_TYPES

# Published ranges per tier: SD of the timing error (ms) and velocity coefficient of variation.
REALISM_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "professional": {"timing_error_sd_ms": (5.0, 15.0), "velocity_cv": (0.05, 0.12)},
    "advanced": {"timing_error_sd_ms": (8.0, 25.0), "velocity_cv": (0.08, 0.18)},
    "intermediate": {"timing_error_sd_ms": (20.0, 45.0), "velocity_cv": (0.12, 0.25)},
    "beginner": {"timing_error_sd_ms": (35.0, 80.0), "velocity_cv": (0.18, 0.35)},
}


PRIMARY_NAMES = [STROKE_TYPES[c] for c in PRIMARY_TYPES]


def per_sample_realism(tables: TableSet) -> pd.DataFrame:
    """timing_error_sd_ms and velocity_cv of each sample, recomputed from the strokes file (primary strokes)."""
    ids, sums = [], []
    cols = ["sample_id", "stroke_type", "timing_error_ms", "intended_velocity", "actual_velocity"]
    for batch in read_columns(tables.strokes, cols):
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
        samples = sample_frame(ts.samples, ["sample_id", "skill_tier"]).set_index("sample_id")
        acc = sample_frame(ts.exercises, ["sample_id", "timing_accuracy"]).set_index("sample_id")
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


def check_realism(tables: TableSet | Sequence[TableSet]) -> tuple[CheckResult, pd.DataFrame]:
    """Per tier, the mean measured timing SD and velocity CV lie in the published ranges, and the
    tier means of timing_accuracy are strictly ordered (beginner < ... < professional). A warning."""
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
        return CheckResult(False, "no samples", meta, severity="warn"), table
    if problems:
        return CheckResult(False, "; ".join(problems), meta, severity="warn"), table
    ok = "every tier inside the published ranges; timing_accuracy ordered by tier"
    return CheckResult(True, ok, meta, severity="warn"), table
