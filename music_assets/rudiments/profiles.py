"""Simulated players: skill tiers, correlated traits, handedness and the split by player.

Each profile belongs to one tier (mix 25/35/25/15 %: beginner, intermediate,
advanced, professional); 10 % are left-handed (they lead with the left hand:
every sticking is mirrored). Traits are drawn from a correlated multivariate
normal and clamped to the tier's bounds:

    z = LOADINGS @ f + sqrt(1 - rowsum(LOADINGS**2)) * e,   f ~ N(0, I2), e ~ N(0, I)
    trait = tier_mean + tier_sd * z, clipped to [tier_lo, tier_hi]

so `corr(z) = LOADINGS @ LOADINGS.T + diag(uniqueness)` (positive definite by
construction). The first factor is general sloppiness within the tier (worse
timing goes with noisier velocity, weaker accents, uneven diddles, wider flams,
more fatigue, a lower top tempo); the second is a timing factor shared by the
timing traits only. The tier means follow the published figures (timing-error
SD about 50 / 28 / 14 / 7 ms, flam spacing about 50 ms for beginners down to
25 ms for professionals) and are set so that the *measured* timing-error SD
and velocity CV of the generated performances land inside the published
ranges checked by the realism check (see `labels.REALISM_RANGES`).

The split is by profile (no player is in two splits), stratified by tier:
within each tier a seeded shuffle gives 15 % validation, 15 % test (at least
one each when the tier has three or more players) and the rest train.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from music_assets.rudiments.constants import SKILL_TIERS, SPLITS
from music_assets.seeding import stable_rng

TIER_MIX: dict[str, float] = {"beginner": 0.25, "intermediate": 0.35, "advanced": 0.25, "professional": 0.15}
LEFT_HANDED_SHARE = 0.10
SPLIT_SHARES: dict[str, float] = {"train": 0.70, "validation": 0.15, "test": 0.15}
BINARY_TIER = {"beginner": "novice", "intermediate": "novice", "advanced": "skilled", "professional": "skilled"}
# A tier needs this many players to appear in every split; tier counts are floored to it when N allows.
MIN_PER_TIER_FOR_ALL_SPLITS = len(SPLITS)


@dataclass(frozen=True)
class Trait:
    name: str
    description: str
    # per tier in SKILL_TIERS order: (mean, sd, lo, hi)
    tiers: tuple[tuple[float, float, float, float], ...]
    loadings: tuple[float, float]  # (general sloppiness, timing)


TRAITS: tuple[Trait, ...] = (
    Trait(
        "timing_sd_ms",
        "timing accuracy: SD of a stroke's timing error (ms)",
        ((46.0, 7.0, 37.0, 62.0), (27.0, 3.5, 22.0, 34.0), (13.5, 2.2, 10.0, 18.0), (7.5, 1.1, 6.0, 10.0)),
        (0.55, 0.50),
    ),
    Trait(
        "timing_consistency",
        "share of the timing error that wanders slowly rather than jitters stroke to stroke (0-1)",
        ((0.45, 0.10, 0.20, 0.70), (0.60, 0.08, 0.35, 0.80), (0.72, 0.07, 0.50, 0.90), (0.82, 0.05, 0.65, 0.95)),
        (-0.40, -0.30),
    ),
    Trait(
        "tempo_drift_pct",
        "tempo change over a performance (% of the tempo; sign drawn per performance)",
        ((1.6, 0.5, 0.4, 3.0), (1.0, 0.3, 0.3, 2.0), (0.5, 0.15, 0.1, 1.0), (0.25, 0.08, 0.05, 0.5)),
        (0.35, 0.45),
    ),
    Trait(
        "velocity_cv",
        "velocity variance: coefficient of variation of a stroke's velocity around its target",
        (
            (0.21, 0.025, 0.165, 0.27),
            (0.135, 0.018, 0.10, 0.17),
            (0.095, 0.012, 0.07, 0.12),
            (0.068, 0.008, 0.055, 0.085),
        ),
        (0.55, 0.0),
    ),
    Trait(
        "accent_differentiation",
        "share of the intended accent/tap velocity gap the player produces",
        ((0.55, 0.12, 0.25, 0.85), (0.72, 0.10, 0.45, 0.95), (0.86, 0.07, 0.65, 1.05), (0.95, 0.05, 0.80, 1.10)),
        (-0.45, 0.0),
    ),
    Trait(
        "accent_accuracy",
        "probability that a stroke gets the intended accent (or no accent)",
        ((0.90, 0.04, 0.78, 0.97), (0.94, 0.025, 0.86, 0.99), (0.97, 0.012, 0.93, 1.0), (0.99, 0.006, 0.97, 1.0)),
        (-0.45, 0.0),
    ),
    Trait(
        "lr_velocity_ratio",
        "weak-hand velocity relative to the strong hand",
        ((0.88, 0.04, 0.78, 0.97), (0.91, 0.03, 0.83, 0.99), (0.945, 0.02, 0.89, 1.0), (0.975, 0.012, 0.94, 1.0)),
        (-0.40, 0.0),
    ),
    Trait(
        "lr_timing_bias_ms",
        "how late the weak hand plays on average (ms)",
        ((8.0, 3.0, 1.0, 16.0), (5.0, 2.0, 0.5, 10.0), (2.5, 1.0, 0.0, 5.0), (1.0, 0.5, 0.0, 2.5)),
        (0.30, 0.30),
    ),
    Trait(
        "flam_spacing_ms",
        "distance from a flam's grace note to its primary stroke (ms)",
        ((50.0, 6.0, 38.0, 65.0), (40.0, 5.0, 30.0, 52.0), (32.0, 4.0, 24.0, 42.0), (25.0, 3.0, 18.0, 32.0)),
        (0.35, 0.35),
    ),
    Trait(
        "diddle_evenness",
        "how closely a diddle's second stroke matches the first in time and velocity (0-1)",
        ((0.72, 0.07, 0.50, 0.86), (0.81, 0.05, 0.65, 0.92), (0.90, 0.03, 0.80, 0.97), (0.96, 0.015, 0.90, 1.0)),
        (-0.50, 0.0),
    ),
    Trait(
        "roll_sustain",
        "how well velocity is held through a roll (0-1)",
        ((0.62, 0.10, 0.35, 0.85), (0.75, 0.07, 0.55, 0.90), (0.87, 0.05, 0.72, 0.97), (0.94, 0.03, 0.85, 1.0)),
        (-0.45, 0.0),
    ),
    Trait(
        "fatigue",
        "how much timing spreads and velocity sags towards the end of a performance (0-1)",
        ((0.50, 0.15, 0.15, 0.90), (0.35, 0.10, 0.10, 0.65), (0.20, 0.07, 0.05, 0.40), (0.10, 0.05, 0.0, 0.25)),
        (0.40, 0.0),
    ),
    Trait(
        "comfort_tempo_min_bpm",
        "slowest comfortable quarter-note tempo",
        ((55.0, 5.0, 45.0, 70.0), (60.0, 6.0, 48.0, 75.0), (65.0, 7.0, 50.0, 85.0), (70.0, 8.0, 55.0, 95.0)),
        (0.0, 0.0),
    ),
    Trait(
        "comfort_tempo_max_bpm",
        "fastest comfortable quarter-note tempo",
        (
            (95.0, 8.0, 80.0, 115.0),
            (125.0, 10.0, 100.0, 150.0),
            (160.0, 12.0, 130.0, 190.0),
            (200.0, 12.0, 170.0, 240.0),
        ),
        (-0.50, 0.0),
    ),
)
TRAIT_NAMES: tuple[str, ...] = tuple(t.name for t in TRAITS)
MIN_COMFORT_SPAN_BPM = 20.0


def trait_correlation() -> np.ndarray:
    """The correlation matrix of the standardized traits (before clamping)."""
    lam = np.array([t.loadings for t in TRAITS])
    corr = lam @ lam.T
    np.fill_diagonal(corr, 1.0)
    return corr


def tier_counts(n: int) -> dict[str, int]:
    """Profiles per tier: the mix by largest remainder, each tier floored to 3 when n >= 12.

    The floor lets every tier appear in every split (models train and
    validate per tier); it only moves profiles at very small n.
    """
    if n < 1:
        raise ValueError(f"need at least one profile, got {n}")
    quotas = np.array([TIER_MIX[t] for t in SKILL_TIERS]) * n
    counts = np.floor(quotas).astype(int)
    for i in np.argsort(-(quotas - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    if n >= MIN_PER_TIER_FOR_ALL_SPLITS * len(SKILL_TIERS):
        while (counts < MIN_PER_TIER_FOR_ALL_SPLITS).any():
            surplus = np.where(counts > MIN_PER_TIER_FOR_ALL_SPLITS, counts - quotas, -np.inf)
            counts[int(np.argmin(counts))] += 1
            counts[int(np.argmax(surplus))] -= 1
    return dict(zip(SKILL_TIERS, counts.tolist(), strict=True))


def _split_counts(n: int) -> dict[str, int]:
    if n < len(SPLITS):
        return {"train": n, "validation": 0, "test": 0}
    val = max(1, int(round(SPLIT_SHARES["validation"] * n)))
    test = max(1, int(round(SPLIT_SHARES["test"] * n)))
    return {"train": n - val - test, "validation": val, "test": test}


def draw_traits(tier: str, rng: np.random.Generator) -> dict[str, float]:
    """One player's traits for `tier` from the correlated normal, clamped to the tier's bounds."""
    ti = SKILL_TIERS.index(tier)
    lam = np.array([t.loadings for t in TRAITS])
    uniq = np.sqrt(1.0 - (lam**2).sum(axis=1))
    z = lam @ rng.standard_normal(2) + uniq * rng.standard_normal(len(TRAITS))
    out = {}
    for t, zi in zip(TRAITS, z, strict=True):
        mean, sd, lo, hi = t.tiers[ti]
        out[t.name] = float(np.clip(mean + sd * zi, lo, hi))
    out["comfort_tempo_max_bpm"] = max(
        out["comfort_tempo_max_bpm"], out["comfort_tempo_min_bpm"] + MIN_COMFORT_SPAN_BPM
    )
    return out


def generate_profiles(n: int, seed: int = 0) -> pd.DataFrame:
    """`n` player profiles with tier, handedness, split and traits, one row each (profile_id order)."""
    counts = tier_counts(n)
    tiers = np.array([t for t in SKILL_TIERS for _ in range(counts[t])])
    tiers = tiers[stable_rng(seed, "profiles", "tiers", n).permutation(n)]
    n_left = int(round(LEFT_HANDED_SHARE * n))
    left = np.zeros(n, dtype=bool)
    left[stable_rng(seed, "profiles", "hands", n).permutation(n)[:n_left]] = True
    ids = [f"p{i:05d}" for i in range(n)]
    split = np.empty(n, dtype=object)
    for tier in SKILL_TIERS:
        members = np.flatnonzero(tiers == tier)
        members = members[stable_rng(seed, "profiles", "split", tier, n).permutation(len(members))]
        start = 0
        for name, k in _split_counts(len(members)).items():
            split[members[start : start + k]] = name
            start += k
    rows = []
    for i, pid in enumerate(ids):
        traits = draw_traits(str(tiers[i]), stable_rng(seed, "profiles", "traits", pid))
        rows.append(
            {
                "profile_id": pid,
                "skill_tier": str(tiers[i]),
                "skill_tier_binary": BINARY_TIER[str(tiers[i])],
                "dominant_hand": "left" if left[i] else "right",
                "split": str(split[i]),
                **traits,
            }
        )
    return pd.DataFrame(
        rows, columns=["profile_id", "skill_tier", "skill_tier_binary", "dominant_hand", "split", *TRAIT_NAMES]
    )


def splits_of(profiles: pd.DataFrame) -> dict[str, list[str]]:
    """{split: [profile_id, ...]} for splits.json."""
    return {s: sorted(profiles.loc[profiles["split"] == s, "profile_id"].tolist()) for s in SPLITS}
