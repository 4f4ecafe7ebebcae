"""The rudiment dataset: presets, the sample plan of a partition, and writing its files.

A partition is one rudiment. Its samples are every profile x tempo x length:
the tempos lie inside both the rudiment's tempo range and the player's
comfortable range (stratified: tempo k of T is drawn from the k-th of T equal
slices of that interval), and a length of L beats plays ceil(L / cycle_beats)
cycles (at least two, so every score that compares cycles applies).

Files of a partition `<slug>` (paths relative to the data dir):
- `rudiments/midi/<slug>/<sample_id>.mid`
- `rudiments/performances/<slug>/{samples,strokes,measures,exercises}.parquet`

Everything random comes from generators seeded by `stable_seed(seed, ...)` over
the sample identity, so the same settings give byte-identical files.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from music_assets import layout
from music_assets.io import atomic_path, remove_partials, write_bytes
from music_assets.rudiments.library import Rudiment
from music_assets.rudiments.midi import midi_bytes
from music_assets.rudiments.performance import (
    HAND_NAMES,
    STROKE_TYPES,
    CompiledRudiment,
    Performance,
    compile_rudiment,
    perform,
)
from music_assets.rudiments.profiles import TRAIT_NAMES
from music_assets.rudiments.scores import MEASURE_COLUMNS, SCORE_COLUMNS, analyze
from music_assets.seeding import stable_rng, stable_seed

MIN_CYCLES = 2
CHUNK_SAMPLES = 64  # samples per row group of a partition's tables: what generating one holds at once


@dataclass(frozen=True)
class Preset:
    num_profiles: int
    tempos_per_pair: int
    lengths_beats: tuple[int, ...]
    description: str


PRESETS: dict[str, Preset] = {
    # 20 profiles = 5/7/5/3 by tier: every tier has a player in every split.
    "demo": Preset(20, 1, (8,), "all 40 rudiments x 20 players x 1 tempo x 8 beats = 800 samples"),
    "full": Preset(250, 5, (8, 16), "all 40 rudiments x 250 players x 5 tempos x (8, 16) beats = 100,000 samples"),
}


@dataclass(frozen=True)
class DatasetSettings:
    """What a dataset run generates: a preset, optionally overridden, and the seed."""

    preset: str = "demo"
    seed: int = 0
    num_profiles: int = PRESETS["demo"].num_profiles
    tempos_per_pair: int = PRESETS["demo"].tempos_per_pair
    lengths_beats: tuple[int, ...] = PRESETS["demo"].lengths_beats

    @classmethod
    def resolve(
        cls,
        preset: str = "demo",
        seed: int = 0,
        num_profiles: int | None = None,
        tempos_per_pair: int | None = None,
        lengths_beats: tuple[int, ...] | list[int] | None = None,
    ) -> DatasetSettings:
        if preset not in PRESETS:
            raise ValueError(f"unknown rudiment dataset preset {preset!r}; choose one of {sorted(PRESETS)}")
        p = PRESETS[preset]
        s = cls(
            preset=preset,
            seed=int(seed),
            num_profiles=int(num_profiles if num_profiles is not None else p.num_profiles),
            tempos_per_pair=int(tempos_per_pair if tempos_per_pair is not None else p.tempos_per_pair),
            lengths_beats=tuple(int(x) for x in (lengths_beats if lengths_beats is not None else p.lengths_beats)),
        )
        if s.num_profiles < 1 or s.tempos_per_pair < 1 or not s.lengths_beats or min(s.lengths_beats) < 1:
            raise ValueError(f"invalid rudiment dataset settings {s}: counts and lengths must be >= 1")
        return s


@dataclass(frozen=True)
class SamplePlan:
    sample_id: str
    profile: Mapping[str, object]
    tempo_index: int
    tempo_bpm: float
    length_beats: int
    num_cycles: int
    seed: int


def tempo_window(rudiment: Rudiment, profile: Mapping[str, object]) -> tuple[float, float] | None:
    """The tempos inside both the rudiment's range and the player's comfort range (None if disjoint)."""
    lo = max(rudiment.tempo_min_bpm, float(profile["comfort_tempo_min_bpm"]))
    hi = min(rudiment.tempo_max_bpm, float(profile["comfort_tempo_max_bpm"]))
    return (lo, hi) if lo <= hi else None


def sample_id_of(slug: str, profile_id: str, tempo_index: int, length_beats: int) -> str:
    return f"{slug}-{profile_id}-t{tempo_index}-b{length_beats}"


def plan_partition(
    rudiment: Rudiment, profiles: pd.DataFrame, settings: DatasetSettings
) -> tuple[list[SamplePlan], list[str]]:
    """The samples of one rudiment, and the profiles skipped because no tempo fits both ranges."""
    plans: list[SamplePlan] = []
    skipped: list[str] = []
    for prof in profiles.to_dict("records"):
        window = tempo_window(rudiment, prof)
        if window is None:
            skipped.append(str(prof["profile_id"]))
            continue
        lo, hi = window
        rng = stable_rng(settings.seed, "tempo", rudiment.slug, prof["profile_id"])
        n_t = settings.tempos_per_pair
        for k in range(n_t):
            bpm = float(np.clip(round(lo + (k + rng.random()) / n_t * (hi - lo), 1), lo, hi))
            for beats in settings.lengths_beats:
                sid = sample_id_of(rudiment.slug, str(prof["profile_id"]), k, beats)
                plans.append(
                    SamplePlan(
                        sample_id=sid,
                        profile=prof,
                        tempo_index=k,
                        tempo_bpm=bpm,
                        length_beats=beats,
                        num_cycles=max(MIN_CYCLES, math.ceil(beats / rudiment.cycle_beats)),
                        seed=stable_seed(settings.seed, "performance", sid) & 0x7FFF_FFFF_FFFF_FFFF,
                    )
                )
    return plans, skipped


def play(plan: SamplePlan, compiled_rudiment: CompiledRudiment) -> Performance:
    traits = {k: float(plan.profile[k]) for k in TRAIT_NAMES}
    rng = np.random.Generator(np.random.PCG64(plan.seed))
    return perform(
        compiled_rudiment, traits, plan.tempo_bpm, plan.num_cycles, plan.profile["dominant_hand"] == "left", rng
    )


def frame_to_table(df: pd.DataFrame) -> pa.Table:
    """A DataFrame as an arrow table with `pa.string()` strings (pandas 3 gives large_string)."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    schema = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_large_string(f.type) else f for f in table.schema])
    return table.cast(schema)


