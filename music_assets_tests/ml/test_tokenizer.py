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
def test_midi_round_trip_keeps_every_note_within_resolution_and_velocity_bin(tmp_path: Path, ticks_per_beat: int) -> None:
    samples = write_fake_dataset(tmp_path, rudiments=("flam", "single_stroke_roll"),
                                 profiles_per_tier={"train": 1, "validation": 0, "test": 0})
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


def test_grace_note_is_cut_at_its_main_stroke_and_long_gaps_use_several_shifts() -> None:
    vocab = Vocab()
    notes = [Note(0.0, 0.1, 38, 40), Note(0.03, 0.13, 38, 110), Note(1.5, 1.6, 38, 90)]
    ids = vocab.encode_notes(notes, "flam", "advanced", 121)
    toks = [vocab.tokens[i] for i in ids]
    assert toks[:4] == ["BOS", "RUDIMENT_flam", "TIER_advanced", "TEMPO_120"]
    # a tick is 1/384 beat at 120 BPM (1.30 ms): the grace note is 30 ms = 23 ticks before the main
    # stroke and is cut there (note-off before note-on)
    assert toks[4:10] == ["VELOCITY_9", "NOTE_ON_38", "TIME_SHIFT_23", "NOTE_OFF_38", "VELOCITY_27", "NOTE_ON_38"]
    assert toks[-1] == "EOS"
    shifts = [vocab.values[i] for i in ids if vocab.tokens[i].startswith("TIME_SHIFT")]
    assert max(shifts) == vocab.config.max_shift_ticks  # a 1.4 s gap (2.8 beats) spans several tokens
    assert sum(shifts) == round(1.6 / vocab.tick_seconds(120))  # to the last note-off at 1.6 s
    perf = vocab.decode(ids)
    assert perf.tempo_bpm == 120
    assert [round(n.start * 1000, 1) for n in perf.notes] == [0.0, 29.9, 1500.0]


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
    assert again.tokens == vocab.tokens and len(vocab) == 3 + 40 + 4 + 111 + 32 + 2 * 47 + 384
    assert np.array_equal(again.kinds, vocab.kinds)
    tampered = vocab.to_json()
    tampered["tokens"] = tampered["tokens"][:-1]
    with pytest.raises(TokenizerError, match="does not match its config"):
        Vocab.from_json(tampered)
    assert all(vocab.velocity_bin(vocab.bin_velocity(b)) == b for b in range(vocab.config.velocity_bins))
