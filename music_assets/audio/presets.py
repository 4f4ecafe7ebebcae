"""Augmentation presets and per-sample parameters (data only: no DSP imports).

A *preset* (clean studio, practice room, gym, garage, marching field, lo-fi)
is a set of parameter ranges; `draw_params` draws one value per parameter
from a sample's own random generator (`stable_rng(sample_id, seed, ...)`), so
the same sample gets the same sound in any process and order. Every drawn
value becomes an `aug_*` column of `audio.parquet` (`AugParams.columns`).
`music_assets.audio.effects` applies them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NOISE_COLORS: tuple[str, ...] = ("white", "pink", "brown")


class AugmentationError(ValueError):
    pass


Range = tuple[float, float]


@dataclass(frozen=True)
class Preset:
    """Parameter ranges of one recording situation (uniform draws; frequencies log-uniform)."""

    name: str
    description: str
    rt60_s: Range
    reverb_wet_db: Range
    predelay_ms: Range
    hf_decay_ratio: Range  # high-frequency RT60 as a fraction of the broadband RT60
    highpass_hz: Range
    lowpass_hz: Range
    peak_hz: Range
    peak_gain_db: Range
    peak_q: Range
    comp_threshold_db: Range  # below the signal's peak
    comp_ratio: Range
    comp_attack_ms: Range
    comp_release_ms: Range
    noise_snr_db: Range
    noise_colors: tuple[str, ...]
    bed_probability: float
    bed_snr_db: Range
    bit_depths: tuple[int, ...]
    peak_dbfs: Range


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "clean_studio",
            "treated room, close condenser, gentle bus compression",
            rt60_s=(0.15, 0.35),
            reverb_wet_db=(-26, -18),
            predelay_ms=(2, 8),
            hf_decay_ratio=(0.5, 0.8),
            highpass_hz=(20, 40),
            lowpass_hz=(16000, 20000),
            peak_hz=(3000, 8000),
            peak_gain_db=(-1, 2),
            peak_q=(0.7, 1.5),
            comp_threshold_db=(-10, -4),
            comp_ratio=(1.5, 2.5),
            comp_attack_ms=(2, 10),
            comp_release_ms=(60, 200),
            noise_snr_db=(60, 75),
            noise_colors=("white", "pink"),
            bed_probability=0.0,
            bed_snr_db=(40, 50),
            bit_depths=(24,),
            peak_dbfs=(-3, -1),
        ),
        Preset(
            "practice_room",
            "small untreated room, one mid-price mic",
            rt60_s=(0.3, 0.6),
            reverb_wet_db=(-14, -8),
            predelay_ms=(1, 5),
            hf_decay_ratio=(0.4, 0.7),
            highpass_hz=(40, 90),
            lowpass_hz=(9000, 14000),
            peak_hz=(800, 3000),
            peak_gain_db=(-3, 4),
            peak_q=(0.7, 2.0),
            comp_threshold_db=(-14, -6),
            comp_ratio=(2, 4),
            comp_attack_ms=(1, 8),
            comp_release_ms=(50, 150),
            noise_snr_db=(40, 55),
            noise_colors=NOISE_COLORS,
            bed_probability=0.3,
            bed_snr_db=(25, 40),
            bit_depths=(16, 24),
            peak_dbfs=(-6, -1),
        ),
        Preset(
            "gym",
            "large hard hall, distant mic",
            rt60_s=(1.4, 2.4),
            reverb_wet_db=(-6, -1),
            predelay_ms=(15, 40),
            hf_decay_ratio=(0.3, 0.6),
            highpass_hz=(60, 120),
            lowpass_hz=(7000, 11000),
            peak_hz=(300, 1200),
            peak_gain_db=(-2, 3),
            peak_q=(0.7, 1.5),
            comp_threshold_db=(-16, -8),
            comp_ratio=(2, 4),
            comp_attack_ms=(5, 20),
            comp_release_ms=(100, 300),
            noise_snr_db=(30, 45),
            noise_colors=NOISE_COLORS,
            bed_probability=0.6,
            bed_snr_db=(15, 30),
            bit_depths=(16, 24),
            peak_dbfs=(-6, -1),
        ),
        Preset(
            "garage",
            "concrete room, boxy resonance, cheap dynamic mic",
            rt60_s=(0.6, 1.1),
            reverb_wet_db=(-10, -4),
            predelay_ms=(3, 12),
            hf_decay_ratio=(0.4, 0.7),
            highpass_hz=(60, 110),
            lowpass_hz=(6000, 10000),
            peak_hz=(180, 500),
            peak_gain_db=(2, 7),
            peak_q=(1.0, 3.0),
            comp_threshold_db=(-18, -8),
            comp_ratio=(3, 6),
            comp_attack_ms=(1, 6),
            comp_release_ms=(40, 120),
            noise_snr_db=(30, 45),
            noise_colors=NOISE_COLORS,
            bed_probability=0.5,
            bed_snr_db=(15, 30),
            bit_depths=(16, 24),
            peak_dbfs=(-6, -1),
        ),
        Preset(
            "marching_field",
            "outdoors: almost no reverb, wind rumble, crowd or traffic beds",
            rt60_s=(0.1, 0.25),
            reverb_wet_db=(-24, -14),
            predelay_ms=(20, 60),
            hf_decay_ratio=(0.5, 0.9),
            highpass_hz=(80, 160),
            lowpass_hz=(8000, 13000),
            peak_hz=(1500, 5000),
            peak_gain_db=(-2, 3),
            peak_q=(0.7, 1.5),
            comp_threshold_db=(-14, -6),
            comp_ratio=(2, 5),
            comp_attack_ms=(2, 10),
            comp_release_ms=(60, 200),
            noise_snr_db=(20, 35),
            noise_colors=("pink", "brown"),
            bed_probability=0.7,
            bed_snr_db=(10, 25),
            bit_depths=(16, 24),
            peak_dbfs=(-6, -1),
        ),
        Preset(
            "lofi",
            "phone or cassette: narrow band, squashed, coarse converter",
            rt60_s=(0.2, 0.6),
            reverb_wet_db=(-16, -8),
            predelay_ms=(1, 10),
            hf_decay_ratio=(0.4, 0.8),
            highpass_hz=(150, 350),
            lowpass_hz=(3000, 5500),
            peak_hz=(800, 2500),
            peak_gain_db=(2, 8),
            peak_q=(0.7, 2.0),
            comp_threshold_db=(-24, -12),
            comp_ratio=(4, 10),
            comp_attack_ms=(0.5, 4),
            comp_release_ms=(30, 100),
            noise_snr_db=(22, 35),
            noise_colors=NOISE_COLORS,
            bed_probability=0.3,
            bed_snr_db=(15, 30),
            bit_depths=(8, 10, 12),
            peak_dbfs=(-4, -1),
        ),
    )
}
PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)


@dataclass(frozen=True)
class Bed:
    """A prepared source usable as a background bed."""

    source_id: str
    path: str
    duration_sec: float


@dataclass(frozen=True)
class AugParams:
    """One sample's augmentation; `columns()` gives the `aug_*` table columns."""

    preset: str
    rt60_s: float
    reverb_wet_db: float
    predelay_ms: float
    hf_decay_ratio: float
    highpass_hz: float
    lowpass_hz: float
    peak_hz: float
    peak_gain_db: float
    peak_q: float
    comp_threshold_db: float
    comp_ratio: float
    comp_attack_ms: float
    comp_release_ms: float
    noise_snr_db: float
    noise_color: str
    bed_source: str  # "" without a bed
    bed_offset_sec: float  # NaN without a bed
    bed_snr_db: float  # NaN without a bed
    bit_depth: int
    peak_dbfs: float

    def columns(self) -> dict[str, object]:
        d = dataclasses.asdict(self)
        return {"aug_preset": d.pop("preset"), **{f"aug_{k}": v for k, v in d.items()}}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise AugmentationError(f"unknown augmentation preset {name!r}; known: {', '.join(PRESET_NAMES)}") from None