# ---------------------------------------------------------------- table schemas
def _s(name: str) -> pa.Field:
    return pa.field(name, pa.string())


SAMPLES_SCHEMA = pa.schema(
    [
        _s("sample_id"),
        _s("rudiment_slug"),
        _s("rudiment_name"),
        pa.field("pas_number", pa.int32()),
        _s("category"),
        _s("subdivision"),
        _s("profile_id"),
        _s("skill_tier"),
        _s("skill_tier_binary"),
        _s("dominant_hand"),
        _s("split"),
        pa.field("tempo_bpm", pa.float64()),
        pa.field("tempo_index", pa.int32()),
        pa.field("length_beats", pa.int32()),
        pa.field("num_cycles", pa.int32()),
        pa.field("num_strokes", pa.int32()),
        pa.field("num_grace_notes", pa.int32()),
        pa.field("duration_sec", pa.float64()),
        _s("midi_path"),
        pa.field("seed", pa.int64()),
        pa.field("timing_error_sd_ms", pa.float64()),
        pa.field("velocity_cv", pa.float64()),
    ]
)
STROKES_SCHEMA = pa.schema(
    [
        _s("sample_id"),
        pa.field("index", pa.int32()),
        _s("hand"),
        _s("stroke_type"),
        pa.field("intended_time_ms", pa.float64()),
        pa.field("actual_time_ms", pa.float64()),
        pa.field("timing_error_ms", pa.float64()),
        pa.field("intended_velocity", pa.int32()),
        pa.field("actual_velocity", pa.int32()),
        pa.field("is_grace", pa.bool_()),
        pa.field("is_accent", pa.bool_()),
        pa.field("diddle_position", pa.int32()),
        pa.field("flam_spacing_ms", pa.float64()),
        pa.field("parent_stroke_index", pa.int32()),
        pa.field("measure_index", pa.int32()),
    ]
)
MEASURES_SCHEMA = pa.schema(
    [_s("sample_id"), pa.field("measure_index", pa.int32()), pa.field("num_strokes", pa.int32())]
    + [pa.field(c, pa.float64()) for c in MEASURE_COLUMNS if c != "num_strokes"]
)
EXERCISES_SCHEMA = pa.schema([_s("sample_id")] + [pa.field(c, pa.float64()) for c in SCORE_COLUMNS])
SCHEMAS: dict[str, pa.Schema] = {
    "samples": SAMPLES_SCHEMA,
    "strokes": STROKES_SCHEMA,
    "measures": MEASURES_SCHEMA,
    "exercises": EXERCISES_SCHEMA,
}


