"""One source's textures: the files a profile plans, drawn, written, measured and indexed."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from music_assets.audio.analysis import AudioAnalysisError, analyze_file
from music_assets.audio.io import write_flac
from music_assets.audio.textures.analysis import (
    Region,
    noise_floor,
    seam_discontinuity,
    spectral_centroid,
    stable_regions,
)
from music_assets.audio.textures.profiles import (
    CHANNELS,
    KINDS,
    LOOPABLE_KINDS,
    PARAM_BOUNDS,
    SAMPLE_RATE,
    SUBTYPE,
    TextureError,
    TextureProfile,
    get_profile,
)
from music_assets.audio.textures.recipes import cloud, draw, hiss, pad, swell
from music_assets.seeding import stable_rng

INDEX_NAME = "textures.parquet"
INDEX_COLUMNS: tuple[str, ...] = (
    "source_id",
    "kind",
    "variant",
    "index",
    "file",
    "duration_sec",
    "peak_dbfs",
    "rms_dbfs",
    "loudness_lufs",
    "spectral_centroid_hz",
    "loopable",
    "seam_discontinuity",
    "region_start_sec",
    "region_sec",
    "region_flux",
    "noise_floor_dbfs",
    "profile",
    "seed",
    "license",
    *(f"param_{k}" for k in PARAM_BOUNDS),
)


@dataclass(frozen=True)
class PlannedFile:
    kind: str
    variant: str
    index: int  # within the kind: part of the seed
    rel_path: str  # relative to the source's texture folder


def plan_files(profile: TextureProfile) -> list[PlannedFile]:
    """The files a profile makes for one source, in writing order."""
    out = [PlannedFile("pads", "pad", i, f"pads/pad_{i:02d}.flac") for i in range(profile.pads)]
    out += [
        PlannedFile("swells", "rise" if i % 2 == 0 else "fall", i, f"swells/swell_{i:02d}.flac")
        for i in range(profile.swells)
    ]
    out += [PlannedFile("clouds", "cloud", i, f"clouds/cloud_{i:02d}.flac") for i in range(profile.clouds)]
    out += [PlannedFile("hiss", "loop", i, f"hiss/hiss_{i:02d}.flac") for i in range(profile.hiss_loops)]
    out += [
        PlannedFile("hiss", "flicker", profile.hiss_loops + j, f"hiss/flicker_{j:02d}.flac")
        for j in range(profile.flickers)
    ]
    return out


def read_source(path: str | os.PathLike[str]) -> np.ndarray:
    """A prepared source as float32 (frames, 2) at 48 kHz; TextureError names the file and the problem."""
    import soundfile as sf  # noqa: PLC0415

    try:
        audio, sr = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise TextureError(f"{path}: not readable audio: {exc}") from None
    if sr != SAMPLE_RATE or audio.shape[1] != CHANNELS:
        raise TextureError(f"{path}: {sr} Hz, {audio.shape[1]} ch; a prepared source is {SAMPLE_RATE} Hz stereo")
    if len(audio) < SAMPLE_RATE:
        raise TextureError(f"{path}: {len(audio) / sr:.2f} s of audio; textures need at least 1 s")
    if float(np.abs(audio).max()) < 1e-6:
        raise TextureError(f"{path}: digitally silent, nothing to make textures from")
    return audio


def _region_search_sec(profile: TextureProfile, source_sec: float) -> float:
    """The longest region any texture of the profile cuts, at most half the source."""
    pad = (max(profile.pad_sec[1], profile.swell_sec[1]) + profile.loop_xfade_sec[1]) / profile.stretch[0]
    return min(max(pad, profile.cloud_region_sec[1]), source_sec / 2)


def measure(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What the index and the checks read from a written texture (raises AudioAnalysisError)."""
    import soundfile as sf  # noqa: PLC0415

    stats = analyze_file(path)
    audio, sr = sf.read(os.fspath(path), dtype="float64", always_2d=True)
    return {
        "sample_rate": stats.sample_rate,
        "channels": stats.channels,
        "subtype": stats.subtype or "",
        "duration_sec": stats.duration_sec,
        "peak_dbfs": stats.peak_dbfs,
        "rms_dbfs": stats.rms_dbfs,
        "clipped_ratio": stats.clipped_ratio,
        "loudness_lufs": stats.loudness_lufs,
        "spectral_centroid_hz": spectral_centroid(audio.mean(axis=1), sr),
        "seam_discontinuity": seam_discontinuity(audio),
    }


@dataclass(frozen=True)
class TextureSet:
    source_id: str
    folder: Path
    index_path: Path
    rows: list[dict[str, Any]]
    source_sec: float


