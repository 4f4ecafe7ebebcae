"""Simulated players: tier mix, handedness, correlated clamped traits, split by player."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from music_assets.rudiments.constants import SKILL_TIERS, SPLITS
from music_assets.rudiments.profiles import TRAITS, generate_profiles, splits_of, tier_counts, trait_correlation


@pytest.fixture(scope="module")
def many() -> pd.DataFrame:
    return generate_profiles(2000, seed=7)


def test_tier_mix_handedness_and_binary_tier(many: pd.DataFrame) -> None:
    assert many["skill_tier"].value_counts().to_dict() == {
        "beginner": 500,
        "intermediate": 700,
        "advanced": 500,
        "professional": 300,
    }
    assert (many["dominant_hand"] == "left").sum() == 200
    expected = {"beginner": "novice", "intermediate": "novice", "advanced": "skilled", "professional": "skilled"}
    assert (many["skill_tier"].map(expected) == many["skill_tier_binary"]).all()
    assert many["profile_id"].is_unique


def test_traits_are_clamped_to_their_tier_and_follow_the_published_figures(many: pd.DataFrame) -> None:
    for t in TRAITS:
        for i, tier in enumerate(SKILL_TIERS):
            vals = many.loc[many["skill_tier"] == tier, t.name]
            mean, sd, lo, hi = t.tiers[i]
            assert vals.between(lo, hi).all(), (t.name, tier)
    means = many.groupby("skill_tier")[["timing_sd_ms", "flam_spacing_ms"]].mean().loc[list(SKILL_TIERS)]
    assert means["timing_sd_ms"].is_monotonic_decreasing and means["flam_spacing_ms"].is_monotonic_decreasing
    assert means.loc["beginner", "flam_spacing_ms"] == pytest.approx(50, abs=3)
    assert means.loc["professional", "flam_spacing_ms"] == pytest.approx(25, abs=2)
    assert (many["comfort_tempo_max_bpm"] >= many["comfort_tempo_min_bpm"] + 20).all()


def test_traits_are_correlated_within_a_tier(many: pd.DataFrame) -> None:
    np.linalg.cholesky(trait_correlation())  # positive definite
    z = many.groupby("skill_tier")[[t.name for t in TRAITS]].transform(lambda c: (c - c.mean()) / c.std())
    corr = z.corr()
    assert corr.loc["timing_sd_ms", "velocity_cv"] > 0.15
    assert corr.loc["timing_sd_ms", "flam_spacing_ms"] > 0.2
    assert corr.loc["timing_sd_ms", "diddle_evenness"] < -0.15
    assert corr.loc["velocity_cv", "accent_accuracy"] < -0.1


def test_split_by_player_is_stratified_and_disjoint(many: pd.DataFrame) -> None:
    splits = splits_of(many)
    ids = [p for s in SPLITS for p in splits[s]]
    assert len(ids) == len(set(ids)) == len(many)
    share = many["split"].value_counts(normalize=True)
    assert share["train"] == pytest.approx(0.70, abs=0.01)
    assert share["validation"] == pytest.approx(0.15, abs=0.01) and share["test"] == pytest.approx(0.15, abs=0.01)


@pytest.mark.parametrize("n", [12, 20])
def test_small_sets_have_every_tier_in_every_split(n: int) -> None:
    profiles = generate_profiles(n, seed=0)
    assert set(zip(profiles["skill_tier"], profiles["split"], strict=True)) == {
        (t, s) for t in SKILL_TIERS for s in SPLITS
    }
    assert tier_counts(20) == {"beginner": 5, "intermediate": 7, "advanced": 5, "professional": 3}


def test_same_seed_same_players_other_seed_other_players() -> None:
    a, b, c = generate_profiles(30, seed=1), generate_profiles(30, seed=1), generate_profiles(30, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