@dataclass
class _Columns:
    """Per-table column chunks, concatenated once at the end of a partition.

    Float columns hold NaN where the value does not apply and `parent_stroke_index`
    holds -1 where a stroke has no parent; both become parquet nulls.
    """

    chunks: dict[str, dict[str, list[np.ndarray]]] = field(default_factory=lambda: {t: {} for t in SCHEMAS})

    def add(self, table: str, **cols: object) -> None:
        for k, v in cols.items():
            self.chunks[table].setdefault(k, []).append(np.asarray(v))

    def table(self, name: str) -> pa.Table:
        schema = SCHEMAS[name]
        cols = self.chunks[name]
        arrays = []
        for f in schema:
            if not cols:
                arrays.append(pa.array([], type=f.type))
                continue
            v = np.concatenate(cols[f.name])
            if pa.types.is_floating(f.type):
                arrays.append(pa.array(v, mask=np.isnan(v), type=f.type))
            elif f.name == "parent_stroke_index":
                arrays.append(pa.array(v, mask=v < 0, type=f.type))
            else:
                arrays.append(pa.array(v.tolist() if v.dtype.kind in "OU" else v, type=f.type))
        return pa.Table.from_arrays(arrays, schema=schema)


@dataclass
class PartitionResult:
    slug: str
    samples: pa.Table
    skipped_profiles: list[str]  # no tempo fits both the rudiment's and the player's range
    removed_stale_midi: int  # MIDI files of an earlier configuration that no sample lists any more


def generate_partition(
    rudiment: Rudiment,
    profiles: pd.DataFrame,
    settings: DatasetSettings,
    root: Path,
) -> PartitionResult:
    """Play, label and write every sample of one rudiment; return the samples table.

    The four tables are written as they are played, one row group per `CHUNK_SAMPLES`
    samples, so the memory this takes does not grow with the size of the partition
    (a full-preset partition has 2,500 samples). They replace the old tables only
    once all four are complete.
    """
    slug = rudiment.slug
    comp = compile_rudiment(rudiment)
    plans, skipped = plan_partition(rudiment, profiles, settings)
    midi_folder = layout.midi_dir(slug, root)
    # Temp files of a writer killed part-way (step or worker SIGKILLed): this step is their only writer.
    remove_partials(midi_folder)
    remove_partials(layout.performance_dir(slug, root))
    out = layout.performance_dir(slug, root)
    samples: list[pa.Table] = []
    stype_names = np.array(STROKE_TYPES, dtype=object)
    hand_names = np.array(HAND_NAMES, dtype=object)
    with contextlib.ExitStack() as stack:
        writers = {}
        for name, schema in SCHEMAS.items():
            tmp = stack.enter_context(atomic_path(out / f"{name}.parquet"))
            writers[name] = stack.enter_context(pq.ParquetWriter(tmp, schema, compression="zstd"))
        for start in range(0, len(plans) or 1, CHUNK_SAMPLES):  # once with no plans: empty tables
            cols = _Columns()
            for plan in plans[start : start + CHUNK_SAMPLES]:
                _play_into(cols, plan, comp, rudiment, midi_folder, stype_names, hand_names)
            for name, writer in writers.items():
                table = cols.table(name)
                if name == "samples":
                    samples.append(table)
                if table.num_rows:
                    writer.write_table(table)
            del cols
        for writer in writers.values():
            writer.close()
        os.sync()  # the MIDI files reach the disk before the tables that list them replace the old ones
    keep = {f"{p.sample_id}.mid" for p in plans}
    stale = [f for f in midi_folder.glob("*.mid") if f.name not in keep] if midi_folder.exists() else []
    for f in stale:
        f.unlink()
    return PartitionResult(slug, pa.concat_tables(samples), skipped, len(stale))


