"""Grammar score on hand-made valid and broken sequences, including degenerate-model collapse."""

from __future__ import annotations

import pytest

from music_assets.ml.grammar import grammar_report, grammar_score, mean_grammar_score
from music_assets.ml.tokenizer import Note, Vocab

V = Vocab()
HEAD = ["BOS", "RUDIMENT_flam", "TIER_professional", "TEMPO_120"]


def ids(*tokens: str) -> list[int]:
    return [V.index[t] for t in tokens]


def note(pitch: int = 38, vel: int = 20, dur: int = 10) -> list[str]:
    return ["GRID_1", "OFFSET_-3", f"VELOCITY_{vel}", f"NOTE_ON_{pitch}", f"TIME_SHIFT_{dur}", f"NOTE_OFF_{pitch}"]


def test_tokenized_performance_scores_one() -> None:
    seq = V.encode_notes(
        [Note(0.0, 0.05, 38, 100), Note(0.02, 0.2, 42, 60), Note(0.25, 0.3, 38, 90)], "flam", "beginner", 90
    )
    r = grammar_report(seq, V)
    assert (r.note_ons, r.closed, r.orphan_offs, r.illegal_transitions, r.unterminated) == (3, 3, 0, 0, 0)
    assert r.score == 1.0
    # PAD after EOS is padding, not an error
    assert grammar_score(seq + [V.pad_id] * 5, V) == 1.0


def test_one_token_repeated_scores_zero() -> None:
    assert grammar_score(ids(*HEAD, *["TIME_SHIFT_5"] * 200), V) == 0.0
    assert grammar_score(ids(*HEAD, *["NOTE_ON_38"] * 200), V) < 0.01
    assert grammar_score(ids(*HEAD, *["EOS"] * 50), V) == 0.0  # no notes at all, then junk


def test_note_on_closed_by_another_pitch_scores_zero() -> None:
    body = []
    for _ in range(20):
        body += ["GRID_1", "OFFSET_0", "VELOCITY_20", "NOTE_ON_38", "TIME_SHIFT_10", "NOTE_OFF_42", "TIME_SHIFT_20"]
    r = grammar_report(ids(*HEAD, *body, "EOS"), V)
    assert r.closed == 0 and r.orphan_offs == 20 and r.unterminated == 20  # 38 re-struck while open, never closed
    assert r.score == 0.0


def test_each_error_kind_costs_something() -> None:
    good = ids(*HEAD, *note(), *note(), *note(), *note(), "EOS")
    assert grammar_score(good, V) == 1.0
    unterminated = ids(
        *HEAD, *note(), *note(), *note(), "GRID_1", "OFFSET_0", "VELOCITY_20", "NOTE_ON_38", "TIME_SHIFT_3", "EOS"
    )
    assert grammar_score(unterminated, V) == pytest.approx(3 / 4)
    orphan = ids(*HEAD, *note(), *note(), *note(), *note(), "NOTE_OFF_40", "EOS")
    assert grammar_score(orphan, V) == pytest.approx(4 / 5)
    no_velocity = ids(
        *HEAD, *note(), *note(), *note(), "GRID_1", "OFFSET_0", "NOTE_ON_38", "TIME_SHIFT_3", "NOTE_OFF_38", "EOS"
    )
    assert grammar_score(no_velocity, V) == pytest.approx(4 / 5)  # NOTE_ON must follow VELOCITY
    no_eos = ids(*HEAD, *note(), *note(), *note(), *note())
    r = grammar_report(no_eos, V)
    assert not r.has_eos and r.score == pytest.approx(4 / 5)
    zero_length = ids(
        *HEAD, *note(), *note(), *note(), "GRID_1", "OFFSET_0", "VELOCITY_20", "NOTE_ON_38", "NOTE_OFF_38", "EOS"
    )
    assert grammar_score(zero_length, V) == pytest.approx(4 / 5)
    header_in_body = ids(*HEAD, *note(), *note(), "TIER_beginner", *note(), *note(), "EOS")
    assert grammar_score(header_in_body, V) == pytest.approx(4 / 6)  # two bad transitions: into and out of it
    after_eos = ids(*HEAD, *note(), *note(), *note(), *note(), "EOS", *note())
    assert grammar_score(after_eos, V) == pytest.approx(4 / (4 + len(note())))
    missing_header = ids("BOS", "TEMPO_120", *note(), *note(), *note(), "EOS")
    assert grammar_score(missing_header, V) == pytest.approx(3 / 4)
    # time between notes is GRID moves and OFFSETs: a TIME_SHIFT there, or a note with no OFFSET, is illegal
    shift_between = ids(*HEAD, *note(), *note(), "TIME_SHIFT_20", *note(), *note(), "EOS")
    assert grammar_score(shift_between, V) == pytest.approx(4 / 5)
    no_offset = ids(
        *HEAD, *note(), *note(), *note(), "GRID_1", "VELOCITY_20", "NOTE_ON_38", "TIME_SHIFT_3", "NOTE_OFF_38", "EOS"
    )
    assert grammar_score(no_offset, V) == pytest.approx(4 / 5)
    # the lead-in before the first note is TIME_SHIFTs
    lead_in = ids(
        *HEAD,
        "TIME_SHIFT_100",
        "TIME_SHIFT_30",
        "OFFSET_0",
        "VELOCITY_20",
        "NOTE_ON_38",
        "TIME_SHIFT_3",
        "NOTE_OFF_38",
        *note(),
        "EOS",
    )
    assert grammar_score(lead_in, V) == 1.0


def test_mean_weighs_sequences_equally() -> None:
    good = ids(*HEAD, *note(), "EOS")
    bad = ids(*HEAD, *["TIME_SHIFT_1"] * 10)
    assert mean_grammar_score([good, good, good, bad], V) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        mean_grammar_score([], V)
