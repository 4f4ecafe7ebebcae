"""Texture profiles: how many files of each kind, and the range each parameter is drawn from."""

from __future__ import annotations

from dataclasses import dataclass

SAMPLE_RATE = 48000
CHANNELS = 2
SUBTYPE = "PCM_24"
KINDS: tuple[str, ...] = ("pads", "swells", "clouds", "hiss")
LOOPABLE_KINDS = frozenset({"pads", "clouds", "hiss"})


# The code version of texture_beds: bump when the same source, profile and seed give other files,
# and automation re-makes every source's beds once.
TEXTURES_VERSION = "1"


Range = tuple[float, float]


# name: (lowest allowed, highest allowed, unit, meaning). A profile's range for each must lie inside.
PARAM_BOUNDS: dict[str, tuple[float, float, str, str]] = {
    "pad_sec": (1.0, 60.0, "s", "pad length"),
    "swell_sec": (1.0, 60.0, "s", "swell length"),
    "cloud_sec": (1.0, 60.0, "s", "cloud length"),
    "hiss_sec": (1.0, 60.0, "s", "hiss loop and flicker length"),
    "stretch": (1.0, 16.0, "x", "pads and swells: output length / source region length (phase vocoder)"),
    "cloud_region_sec": (0.5, 8.0, "s", "clouds: length of the stable region the grains come from"),
    "grain_ms": (5.0, 500.0, "ms", "clouds: grain length (Hann window)"),
    "grain_density": (1.0, 400.0, "1/s", "clouds: grains per second"),
    "pitch_spread_st": (0.0, 12.0, "semitones", "clouds: each grain is shifted by up to +- this"),
    "highpass_hz": (10.0, 2000.0, "Hz", "4th-order Butterworth high-pass on the material"),
    "lowpass_hz": (500.0, 22000.0, "Hz", "4th-order Butterworth low-pass on the material"),
    "noise_mix": (0.0, 1.0, "ratio", "pads, swells, clouds: white noise added at this RMS ratio to the material"),
    "swell_peak": (0.5, 0.95, "fraction", "swells: where the envelope peaks (rising; a falling swell mirrors it)"),
    "swell_curve": (0.25, 8.0, "exponent", "swells: envelope curvature (1 linear, >1 slow start)"),
    "flicker_hz": (0.5, 40.0, "Hz", "flickers: random level changes per second"),
    "flicker_depth": (0.0, 1.0, "ratio", "flickers: how far the level may dip (1: to silence)"),
    "loop_xfade_sec": (0.01, 2.0, "s", "loopable kinds: equal-power crossfade of the tail into the head"),
    "peak_dbfs": (-24.0, -1.0, "dBFS", "pads, swells, clouds: peak-normalized to this"),
    "hiss_rms_dbfs": (-60.0, -12.0, "dBFS", "hiss: RMS = the noise floor's level clamped into this (not drawn)"),
}


DURATION_PARAM = {"pads": "pad_sec", "swells": "swell_sec", "clouds": "cloud_sec", "hiss": "hiss_sec"}
PARAMS_BY_KIND: dict[str, tuple[str, ...]] = {
    "pads": ("pad_sec", "stretch", "highpass_hz", "lowpass_hz", "noise_mix", "loop_xfade_sec", "peak_dbfs"),
    "swells": ("swell_sec", "stretch", "highpass_hz", "lowpass_hz", "noise_mix", "swell_peak", "swell_curve")
    + ("peak_dbfs",),
    "clouds": ("cloud_sec", "cloud_region_sec", "grain_ms", "grain_density", "pitch_spread_st", "highpass_hz")
    + ("lowpass_hz", "noise_mix", "loop_xfade_sec", "peak_dbfs"),
    "hiss": ("hiss_sec", "highpass_hz", "lowpass_hz", "loop_xfade_sec", "flicker_hz", "flicker_depth"),
}