def _play_into(
    cols: _Columns,
    plan: SamplePlan,
    comp: CompiledRudiment,
    rudiment: Rudiment,
    midi_folder: Path,
    stype_names: np.ndarray,
    hand_names: np.ndarray,
) -> None:
    """Play one sample, write its MIDI file and add its rows to `cols`."""
    slug = rudiment.slug
    perf = play(plan, comp)
    # flushed to disk all at once (generate_partition's os.sync), before the tables that list them
    write_bytes(midi_folder / f"{plan.sample_id}.mid", midi_bytes(perf, name=rudiment.name), fsync=False)
    n = perf.num_strokes
    sid = np.full(n, plan.sample_id, dtype=object)
    intended_ms = perf.intended_s * 1000.0
    actual_ms = perf.actual_s * 1000.0
    cols.add(
        "strokes",
        sample_id=sid,
        index=np.arange(n, dtype=np.int32),
        hand=hand_names[perf.hand],
        stroke_type=stype_names[perf.stroke_type],
        intended_time_ms=intended_ms,
        actual_time_ms=actual_ms,
        timing_error_ms=actual_ms - intended_ms,
        intended_velocity=perf.intended_vel.astype(np.int32),
        actual_velocity=perf.actual_vel.astype(np.int32),
        is_grace=perf.is_grace,
        is_accent=perf.is_accent,
        diddle_position=perf.diddle.astype(np.int32),
        flam_spacing_ms=perf.flam_spacing_ms,
        parent_stroke_index=perf.parent,
        measure_index=perf.measure,
    )
    stats, per_cycle, scores = analyze(perf, comp)
    cols.add("measures", sample_id=np.full(perf.num_cycles, plan.sample_id, dtype=object), **per_cycle)
    cols.add("exercises", sample_id=[plan.sample_id], **{k: [np.nan if v is None else v] for k, v in scores.items()})
    p = plan.profile
    cols.add(
        "samples",
        sample_id=[plan.sample_id],
        rudiment_slug=[slug],
        rudiment_name=[rudiment.name],
        pas_number=[rudiment.pas_number],
        category=[rudiment.category],
        subdivision=[rudiment.subdivision],
        profile_id=[p["profile_id"]],
        skill_tier=[p["skill_tier"]],
        skill_tier_binary=[p["skill_tier_binary"]],
        dominant_hand=[p["dominant_hand"]],
        split=[p["split"]],
        tempo_bpm=[plan.tempo_bpm],
        tempo_index=[plan.tempo_index],
        length_beats=[plan.length_beats],
        num_cycles=[plan.num_cycles],
        num_strokes=[n],
        num_grace_notes=[int(perf.is_grace.sum())],
        duration_sec=[perf.duration_sec],
        midi_path=[layout.midi_relpath(slug, plan.sample_id)],
        seed=[plan.seed],
        timing_error_sd_ms=[stats["timing_error_sd_ms"]],
        velocity_cv=[stats["velocity_cv"]],
    )