def _uniform(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1]))


def _log_uniform(rng: np.random.Generator, r: Range) -> float:
    return float(math.exp(rng.uniform(math.log(r[0]), math.log(r[1]))))


def draw_params(
    preset: Preset | str,
    rng: np.random.Generator,
    duration_sec: float,
    beds: Sequence[Bed] = (),
) -> AugParams:
    """Draw every parameter of `preset` from `rng` (always the same number of draws, in order)."""
    p = get_preset(preset) if isinstance(preset, str) else preset
    values = dict(
        rt60_s=_uniform(rng, p.rt60_s),
        reverb_wet_db=_uniform(rng, p.reverb_wet_db),
        predelay_ms=_uniform(rng, p.predelay_ms),
        hf_decay_ratio=_uniform(rng, p.hf_decay_ratio),
        highpass_hz=_log_uniform(rng, p.highpass_hz),
        lowpass_hz=_log_uniform(rng, p.lowpass_hz),
        peak_hz=_log_uniform(rng, p.peak_hz),
        peak_gain_db=_uniform(rng, p.peak_gain_db),
        peak_q=_uniform(rng, p.peak_q),
        comp_threshold_db=_uniform(rng, p.comp_threshold_db),
        comp_ratio=_uniform(rng, p.comp_ratio),
        comp_attack_ms=_log_uniform(rng, p.comp_attack_ms),
        comp_release_ms=_log_uniform(rng, p.comp_release_ms),
        noise_snr_db=_uniform(rng, p.noise_snr_db),
        noise_color=p.noise_colors[int(rng.integers(len(p.noise_colors)))],
    )
    use_bed, bed_pick, bed_pos, bed_snr = rng.random(), rng.random(), rng.random(), _uniform(rng, p.bed_snr_db)
    if beds and use_bed < p.bed_probability:
        bed = beds[min(int(bed_pick * len(beds)), len(beds) - 1)]
        values.update(
            bed_source=bed.source_id,
            bed_offset_sec=round(bed_pos * max(0.0, bed.duration_sec - duration_sec), 3),
            bed_snr_db=bed_snr,
        )
    else:
        values.update(bed_source="", bed_offset_sec=float("nan"), bed_snr_db=float("nan"))
    values.update(
        bit_depth=int(p.bit_depths[int(rng.integers(len(p.bit_depths)))]),
        peak_dbfs=_uniform(rng, p.peak_dbfs),
    )
    return AugParams(preset=p.name, **values)
