"""The token corpus: memory-mapped arrays, index, truncation, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from music_assets.io import read_json
from music_assets.ml.corpus import Corpus, CorpusError, build_corpus, read_samples, truncate
from music_assets.ml.grammar import grammar_score
from music_assets.ml.tokenizer import Note, Vocab
from music_assets.rudiments.constants import SKILL_TIERS
from music_assets_tests.ml.fake_dataset import write_fake_dataset


def test_corpus_layout(tiny_corpus: Path) -> None:
    corpus = Corpus(tiny_corpus)
    summary = read_json(tiny_corpus / "corpus.json")
    assert summary["splits"]["train"]["by_tier"] == dict.fromkeys(sorted(SKILL_TIERS), 8)
    assert corpus.subdivisions["swiss_army_triplet"] == 3 and corpus.subdivisions["single_stroke_roll"] == 4
    train = corpus.split("train")
    assert isinstance(train.tokens, np.memmap) and train.tokens.dtype == np.uint16
    assert len(train.sequences()) == 32 and len(train.sequences("beginner")) == 8
    seq = train.sequences()[0]
    assert seq[0] == corpus.vocab.bos_id and seq[-1] == corpus.vocab.eos_id
    assert all(grammar_score(s, corpus.vocab) == 1.0 for s in train.sequences())
    assert list(train.index.columns) == [
        "sample_id",
        "rudiment_slug",
        "skill_tier",
        "tempo_bpm",
        "offset",
        "length",
        "truncated",
    ]
    assert train.index["sample_id"].is_unique


def test_truncation_cuts_between_notes() -> None:
    vocab = Vocab()
    ids = vocab.encode_notes([Note(i * 0.1, i * 0.1 + 0.05, 38, 80) for i in range(30)], "flam", "advanced", 120)
    cut, was_cut = truncate(ids, vocab, 50)
    assert was_cut and len(cut) <= 50 and cut[-1] == vocab.eos_id
    assert grammar_score(cut, vocab) == 1.0
    assert truncate(ids, vocab, len(ids)) == (ids, False)


def test_bad_input_names_the_file(tmp_path: Path) -> None:
    samples = write_fake_dataset(
        tmp_path, rudiments=("flam",), profiles_per_tier={"train": 1, "validation": 1, "test": 0}
    )
    path = tmp_path / "rudiments/labels/samples.parquet"
    pd.DataFrame({"sample_id": ["x"]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(CorpusError, match="bad.parquet: missing columns"):
        read_samples(tmp_path / "bad.parquet")
    with pytest.raises(CorpusError, match="materialize rudiment_labels first"):
        read_samples(tmp_path / "nothing.parquet")
    broken = samples.copy()
    victim = broken.loc[3, "midi_path"]
    (tmp_path / victim).write_bytes(b"garbage")
    with pytest.raises(CorpusError, match=f"{broken.loc[3, 'sample_id']}: .*{Path(victim).name}: not a readable MIDI"):
        build_corpus(broken, tmp_path, tmp_path / "corpus", Vocab(), 512)
    assert not (tmp_path / "corpus").exists()  # nothing half-written
    assert len(read_samples(path)) == len(samples)


def _expected_tokens(samples: pd.DataFrame, root: Path, vocab: Vocab, split: str, max_len: int) -> bytes:
    """What np.save writes for the split's sequences, tokenized here one by one."""
    import io

    from music_assets.ml.tokenizer import read_drum_midi

    seqs = []
    for r in samples[samples["split"] == split].sort_values("sample_id").itertuples():
        notes, tempo = read_drum_midi(root / r.midi_path)
        ids, _ = truncate(vocab.encode_notes(notes, r.rudiment_slug, r.skill_tier, tempo), vocab, max_len)
        seqs.append(np.asarray(ids, dtype=np.uint16))
    buf = io.BytesIO()
    np.save(buf, np.concatenate(seqs))
    return buf.getvalue()


def test_streamed_tokens_are_the_concatenated_sequences(tmp_path: Path) -> None:
    samples = write_fake_dataset(tmp_path, rudiments=("flam", "single_paradiddle"))
    vocab = Vocab()
    summary = build_corpus(samples, tmp_path, tmp_path / "corpus", vocab, 64)  # short: some are cut
    assert sum(s["truncated"] for s in summary["splits"].values()) > 0
    for split in ("train", "validation", "test"):
        written = (tmp_path / "corpus" / f"{split}.tokens.npy").read_bytes()
        assert written == _expected_tokens(samples, tmp_path, vocab, split, 64)
        data = Corpus(tmp_path / "corpus").split(split)
        assert int(data.index["length"].sum()) == data.tokens.size == summary["splits"][split]["tokens"]


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


def test_bad_input_keeps_the_previous_corpus(tmp_path: Path) -> None:
    samples = write_fake_dataset(tmp_path, rudiments=("flam",))
    out = tmp_path / "corpus"
    build_corpus(samples, tmp_path, out, Vocab(), 512)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    broken = samples.copy()
    # a bad file late in the last split: the earlier splits were already streamed to temporary files
    victim = broken[broken["split"] == "test"].sort_values("sample_id")["midi_path"].iloc[-1]
    (tmp_path / victim).write_bytes(b"garbage")
    with pytest.raises(CorpusError, match="not a readable MIDI"):
        build_corpus(broken, tmp_path, out, Vocab(), 512)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no partial file, nothing replaced
