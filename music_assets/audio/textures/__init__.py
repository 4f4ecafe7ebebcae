"""Texture beds from a prepared source: pads, swells, clouds and hiss, with their index and gates.

`make_textures(prepared_flac, out_dir, source_id, profile, seed)` writes, all
48 kHz stereo 24-bit FLAC, atomically:

    <out_dir>/pads/pad_NN.flac        a stable region time-stretched (librosa's phase vocoder), loopable
    <out_dir>/swells/swell_NN.flac    pad material under a rising (even NN) or falling (odd NN) envelope
    <out_dir>/clouds/cloud_NN.flac    granular: windowed grains of a stable region, pitch-spread, panned, loopable
    <out_dir>/hiss/hiss_NN.flac       noise shaped like the source's own noise floor, loopable
    <out_dir>/hiss/flicker_NN.flac    that noise under a periodic random flicker, loopable
    <out_dir>/textures.parquet        one row per file (`INDEX_COLUMNS`), measured from the files as written

How:

- Stable regions: librosa's onset strength (spectral flux of the log-mel
  spectrogram) averaged over sliding windows; the windows with the least flux
  relative to the file's mean flux, among those with no frame more than
  `REGION_MAX_BELOW_MEDIAN_DB` below the file's median frame level (a stable
  region must not hold a silence), are taken, not overlapping, best first.
- Noise floor: the mean power spectrum (librosa STFT) of the quietest
  `NOISE_FLOOR_QUANTILE` of the source's frames. Hiss is white noise given that
  spectrum (STFT, per-bin gain, inverse STFT), so a noise-only source gives hiss
  at its own level; the level is then clamped into the profile's `hiss_rms_dbfs`.
- Loops: material `loop_xfade_sec` longer than the loop is made; its tail is
  crossfaded (equal power) into its head, so the last sample runs on into the
  first. Clouds are overlap-added circularly, which makes them periodic outright.
- Every random draw comes from `stable_rng(source_id, kind, index, seed)`; the
  same source, profile and seed rewrite byte-identical files.

Loop seam discontinuity (`seam_discontinuity`): the jump from the last sample
to the first, |x[-1] - x[0]|, divided by the RMS of the per-sample steps
x[n+1] - x[n] of the same channel over the 10 ms (`SEAM_WINDOW`) either side
of the seam, the larger of the two channels. A seamless loop steps across the
seam like anywhere else (about 1; a sine at most sqrt(2), Gaussian noise
passes 8 about once in 10^15 seams); a click is many typical steps at once. Loopable kinds must stay at or
under `SEAM_MAX_RATIO`.

Profiles (`PROFILES`: default, bright, dark, noisy) are `TextureProfile`s:
counts per kind and, for each parameter in `PARAM_BOUNDS`, the (low, high)
range each file's value is drawn from uniformly.

The package: `profiles` (the profiles and parameter bounds), `analysis`
(stable regions, noise floor, seam measure), `recipes` (pads, swells,
clouds, hiss), `build` (one source's textures and their index), `gates`
(the checks of a written folder), `preview` (the picture and summary).
"""

from __future__ import annotations

from music_assets.audio.textures.analysis import (
    HOP,
    N_FFT,
    NOISE_FLOOR_QUANTILE,
    REGION_MAX_BELOW_MEDIAN_DB,
    SEAM_WINDOW,
    Region,
    noise_floor,
    seam_discontinuity,
    spectral_centroid,
    stable_regions,
)
from music_assets.audio.textures.build import (
    INDEX_COLUMNS,
    INDEX_NAME,
    PlannedFile,
    TextureSet,
    index_table,
    make_textures,
    measure,
    plan_files,
    read_source,
)
from music_assets.audio.textures.gates import (
    CHECK_DESCRIPTIONS,
    MAX_CLIPPED_RATIO,
    MIN_PEAK_DBFS,
    SEAM_MAX_RATIO,
    check_textures,
)
from music_assets.audio.textures.preview import preview_png, summary
from music_assets.audio.textures.profiles import (
    CHANNELS,
    DURATION_PARAM,
    KINDS,
    LOOPABLE_KINDS,
    PARAM_BOUNDS,
    PARAMS_BY_KIND,
    PROFILE_NAMES,
    PROFILES,
    SAMPLE_RATE,
    SUBTYPE,
    TEXTURES_VERSION,
    Range,
    TextureError,
    TextureProfile,
    get_profile,
)
from music_assets.audio.textures.recipes import cloud, draw, hiss, make_loop, pad, shaped_noise, swell, swell_envelope

__all__ = [
    "CHANNELS",
    "CHECK_DESCRIPTIONS",
    "DURATION_PARAM",
    "HOP",
    "INDEX_COLUMNS",
    "INDEX_NAME",
    "KINDS",
    "LOOPABLE_KINDS",
    "MAX_CLIPPED_RATIO",
    "MIN_PEAK_DBFS",
    "NOISE_FLOOR_QUANTILE",
    "N_FFT",
    "PARAMS_BY_KIND",
    "PARAM_BOUNDS",
    "PROFILES",
    "PROFILE_NAMES",
    "PlannedFile",
    "REGION_MAX_BELOW_MEDIAN_DB",
    "Range",
    "Region",
    "SAMPLE_RATE",
    "SEAM_MAX_RATIO",
    "SEAM_WINDOW",
    "SUBTYPE",
    "TEXTURES_VERSION",
    "TextureError",
    "TextureProfile",
    "TextureSet",
    "check_textures",
    "cloud",
    "draw",
    "get_profile",
    "hiss",
    "index_table",
    "make_loop",
    "make_textures",
    "measure",
    "noise_floor",
    "pad",
    "plan_files",
    "preview_png",
    "read_source",
    "seam_discontinuity",
    "shaped_noise",
    "spectral_centroid",
    "stable_regions",
    "summary",
    "swell",
    "swell_envelope",
]
