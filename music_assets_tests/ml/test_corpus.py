"""The token corpus: built from the labels, the score matched stroke by stroke, memory-mapped arrays, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from music_assets.io import read_json
from music_assets.ml.corpus import Corpus, CorpusError, build_corpus, read_samples, truncate
from music_assets.ml.grammar import grammar_score
from music_assets.ml.score import library_templates
from music_assets.ml.tokenizer import EVENT_LEN, HEADER_LEN, TokenizerConfig, Vocab, read_drum_midi
from music_assets.rudiments.constants import SKILL_TIERS
from music_assets_tests.ml.conftest import corpus_from_labels
from music_assets_tests.ml.fake_dataset import write_fake_dataset

TEMPLATES = library_templates()


def _vocab() -> Vocab:
    return Vocab(TokenizerConfig.with_grid({s: t.steps_per_beat for s, t in TEMPLATES.items()}))


def test_corpus_layout(tiny_corpus: Path) -> None:
    corpus = Corpus(tiny_corpus)
    summary = read_json(tiny_corpus / "corpus.json")
    assert summary["splits"]["train"]["by_tier"] == dict.fromkeys(sorted(SKILL_TIERS), 4)  # 1 player x 4 rudiments
    assert corpus.subdivisions["swiss_army_triplet"] == 3 and corpus.subdivisions["single_stroke_roll"] == 4
    assert corpus.templates["flam"] == TEMPLATES["flam"]
    train = corpus.split("train")
    assert isinstance(train.tokens, np.memmap) and train.tokens.dtype == np.uint16
    assert len(train.sequences()) == 16 and len(train.sequences("beginner")) == 4
    for seq in train.sequences():
        assert seq[0] == corpus.vocab.bos_id and seq[-1] == corpus.vocab.eos_id
        assert (len(seq) - HEADER_LEN - 1) % EVENT_LEN == 0 and grammar_score(seq, corpus.vocab) == 1.0
    assert list(train.index.columns) == [
        "sample_id",
        "rudiment_slug",
        "skill_tier",
        "tempo_bpm",
        "beats",
        "offset",
        "length",
        "truncated",
    ]
    assert train.index["sample_id"].is_unique


def test_every_sequence_decodes_to_its_midi_file(tiny_corpus: Path) -> None:
    """The tokens hold the performance: each note of the MIDI file, to the offset and velocity resolution."""
    corpus = Corpus(tiny_corpus)
    root = tiny_corpus.parent.parent
    samples = read_samples(root / "rudiments/labels/samples.parquet").set_index("sample_id")
    for split in ("train", "test"):
        data = corpus.split(split)
        for (sid, tempo), seq in zip(
            data.index[["sample_id", "tempo_bpm"]].itertuples(index=False), data.sequences(), strict=True
        ):
            notes, _ = read_drum_midi(root / samples.loc[sid, "midi_path"])
            notes.sort(key=lambda n: n.start)
            perf = corpus.vocab.decode(seq, tempo_bpm=tempo)
            assert len(perf.notes) == len(notes), sid
            assert np.abs(np.array([n.start for n in perf.notes]) - [n.start for n in notes]).max() < 0.0021
            assert np.abs(np.array([n.velocity for n in perf.notes]) - [n.velocity for n in notes]).max() <= 2
            assert perf.rudiment == samples.loc[sid, "rudiment_slug"] and perf.tier == samples.loc[sid, "skill_tier"]


def test_truncation_keeps_whole_events() -> None:
    vocab = _vocab()
    ids = vocab.header("flam", "advanced", 120) + [vocab.index["GRID_1"], vocab.index["STROKE_R"], 500, 700] * 30
    ids.append(vocab.eos_id)
    cut, was_cut = truncate(ids, vocab, 50)
    assert was_cut and len(cut) <= 50 and cut[-1] == vocab.eos_id and (len(cut) - HEADER_LEN - 1) % EVENT_LEN == 0
    assert truncate(ids, vocab, len(ids)) == (ids, False)


def test_streamed_tokens_are_the_concatenated_sequences(tmp_path: Path) -> None:
    """The token files are byte for byte what np.save writes for the split's sequences encoded one by one."""
    import io

    from music_assets.ml.corpus import iter_performances, performance_events

    samples = write_fake_dataset(tmp_path, rudiments=("flam", "multiple_bounce_roll")).set_index("sample_id")
    corpus = corpus_from_labels(tmp_path, max_seq_len=64)  # short: some are cut
    summary = read_json(corpus / "corpus.json")
    assert sum(s["truncated"] for s in summary["splits"].values()) > 0
    vocab = Corpus(corpus).vocab
    expected: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
    for sid, strokes in iter_performances(tmp_path / "rudiments/labels/strokes.parquet", batch_rows=7):
        r = samples.loc[sid]
        t = TEMPLATES[r["rudiment_slug"]]
        events = performance_events(t, r["tempo_bpm"], r["num_cycles"] * t.cycle_beats, strokes, sid)
        ids, _ = truncate(vocab.encode(events, r["rudiment_slug"], r["skill_tier"], r["tempo_bpm"]), vocab, 64)
        expected[r["split"]].append(np.asarray(ids, dtype=np.uint16))
    for split, seqs in expected.items():
        buf = io.BytesIO()
        np.save(buf, np.concatenate(seqs))
        assert (corpus / f"{split}.tokens.npy").read_bytes() == buf.getvalue()
        d = Corpus(corpus).split(split)
        assert int(d.index["length"].sum()) == d.tokens.size == summary["splits"][split]["tokens"]


