"""Grammar score of format-3 sequences: perfect, broken in each way, and collapse patterns."""

from __future__ import annotations

import pytest

from music_assets.ml.grammar import grammar_report, grammar_score, mean_grammar_score
from music_assets.ml.score import library_templates
from music_assets.ml.tokenizer import Event, TokenizerConfig, Vocab

VOCAB = Vocab(TokenizerConfig.with_grid({s: t.steps_per_beat for s, t in library_templates().items()}))


def _seq() -> list[int]:
    events = [Event(0, "R_ACCENT", 3.0, 110), Event(0, "FLAM_GRACE1", -30.0, 40), Event(2, "L", -2.0, 70)]
    return VOCAB.encode(events, "flam", "advanced", 100)


def test_a_well_formed_sequence_scores_one() -> None:
    r = grammar_report(_seq(), VOCAB)
    assert (r.events, r.well_formed, r.illegal_tokens, r.has_eos) == (3, 3, 0, True) and r.score == 1.0
    assert grammar_score([*_seq(), VOCAB.pad_id, VOCAB.pad_id], VOCAB) == 1.0  # padding after EOS is fine


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda s: s[:-1], 3 / 4),  # no EOS
        (lambda s: [*s[:6], VOCAB.index["VELOCITY_3"], *s[7:]], 2 / 4),  # a velocity where the offset goes
        (lambda s: [*s[:-1], VOCAB.index["GRID_1"], VOCAB.eos_id], 3 / 4),  # a partial event
        (lambda s: [*s, VOCAB.index["STROKE_R"]], 3 / 4),  # something after EOS
        (lambda s: [*s[:8], VOCAB.index["GRID_1"], *s[9:]], 2 / 4),  # a grace note with a grid move
        (lambda s: [s[0], VOCAB.index["TIER_advanced"], *s[2:]], 3 / 4),  # a bad header
    ],
)
def test_each_error_counts(edit, expected: float) -> None:
    assert grammar_score(edit(_seq()), VOCAB) == pytest.approx(expected)


def test_collapse_patterns_score_near_zero() -> None:
    header = _seq()[:4]
    repeated = header + [VOCAB.index["OFFSET_0"]] * 200  # one token over and over, never ending
    assert grammar_score(repeated, VOCAB) < 0.05
    assert grammar_score([*header, VOCAB.eos_id], VOCAB) == 0.0  # an empty performance is no performance
    wrong_kinds = (
        header + [VOCAB.index["GRID_1"], VOCAB.index["STROKE_R"], VOCAB.index["GRID_0"], VOCAB.index["GRID_0"]] * 20
    )
    assert grammar_score([*wrong_kinds, VOCAB.eos_id], VOCAB) == 0.0
    assert mean_grammar_score([_seq(), repeated], VOCAB) == pytest.approx(0.5 * (1 + grammar_score(repeated, VOCAB)))
    with pytest.raises(ValueError, match="no sequences"):
        mean_grammar_score([], VOCAB)
