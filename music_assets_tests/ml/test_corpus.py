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