def test_labels_that_disagree_with_the_score_name_the_sample(tmp_path: Path) -> None:
    samples = write_fake_dataset(tmp_path, rudiments=("flam", "single_stroke_roll"))
    labels = tmp_path / "rudiments/labels"
    pd.DataFrame({"sample_id": ["x"]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(CorpusError, match="bad.parquet: missing columns"):
        read_samples(tmp_path / "bad.parquet")
    with pytest.raises(CorpusError, match="materialize rudiment_labels first"):
        read_samples(tmp_path / "nothing.parquet")
    out = corpus_from_labels(tmp_path)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    strokes = pd.read_parquet(labels / "strokes.parquet")
    # the last test performance of flam loses its last grace note: the labels no longer match the score
    victim = samples[(samples["split"] == "test") & (samples["rudiment_slug"] == "flam")]["sample_id"].iloc[-1]
    graces = strokes.index[(strokes["sample_id"] == victim) & (strokes["stroke_type"] == "flam_grace")]
    strokes.drop(index=graces[-1:]).to_parquet(labels / "strokes.parquet")
    with pytest.raises(CorpusError, match=f"{victim}: .*(labels lack|indices)"):
        build_corpus(samples, labels / "strokes.parquet", out, _vocab(), TEMPLATES, 512)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing half-written, nothing replaced
    # another kind of stroke than the score's
    strokes = pd.read_parquet(labels / "strokes.parquet")
    first = strokes.index[(strokes["sample_id"] != victim) & (strokes["stroke_type"] == "tap")][0]
    strokes.loc[first, "stroke_type"] = "accent"
    strokes.to_parquet(labels / "strokes.parquet")
    with pytest.raises(CorpusError, match=f"{strokes.loc[first, 'sample_id']}: stroke .* is a accent"):
        build_corpus(samples, labels / "strokes.parquet", tmp_path / "other", _vocab(), TEMPLATES, 512)
    assert not (tmp_path / "other").exists()


def test_token_writer_appends_in_place(tmp_path: Path) -> None:
    from music_assets.ml.corpus import TokenFileWriter

    rng = np.random.default_rng(0)
    chunks = [rng.integers(0, 2**16, size=int(n), dtype=np.uint16) for n in rng.integers(0, 5000, size=300)]
    path = tmp_path / "t.npy"
    with open(path, "wb") as fh:
        w = TokenFileWriter(fh)
        for c in chunks:
            w.append(c)
        w.close()
    loaded = np.load(path, mmap_mode="r")
    assert isinstance(loaded, np.memmap) and loaded.shape == (sum(len(c) for c in chunks),)
    assert np.array_equal(loaded, np.concatenate(chunks))
    np.save(tmp_path / "ref.npy", np.concatenate(chunks))
    assert path.read_bytes() == (tmp_path / "ref.npy").read_bytes()
