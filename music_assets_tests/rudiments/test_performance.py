"""Performances and their MIDI: true subdivisions, grace notes, tempo ranges, channel 10, stable seeds.

Each of the reference generator's errors has a test here that fails if it comes back.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from fractions import Fraction

import mido
import numpy as np
import pandas as pd
import pretty_midi
import pytest

from music_assets.paths import REPO_ROOT
from music_assets.rudiments.dataset import DatasetSettings, plan_partition, play
from music_assets.rudiments.library import load_library
from music_assets.rudiments.midi import DRUM_CHANNEL, midi_bytes, mido_file, read_midi_summary, write_midi
from music_assets.rudiments.performance import (
    DRAG_GRACE,
    FLAM_GRACE,
    LEAD_IN_SEC,
    MIN_GAP_SEC,
    STROKE_TYPES,
    compiled,
    perform,
)
from music_assets.rudiments.profiles import TRAIT_NAMES, generate_profiles

# A player without deviations: the performance is the ideal grid.
PERFECT = {
    "timing_sd_ms": 0.0,
    "timing_consistency": 0.5,
    "tempo_drift_pct": 0.0,
    "velocity_cv": 0.0,
    "accent_differentiation": 1.0,
    "accent_accuracy": 1.0,
    "lr_velocity_ratio": 1.0,
    "lr_timing_bias_ms": 0.0,
    "flam_spacing_ms": 25.0,
    "diddle_evenness": 1.0,
    "roll_sustain": 1.0,
    "fatigue": 0.0,
    "comfort_tempo_min_bpm": 40.0,
    "comfort_tempo_max_bpm": 240.0,
}
TICK_TOL = 0.001  # seconds; MIDI ticks at 960 PPQ are < 1 ms


@pytest.fixture(scope="module")
def players() -> pd.DataFrame:
    return generate_profiles(40, seed=3)


def _traits(row) -> dict[str, float]:
    return {k: float(row[k]) for k in TRAIT_NAMES}


def _primary_times(perf) -> np.ndarray:
    return perf.actual_s[perf.is_primary]


@pytest.mark.parametrize("slug", list(load_library()))
def test_ideal_grid_follows_the_rudiments_own_subdivision(slug: str) -> None:
    r = load_library()[slug]
    tempo = (r.tempo_min_bpm + r.tempo_max_bpm) / 2
    perf = perform(compiled(slug), PERFECT, tempo, 2, False, np.random.default_rng(0))
    beats = [float(b + c * r.cycle_beats) for c in range(2) for b in r.beat_positions()]
    expected = LEAD_IN_SEC + np.array(beats) * 60.0 / tempo
    assert np.allclose(perf.intended_s[perf.is_primary], expected, atol=1e-9)
    assert np.allclose(_primary_times(perf), expected, atol=TICK_TOL)


def test_triplets_are_not_spread_as_sixteenths() -> None:
    tempo = 120.0
    beat = 60.0 / tempo
    for slug, step in (
        ("flam_accent", 1 / 3),
        ("swiss_army_triplet", 1 / 3),
        ("triple_stroke_roll", 1 / 6),
        ("single_paradiddle", 1 / 4),
    ):
        perf = perform(compiled(slug), PERFECT, tempo, 2, False, np.random.default_rng(0))
        assert np.allclose(np.diff(_primary_times(perf)), step * beat, atol=TICK_TOL), slug
    # a ratamacue is a drag into a sixteenth-note triplet and an eighth note: uneven by design
    perf = perform(compiled("single_ratamacue"), PERFECT, tempo, 1, False, np.random.default_rng(0))
    iois = np.diff(_primary_times(perf)) / beat
    assert np.allclose(iois, [1 / 6, 1 / 6, 1 / 6, 1 / 2, 1 / 6, 1 / 6, 1 / 6], atol=0.01)


def test_the_two_drag_grace_notes_never_share_a_time(players: pd.DataFrame) -> None:
    lib = load_library()
    drags = [s for s, r in lib.items() if r.has_drags]
    assert len(drags) == 9
    for slug in drags:
        r = lib[slug]
        for i, row in enumerate(players.itertuples()):
            tempo = min(r.tempo_max_bpm, row.comfort_tempo_max_bpm)
            perf = perform(
                compiled(slug), _traits(row._asdict()), tempo, 2, row.dominant_hand == "left", np.random.default_rng(i)
            )
            graces = np.flatnonzero(perf.stroke_type == DRAG_GRACE)
            parents = perf.parent[graces]
            assert len(graces) == 2 * len(set(parents.tolist()))
            for p in set(parents.tolist()):
                g = graces[parents == p]
                t = perf.actual_s[g]
                assert t[0] + MIN_GAP_SEC - TICK_TOL <= t[1] < perf.actual_s[p], (slug, row.profile_id)
                assert (perf.hand[g] != perf.hand[p]).all()


def test_flam_grace_notes_come_from_the_players_flam_spacing(players: pd.DataFrame) -> None:
    for row in players.itertuples():
        perf = perform(
            compiled("flam_accent"),
            _traits(row._asdict()),
            80.0,
            4,
            row.dominant_hand == "left",
            np.random.default_rng(1),
        )
        g = np.flatnonzero(perf.stroke_type == FLAM_GRACE)
        spacing = (perf.actual_s[perf.parent[g]] - perf.actual_s[g]) * 1000
        assert np.allclose(spacing, perf.flam_spacing_ms[g])
        assert (spacing > 5).all() and (spacing < 110).all()  # never the reference's ~150 ms
        assert np.median(spacing) == pytest.approx(row.flam_spacing_ms, rel=0.35)
    by_tier = players.groupby("skill_tier")["flam_spacing_ms"].mean()
    assert 40 <= by_tier["beginner"] <= 60 and 18 <= by_tier["professional"] <= 32


def test_tempos_respect_the_rudiment_and_the_player(players: pd.DataFrame) -> None:
    settings = DatasetSettings.resolve("demo", tempos_per_pair=3)
    for slug, r in load_library().items():
        plans, skipped = plan_partition(r, players, settings)
        assert not skipped and len(plans) == 3 * len(players)
        for p in plans:
            assert r.tempo_min_bpm <= p.tempo_bpm <= r.tempo_max_bpm, slug
            assert p.profile["comfort_tempo_min_bpm"] <= p.tempo_bpm <= p.profile["comfort_tempo_max_bpm"], slug
    tempos = {p.tempo_bpm for p in plan_partition(load_library()["six_stroke_roll"], players, settings)[0]}
    assert max(tempos) <= 110  # the six-stroke roll's own range, though professionals are comfortable faster


def test_midi_is_a_snare_on_channel_10_with_the_performed_times(players: pd.DataFrame, tmp_path) -> None:
    row = players.iloc[0].to_dict()
    for slug in ("flam_drag", "multiple_bounce_roll", "single_ratamacue"):
        perf = perform(compiled(slug), _traits(row), 97.3, 3, True, np.random.default_rng(5))
        path = write_midi(perf, tmp_path / f"{slug}.mid")
        mf = mido.MidiFile(path)
        notes = [m for m in mf if m.type in ("note_on", "note_off")]
        assert notes and {m.channel for m in notes} == {DRUM_CHANNEL} == {9}
        assert {m.note for m in notes} == {38}
        assert [m.channel for m in mf if m.type == "program_change"] == [9]
        assert sum(m.type == "note_on" and m.velocity > 0 for m in notes) == perf.num_strokes
        pm = pretty_midi.PrettyMIDI(str(path))
        assert len(pm.instruments) == 1 and pm.instruments[0].is_drum
        starts = np.array([n.start for n in pm.instruments[0].notes])
        assert np.allclose(starts, perf.actual_s, atol=1e-6)
        assert [n.velocity for n in pm.instruments[0].notes] == perf.actual_vel.tolist()
        assert pm.get_end_time() == pytest.approx(perf.duration_sec, abs=1e-6)
        summary = read_midi_summary(path)
        assert (summary.note_count, summary.channels, summary.pitches) == (perf.num_strokes, {9}, {38})
        assert summary.end_sec == pytest.approx(perf.duration_sec, abs=1e-6)
        assert pm.estimate_tempo() > 0 and pm.get_tempo_changes()[1][0] == pytest.approx(97.3, abs=0.01)
        buf = io.BytesIO()
        mido_file(perf, "x").save(file=buf)
        assert midi_bytes(perf, "x") == buf.getvalue()  # the direct encoder writes what mido writes


def test_left_handed_players_mirror_the_sticking() -> None:
    right = perform(compiled("single_paradiddle"), PERFECT, 100, 1, False, np.random.default_rng(0))
    left = perform(compiled("single_paradiddle"), PERFECT, 100, 1, True, np.random.default_rng(0))
    assert "".join("RL"[h] for h in right.hand) == "RLRRLRLL"
    assert "".join("RL"[h] for h in left.hand) == "LRLLRLRR"


def test_buzz_strokes_bounce_with_decaying_velocity() -> None:
    perf = perform(compiled("multiple_bounce_roll"), PERFECT, 60, 2, False, np.random.default_rng(0))
    types = [STROKE_TYPES[t] for t in perf.stroke_type]
    assert types.count("buzz") == 8 and types.count("buzz_bounce") >= 8
    for i in np.flatnonzero(perf.stroke_type == STROKE_TYPES.index("buzz_bounce")):
        p = perf.parent[i]
        assert types[p] == "buzz" and perf.actual_s[i] > perf.actual_s[p] and perf.actual_vel[i] < perf.actual_vel[p]


def test_players_deviate_and_tiers_differ(players: pd.DataFrame) -> None:
    sd = {}
    for row in players.itertuples():
        perf = perform(compiled("single_stroke_roll"), _traits(row._asdict()), 90, 8, False, np.random.default_rng(2))
        e = (perf.actual_s - perf.intended_s)[perf.is_primary] * 1000
        sd.setdefault(row.skill_tier, []).append(e.std())
    means = {t: np.mean(v) for t, v in sd.items()}
    assert means["professional"] < means["advanced"] < means["intermediate"] < means["beginner"]


_SEED_SCRIPT = """
import hashlib
from music_assets.rudiments.dataset import DatasetSettings, plan_partition, play
from music_assets.rudiments.library import load_library
from music_assets.rudiments.midi import midi_bytes
from music_assets.rudiments.performance import compiled
from music_assets.rudiments.profiles import generate_profiles
r = load_library()["flam_drag"]
plans, _ = plan_partition(r, generate_profiles(8, seed=11), DatasetSettings.resolve("demo", seed=11))
print([p.seed for p in plans], [p.tempo_bpm for p in plans])
print(hashlib.sha256(b"".join(midi_bytes(play(p, compiled(r.slug))) for p in plans)).hexdigest())
"""


def test_seeds_and_files_are_the_same_in_every_process_whatever_pythonhashseed() -> None:
    outs = []
    for hash_seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        proc = subprocess.run(
            [sys.executable, "-c", _SEED_SCRIPT], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
        # the salt really differs between the two processes
        probe = subprocess.run(
            [sys.executable, "-c", "print(hash('flam_drag'))"], env=env, capture_output=True, text=True
        )
        outs.append(probe.stdout)
    assert outs[0] == outs[2] and outs[1] != outs[3]
    r = load_library()["flam_drag"]
    plans, _ = plan_partition(r, generate_profiles(8, seed=11), DatasetSettings.resolve("demo", seed=11))
    digest = hashlib.sha256(b"".join(midi_bytes(play(p, compiled(r.slug))) for p in plans)).hexdigest()
    assert outs[0].splitlines()[-1] == digest


def test_beat_positions_are_exact_fractions() -> None:
    r = load_library()["single_ratamacue"]
    assert r.beat_positions()[:4] == [Fraction(0), Fraction(1, 6), Fraction(1, 3), Fraction(1, 2)]