def make_textures(
    source: str | os.PathLike[str],
    folder: str | os.PathLike[str],
    source_id: str,
    profile: TextureProfile | str = "default",
    seed: int = 0,
    license: str = "unknown",  # noqa: A002 - the column's name
    seed_id: str | None = None,
) -> TextureSet:
    """Write every texture of `profile` from the prepared `source` under `folder`, and its index.

    Draws are seeded by `seed_id` (default: `source_id`), the kind, the index and `seed`."""
    from music_assets.io import remove_partials, write_parquet  # noqa: PLC0415

    prof = get_profile(profile) if isinstance(profile, str) else profile
    folder = Path(folder)
    audio = read_source(source)
    source_sec = len(audio) / SAMPLE_RATE
    planned = plan_files(prof)
    n_regions = max(1, prof.pads, prof.swells, prof.clouds)
    regions = stable_regions(audio, SAMPLE_RATE, _region_search_sec(prof, source_sec), n_regions)
    floor = noise_floor(audio) if prof.hiss_loops + prof.flickers else None
    remove_partials(folder)
    rows = []
    for f in planned:
        rng = stable_rng(seed_id or source_id, f.kind, f.index, seed)
        p = draw(rng, prof, f.kind)
        region: Region | None = regions[f.index % len(regions)] if f.kind != "hiss" else None
        floor_db = float("nan")
        if f.kind == "pads":
            x = pad(audio, SAMPLE_RATE, region, p, rng)
        elif f.kind == "swells":
            x = swell(audio, SAMPLE_RATE, region, p, rng, rising=f.variant == "rise")
        elif f.kind == "clouds":
            x = cloud(audio, SAMPLE_RATE, region, p, rng)
        else:
            x, floor_db = hiss(floor, SAMPLE_RATE, p, rng, f.variant == "flicker", prof.hiss_rms_dbfs)
        dest = folder / f.rel_path
        write_flac(dest, x.T.astype(np.float32), SAMPLE_RATE, subtype=SUBTYPE)
        try:
            m = measure(dest)
        except AudioAnalysisError as exc:
            raise TextureError(f"{dest}: written but not readable back: {exc}") from None
        region_len = {"pads": p.get("pad_sec", 0) / p.get("stretch", 1), "clouds": p.get("cloud_region_sec", 0)}
        region_len["swells"] = p.get("swell_sec", 0) / p.get("stretch", 1)
        rows.append(
            {
                "source_id": source_id,
                "kind": f.kind,
                "variant": f.variant,
                "index": f.index,
                "file": f.rel_path,
                "duration_sec": round(m["duration_sec"], 6),
                "peak_dbfs": round(m["peak_dbfs"], 3),
                "rms_dbfs": round(m["rms_dbfs"], 3),
                "loudness_lufs": None if m["loudness_lufs"] is None else round(m["loudness_lufs"], 3),
                "spectral_centroid_hz": round(m["spectral_centroid_hz"], 2),
                "loopable": f.kind in LOOPABLE_KINDS,
                "seam_discontinuity": round(m["seam_discontinuity"], 4),
                "region_start_sec": round(region.start_sec, 4) if region else float("nan"),
                "region_sec": round(region_len[f.kind], 4) if region else float("nan"),
                "region_flux": round(region.flux, 4) if region else float("nan"),
                "noise_floor_dbfs": round(floor_db, 3),
                "profile": prof.name,
                "seed": seed,
                "license": license,
                **{f"param_{k}": round(p[k], 6) if k in p else float("nan") for k in PARAM_BOUNDS},
            }
        )
    keep = {f.rel_path for f in planned}
    for kind in KINDS:
        for stale in sorted((folder / kind).glob("*.flac")) if (folder / kind).is_dir() else []:
            if f"{kind}/{stale.name}" not in keep:
                stale.unlink()
    index_path = write_parquet(folder / INDEX_NAME, index_table(rows))
    return TextureSet(source_id, folder, index_path, rows, source_sec)


def index_table(rows: Sequence[dict[str, Any]]):
    """The rows as a pyarrow table with a fixed schema (the same columns and types every time)."""
    import pyarrow as pa  # noqa: PLC0415

    floats = {c for c in INDEX_COLUMNS if c.startswith("param_")} | {
        "duration_sec",
        "peak_dbfs",
        "rms_dbfs",
        "loudness_lufs",
        "spectral_centroid_hz",
        "seam_discontinuity",
        "region_start_sec",
        "region_sec",
        "region_flux",
        "noise_floor_dbfs",
    }
    types = {"index": pa.int32(), "seed": pa.int64(), "loopable": pa.bool_()}
    schema = pa.schema([(c, pa.float64() if c in floats else types.get(c, pa.string())) for c in INDEX_COLUMNS])
    return pa.Table.from_pylist([{c: r[c] for c in INDEX_COLUMNS} for r in rows], schema=schema)
