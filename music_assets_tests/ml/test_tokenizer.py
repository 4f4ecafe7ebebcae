"""Score-conditioned tokens (format 3) and the written scores they carry: layout, decoding, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from music_assets.ml.score import (
    LEAD_IN_SEC,
    ScoreError,
    ScoreTemplate,
    bounce_count,
    expand,
    library_templates,
    stroke_kinds,
)
from music_assets.ml.tokenizer import (
    EVENT_LEN,
    FORMAT,
    HEADER_LEN,
    Event,
    TokenizerConfig,
    TokenizerError,
    Vocab,
    score_of,
)
from music_assets.rudiments import performance
from music_assets.rudiments.library import get_rudiment

TEMPLATES = library_templates()


def _vocab(**kw) -> Vocab:
    return Vocab(TokenizerConfig.with_grid({s: t.steps_per_beat for s, t in TEMPLATES.items()}, **kw))


def test_the_score_constants_are_the_datasets() -> None:
    from music_assets.ml import score

    assert score.LEAD_IN_SEC == performance.LEAD_IN_SEC and score.MAX_BOUNCES == performance.MAX_BOUNCES
    assert score.BUZZ_INTERVAL_SEC == performance.BUZZ_INTERVAL_SEC
    assert len(TEMPLATES) == 40 and TEMPLATES["flam_accent"].steps_per_beat == 3


def test_score_expansion_follows_the_written_strokes() -> None:
    flam = expand(TEMPLATES["flam"], 100, 4)
    primaries = [e for e in flam if e.parent < 0]
    # every primary of a flam has its grace note right after it, with no grid move
    for e in flam:
        if e.parent >= 0:
            assert e.kind == "FLAM_GRACE1" and e.grid_steps == 0 and flam[e.parent].parent < 0
    n_cycles = 4 // TEMPLATES["flam"].cycle_beats
    assert len(primaries) == n_cycles * len(TEMPLATES["flam"].strokes)
    assert sum(e.parent >= 0 for e in flam) == n_cycles * sum(s.grace == "flam" for s in TEMPLATES["flam"].strokes)
    drag = expand(TEMPLATES["drag"], 100, 4)
    assert [e.kind for e in drag if e.parent >= 0][:2] == ["DRAG_GRACE1", "DRAG_GRACE2"]
    # the length: primaries strictly before the requested beats, whole or partial cycles
    roll = TEMPLATES["single_stroke_roll"]
    assert len(expand(roll, 100, 2)) == 2 * len(roll.strokes) // roll.cycle_beats
    steps = [e.step for e in expand(TEMPLATES["triple_paradiddle"], 100, 3)]
    assert max(steps) < 3 * TEMPLATES["triple_paradiddle"].steps_per_beat
    with pytest.raises(ScoreError, match="positive length"):
        expand(roll, 100, 0)


def test_buzz_bounces_follow_the_tempo_as_the_dataset_plays_them() -> None:
    t = TEMPLATES["multiple_bounce_roll"]
    slow, fast = expand(t, 50, 1), expand(t, 120, 1)
    n_slow, n_fast = sum(e.kind.startswith("BOUNCE") for e in slow), sum(e.kind.startswith("BOUNCE") for e in fast)
    assert n_slow > n_fast >= 4  # one or more per buzz stroke, fewer at a faster tempo
    comp = performance.compile_rudiment(get_rudiment("multiple_bounce_roll"))
    for tempo in (50.0, 73.3, 120.0):
        perf = performance.perform(comp, _TRAITS, tempo, 2, False, np.random.default_rng(0))
        bounces = int((perf.stroke_type == performance.BUZZ_BOUNCE).sum())
        assert bounces == sum(e.kind.startswith("BOUNCE") for e in expand(t, tempo, 2 * t.cycle_beats))
    assert bounce_count(0.25, 50) == 5 and bounce_count(0.25, 240) == 1


_TRAITS = {
    "timing_sd_ms": 10.0,
    "timing_consistency": 0.7,
    "tempo_drift_pct": 0.5,
    "velocity_cv": 0.1,
    "accent_differentiation": 0.9,
    "accent_accuracy": 0.97,
    "lr_velocity_ratio": 0.95,
    "lr_timing_bias_ms": 2.0,
    "flam_spacing_ms": 30.0,
    "diddle_evenness": 0.9,
    "roll_sustain": 0.9,
    "fatigue": 0.2,
}


def test_vocabulary_layout_and_json_round_trip() -> None:
    vocab = _vocab()
    primaries, children = stroke_kinds()
    assert {f"STROKE_{k}" for k in (*primaries, *children)} <= set(vocab.index)
    assert vocab.offsets[0] == -600 and vocab.offsets[-1] == 600 and vocab.offsets[1] - vocab.offsets[0] == 2
    assert vocab.predicted.sum() == len(vocab.offsets) + vocab.config.velocity_bins
    again = Vocab.from_json(vocab.to_json())
    assert again.tokens == vocab.tokens and again.config == vocab.config
    old = {**vocab.to_json(), "format": 2}
    with pytest.raises(TokenizerError, match=f"sequence format 2, this version reads {FORMAT}"):
        Vocab.from_json(old, source="old/vocab.json")
    tampered = vocab.to_json()
    tampered["tokens"] = tampered["tokens"][:-1]
    with pytest.raises(TokenizerError, match="does not match its config"):
        Vocab.from_json(tampered)
    with pytest.raises(TokenizerError, match="unknown rudiment 'nope'"):
        vocab.header("nope", "advanced", 100)
    with pytest.raises(TokenizerError, match="offset_step_ms"):
        TokenizerConfig(offset_step_ms=0)


def test_events_decode_to_onsets_on_the_grid_plus_their_offsets() -> None:
    vocab = _vocab()
    spb = TEMPLATES["flam"].steps_per_beat
    events = [
        Event(0, "R_ACCENT", 10.0, 110),  # grid point 0, 10 ms late
        Event(0, "FLAM_GRACE1", -30.0, 40),  # 30 ms before its primary's onset
        Event(spb, "L", -4.0, 80),  # one beat later, 4 ms early
    ]
    ids = vocab.encode(events, "flam", "advanced", 120)
    assert len(ids) == HEADER_LEN + EVENT_LEN * 3 + 1
    assert [vocab.tokens[i] for i in ids[:HEADER_LEN]] == ["BOS", "RUDIMENT_flam", "TIER_advanced", "TEMPO_120"]
    assert [vocab.tokens[i] for i in ids[HEADER_LEN : HEADER_LEN + 4]] == [
        "GRID_0",
        "STROKE_R_ACCENT",
        "OFFSET_10",
        "VELOCITY_27",
    ]
    perf = vocab.decode(ids)
    onsets = [round(n.start, 4) for n in perf.notes]
    assert onsets == [
        round(LEAD_IN_SEC + 0.010 - 0.030, 4),
        round(LEAD_IN_SEC + 0.010, 4),
        round(LEAD_IN_SEC + 0.5 - 0.004, 4),
    ]
    assert [n.velocity for n in perf.notes] == [vocab.bin_velocity(vocab.velocity_bin(v)) for v in (40, 110, 80)]
    assert all(n.pitch == 38 and n.end > n.start for n in perf.notes)
    assert perf.notes[0].end <= perf.notes[1].start  # a note ends at the next onset
    # the grid follows the exact tempo asked for, the header conditions on its bin
    slower = vocab.decode(ids, tempo_bpm=119.0)
    assert slower.tempo_bpm == 119.0 and slower.notes[-1].start == pytest.approx(LEAD_IN_SEC + 60 / 119 - 0.004)
    header, score = score_of(ids, vocab)
    assert header == ids[:HEADER_LEN] and score == [(ids[4 + 4 * j], ids[5 + 4 * j]) for j in range(3)]


def test_offsets_are_quantized_and_clamped_and_malformed_sequences_decode_leniently() -> None:
    vocab = _vocab(offset_step_ms=2, max_offset_ms=100)
    assert vocab.tokens[vocab.offset_id(3.1)] == "OFFSET_4" and vocab.tokens[vocab.offset_id(-1000)] == "OFFSET_-100"
    ids = vocab.encode([Event(0, "R", 0.0, 80), Event(2, "L", 0.0, 80)], "single_stroke_roll", "beginner", 100)
    bad = ids[:HEADER_LEN] + [vocab.index["STROKE_R"], vocab.eos_id - 1] + ids[HEADER_LEN:]
    with pytest.raises(TokenizerError, match="outside the vocabulary"):
        vocab.decode([*ids[:-1], len(vocab)])
    # wrong-kind tokens are skipped; a velocity makes a note from what came before it
    perf = vocab.decode([t for t in bad if t != vocab.eos_id - 1])
    assert len(perf.notes) == 2


def test_bad_templates_are_refused() -> None:
    d = TEMPLATES["flam"].to_dict()
    assert ScoreTemplate.from_dict(d) == TEMPLATES["flam"]
    d["strokes"] = list(reversed(d["strokes"]))
    with pytest.raises(ScoreError, match="flam.*increasing"):
        ScoreTemplate.from_dict(d)
    with pytest.raises(ScoreError, match="malformed"):
        ScoreTemplate.from_dict({"slug": "x"})
