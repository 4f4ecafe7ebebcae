"""Event tokenizer: round trip, edge cases, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from music_assets.ml.tokenizer import Note, TokenizerConfig, TokenizerError, Vocab
from music_assets_tests.ml.fake_dataset import write_fake_dataset


def _notes(pm: pretty_midi.PrettyMIDI) -> list[pretty_midi.Note]:
    return sorted((n for i in pm.instruments if i.is_drum for n in i.notes), key=lambda n: (n.start, n.pitch))


@pytest.mark.parametrize("ticks_per_beat", [384, 960])
def test_midi_round_trip_keeps_every_note_within_resolution_and_velocity_bin(
    tmp_path: Path, ticks_per_beat: int
) -> None:
    samples = write_fake_dataset(
        tmp_path, rudiments=("flam", "single_stroke_roll"), profiles_per_tier={"train": 1, "validation": 0, "test": 0}
    )
    vocab = Vocab(TokenizerConfig(ticks_per_beat=ticks_per_beat))
    for row in samples.itertuples():
        half = vocab.tick_seconds(vocab.tempo_bin(row.tempo_bpm)) / 2 + 1e-9
        assert half <= 0.0025 / (ticks_per_beat / 384)
        original = pretty_midi.PrettyMIDI(str(tmp_path / row.midi_path))
        ids = vocab.encode_midi(tmp_path / row.midi_path, row.rudiment_slug, row.skill_tier)
        perf = vocab.decode(ids)
        assert (perf.rudiment, perf.tier) == (row.rudiment_slug, row.skill_tier)
        assert abs(perf.tempo_bpm - row.tempo_bpm) <= vocab.config.tempo_step_bpm / 2
        decoded = _notes(vocab.to_pretty_midi(perf))
        src = _notes(original)
        assert len(decoded) == len(src)
        for a, b in zip(src, decoded, strict=True):
            assert abs(a.start - b.start) <= half
            assert a.pitch == b.pitch
            assert vocab.velocity_bin(a.velocity) == vocab.velocity_bin(b.velocity)
            # a note may be cut at the next onset of its pitch (grace notes), never lengthened
            assert b.end <= a.end + half


def test_grace_note_is_cut_at_its_main_stroke_and_onsets_are_grid_steps_plus_offsets() -> None:
    vocab = Vocab()  # no grid given: every rudiment on sixteenths (96 ticks)
    notes = [Note(0.0, 0.1, 38, 40), Note(0.03, 0.13, 38, 110), Note(1.5, 1.6, 38, 90)]
    ids = vocab.encode_notes(notes, "flam", "advanced", 121)
    toks = [vocab.tokens[i] for i in ids]
    assert toks[:4] == ["BOS", "RUDIMENT_flam", "TIER_advanced", "TEMPO_120"]
    # a tick is 1/384 beat at 120 BPM (1.30 ms). The grace note is 30 ms = 23 ticks before the main
    # stroke, which anchors the grid; the grace is cut at the main stroke. Each note is written whole
    # (offset, velocity, on, duration, off); the last onset is 12 sixteenths on, 23 ticks early.
    assert toks[4:] == [
        "OFFSET_-23",
        "VELOCITY_9",
        "NOTE_ON_38",
        "TIME_SHIFT_23",
        "NOTE_OFF_38",
        "OFFSET_0",
        "VELOCITY_27",
        "NOTE_ON_38",
        "TIME_SHIFT_77",
        "NOTE_OFF_38",
        "GRID_12",
        "OFFSET_-23",
        "VELOCITY_22",
        "NOTE_ON_38",
        "TIME_SHIFT_77",
        "NOTE_OFF_38",
        "EOS",
    ]
    perf = vocab.decode(ids)
    assert perf.tempo_bpm == 120
    assert [round(n.start * 1000, 1) for n in perf.notes] == [0.0, 29.9, 1500.0]
    assert [round(n.end * 1000, 1) for n in perf.notes] == [29.9, 130.2, 1600.3]


def test_long_gaps_use_several_tokens() -> None:
    vocab = Vocab(TokenizerConfig.with_grid({"single_stroke_roll": 4}))
    tick = vocab.tick_seconds(120)
    notes = [Note(2.0, 2.05, 38, 80), Note(2.125, 2.2, 38, 80), Note(7.125, 7.2, 38, 80)]
    toks = [vocab.tokens[i] for i in vocab.encode_notes(notes, "single_stroke_roll", "beginner", 120)]
    # the lead-in to the first onset (2 s = 4 beats) is TIME_SHIFTs, a 10-beat rest 40 sixteenths of GRID
    assert toks[4:9] == ["TIME_SHIFT_384"] * 4 + ["OFFSET_0"]
    assert toks[toks.index("GRID_1") + 1 :].count("GRID_32") == 1 and "GRID_8" in toks
    perf = vocab.decode(vocab.encode_notes(notes, "single_stroke_roll", "beginner", 120))
    assert [round(n.start / tick) for n in perf.notes] == [1536, 1632, 5472]


def test_a_rudiments_rhythm_is_the_same_grid_tokens_at_every_tempo() -> None:
    """Sextuplets are GRID_1 before every stroke whatever the tempo and the note length; a
    player's timing error is the stroke's OFFSET from the grid, and decoding puts it back."""
    vocab = Vocab(TokenizerConfig.with_grid({"double_paradiddle": 6}))
    errors_ticks = [0, 3, -2, 5, -4, 1, 0, -6]
    offsets = []
    for bpm, length in ((60, 0.08), (120, 0.08), (180, 0.03)):
        tick = vocab.tick_seconds(bpm)
        notes = [
            Note((0.25 / tick + i * 64 + e) * tick, (0.25 / tick + i * 64 + e) * tick + length, 38, 80)
            for i, e in enumerate(errors_ticks)
        ]
        ids = vocab.encode_notes(notes, "double_paradiddle", "professional", bpm)
        toks = [vocab.tokens[i] for i in ids]
        assert [t for t in toks if t.startswith("GRID")] == ["GRID_1"] * 7
        offsets.append([vocab.values[vocab.index[t]] for t in toks if t.startswith("OFFSET")])
        decoded = vocab.decode(ids)
        assert [round(n.start / tick) for n in decoded.notes] == [round(n.start / tick) for n in notes]
    assert offsets[0] == offsets[1] == offsets[2]
    assert offsets[0][:2] == [0, 3] and all(abs(o - e) <= 2 for o, e in zip(offsets[0], errors_ticks, strict=True))


def test_the_grid_follows_a_player_whose_tempo_is_off() -> None:
    """A player 2 % slower than the header's tempo bin ends a dozen sixteenths late, yet the offsets settle
    (the grid moves by a quarter of each offset) instead of growing into the next grid point."""
    vocab = Vocab(TokenizerConfig.with_grid({"single_stroke_roll": 4}))
    tick = vocab.tick_seconds(100)
    onsets = [(100 + i * 96 * 1.02) * tick for i in range(64)]
    ids = vocab.encode_notes([Note(t, t + 0.05, 38, 80) for t in onsets], "single_stroke_roll", "advanced", 100)
    toks = [vocab.tokens[i] for i in ids]
    assert [t for t in toks if t.startswith("GRID")] == ["GRID_1"] * 63
    offsets = [vocab.values[vocab.index[t]] for t in toks if t.startswith("OFFSET")]
    assert 63 * 96 * 0.02 > 96 and max(abs(o) for o in offsets) <= 8
    assert [round(n.start / tick) for n in vocab.decode(ids).notes] == [round(t / tick) for t in onsets]


def test_decoding_generated_tokens_is_lenient() -> None:
    vocab = Vocab()
    head = vocab.header("flam", "beginner", 120)
    tick = vocab.tick_seconds(120)
    # a note longer than the gap to the next onset of its pitch is cut there, an orphan NOTE_OFF is
    # skipped, a note left open by the next NOTE_ON ends after its duration shifts, one without an
    # OFFSET sits on its grid point, one left open at the end gets the default duration; the grid
    # follows the last stroke's offset by a quarter at a GRID move (2 ticks: 1)
    body = [
        "TIME_SHIFT_10",
        "OFFSET_0",
        "VELOCITY_20",
        "NOTE_ON_38",
        "TIME_SHIFT_200",
        "NOTE_OFF_38",
        "GRID_1",
        "OFFSET_-5",
        "VELOCITY_20",
        "NOTE_ON_38",
        "TIME_SHIFT_10",
        "NOTE_OFF_38",
        "NOTE_OFF_40",
        "OFFSET_2",
        "VELOCITY_20",
        "NOTE_ON_42",
        "TIME_SHIFT_7",
        "VELOCITY_20",
        "NOTE_ON_38",
        "TIME_SHIFT_3",
        "NOTE_OFF_38",
        "GRID_1",
        "VELOCITY_20",
        "NOTE_ON_40",
        "EOS",
    ]
    perf = vocab.decode(head + [vocab.index[t] for t in body])
    assert [(n.pitch, round(n.start / tick), round(n.end / tick)) for n in perf.notes] == [
        (38, 10, 101),
        (38, 101, 106),
        (38, 106, 109),
        (42, 108, 115),
        (40, 203, 203 + round(0.05 / tick)),
    ]


def test_bad_input_is_named(tmp_path: Path) -> None:
    vocab = Vocab()
    with pytest.raises(TokenizerError, match="missing.mid: MIDI file not found"):
        vocab.encode_midi(tmp_path / "missing.mid", "flam", "beginner")
    junk = tmp_path / "junk.mid"
    junk.write_bytes(b"not midi")
    with pytest.raises(TokenizerError, match="junk.mid: not a readable MIDI file"):
        vocab.encode_midi(junk, "flam", "beginner")
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes.append(pretty_midi.Note(velocity=80, pitch=60, start=0, end=1))
    pm.instruments.append(piano)
    with pytest.raises(TokenizerError, match="no drum track"):
        vocab.encode_midi(pm, "flam", "beginner")
    with pytest.raises(TokenizerError, match="pitch 20 outside"):
        vocab.encode_notes([Note(0, 0.1, 20, 80)], "flam", "beginner", 100)
    with pytest.raises(TokenizerError, match="unknown tier"):
        vocab.header("flam", "virtuoso", 100)
    with pytest.raises(TokenizerError, match="professional timing"):
        TokenizerConfig(ticks_per_beat=192)  # 7.8 ms ticks at 40 BPM


def test_vocab_json_round_trip_and_mismatch() -> None:
    vocab = Vocab()
    again = Vocab.from_json(vocab.to_json())
    assert again.tokens == vocab.tokens and len(vocab) == 3 + 40 + 4 + 111 + 32 + 2 * 47 + 384 + 32 + 481
    assert np.array_equal(again.kinds, vocab.kinds)
    tampered = vocab.to_json()
    tampered["tokens"] = tampered["tokens"][:-1]
    with pytest.raises(TokenizerError, match="does not match its config"):
        Vocab.from_json(tampered)
    older = vocab.to_json()
    del older["format"]  # a corpus written before onsets were grid moves and offsets
    with pytest.raises(TokenizerError, match="sequence format 1, this version reads 2"):
        Vocab.from_json(older)
    assert all(vocab.velocity_bin(vocab.bin_velocity(b)) == b for b in range(vocab.config.velocity_bins))