class TextureError(Exception):
    """A source that cannot give textures, or a bad profile; the message names the file and the reason."""


@dataclass(frozen=True)
class TextureProfile:
    """Counts per kind and the range every parameter is drawn from (see `PARAM_BOUNDS`)."""

    name: str
    pads: int = 2
    swells: int = 2
    clouds: int = 2
    hiss_loops: int = 1
    flickers: int = 1
    pad_sec: Range = (4.0, 8.0)
    swell_sec: Range = (3.0, 6.0)
    cloud_sec: Range = (4.0, 8.0)
    hiss_sec: Range = (4.0, 8.0)
    stretch: Range = (2.0, 4.0)
    cloud_region_sec: Range = (1.0, 2.0)
    grain_ms: Range = (40.0, 120.0)
    grain_density: Range = (20.0, 60.0)
    pitch_spread_st: Range = (0.0, 2.0)
    highpass_hz: Range = (20.0, 40.0)
    lowpass_hz: Range = (16000.0, 20000.0)
    noise_mix: Range = (0.0, 0.0)
    swell_peak: Range = (0.6, 0.85)
    swell_curve: Range = (1.0, 2.0)
    flicker_hz: Range = (3.0, 8.0)
    flicker_depth: Range = (0.3, 0.6)
    loop_xfade_sec: Range = (0.25, 0.5)
    peak_dbfs: Range = (-6.0, -3.0)
    hiss_rms_dbfs: Range = (-48.0, -24.0)

    def __post_init__(self) -> None:
        for kind in ("pads", "swells", "clouds", "hiss_loops", "flickers"):
            n = getattr(self, kind)
            if not 0 <= n <= 16:
                raise TextureError(f"profile {self.name!r}: {kind} = {n}, want 0 to 16")
        for name, (lo, hi, unit, _) in PARAM_BOUNDS.items():
            a, b = getattr(self, name)
            if not lo <= a <= b <= hi:
                raise TextureError(f"profile {self.name!r}: {name} range ({a}, {b}) not inside [{lo}, {hi}] {unit}")

    def count(self, kind: str) -> int:
        return self.hiss_loops + self.flickers if kind == "hiss" else getattr(self, kind)

    def duration_range(self, kind: str) -> Range:
        return getattr(self, DURATION_PARAM[kind])

    def ranges(self) -> dict[str, Range]:
        return {k: getattr(self, k) for k in PARAM_BOUNDS}


PROFILES: dict[str, TextureProfile] = {
    p.name: p
    for p in (
        TextureProfile("default"),
        TextureProfile(
            "bright",
            highpass_hz=(300.0, 800.0),
            lowpass_hz=(18000.0, 22000.0),
            grain_ms=(15.0, 50.0),
            grain_density=(40.0, 120.0),
            pitch_spread_st=(0.0, 7.0),
            stretch=(1.5, 3.0),
            flicker_hz=(8.0, 20.0),
        ),
        TextureProfile(
            "dark",
            highpass_hz=(20.0, 30.0),
            lowpass_hz=(1200.0, 3000.0),
            grain_ms=(120.0, 300.0),
            grain_density=(8.0, 25.0),
            pitch_spread_st=(0.0, 1.0),
            stretch=(3.0, 6.0),
            flicker_hz=(1.0, 3.0),
            hiss_rms_dbfs=(-54.0, -36.0),
        ),
        TextureProfile(
            "noisy",
            hiss_loops=2,
            flickers=2,
            noise_mix=(0.1, 0.3),
            grain_ms=(10.0, 40.0),
            grain_density=(80.0, 200.0),
            pitch_spread_st=(2.0, 12.0),
            flicker_depth=(0.6, 0.9),
            hiss_rms_dbfs=(-36.0, -18.0),
        ),
    )
}


PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)


def get_profile(name: str) -> TextureProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise TextureError(f"unknown texture profile {name!r}; known: {', '.join(PROFILE_NAMES)}") from None
