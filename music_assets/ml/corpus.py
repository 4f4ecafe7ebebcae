"""The token corpus: every split's MIDI as memory-mappable token arrays.

Layout under the corpus folder (`<data dir>/models/corpus/`):

- `vocab.json` — the tokenizer config and token list (`Vocab.to_json`);
- `<split>.tokens.npy` — all sequences of the split concatenated (uint16);
- `<split>.index.parquet` — one row per sequence: `sample_id`, `rudiment_slug`,
  `skill_tier`, `tempo_bpm`, `offset`, `length`, `truncated`;
- `corpus.json` — sizes, the sha256 of every file, `max_seq_len`, and the
  grid subdivision of each rudiment (for the timing measure, `timing.py`).

A performance longer than `max_seq_len` tokens is cut at the last point where
no note is open and closed with EOS (counted in `truncated`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from music_assets.io import atomic_open, read_json, sha256_file, write_json, write_parquet
from music_assets.ml.tokenizer import KIND_NAMES, TokenizerError, Vocab, read_drum_midi
from music_assets.rudiments.constants import SPLITS

REQUIRED_COLUMNS = ("sample_id", "rudiment_slug", "skill_tier", "split", "midi_path")
_NOTE_ON, _NOTE_OFF = KIND_NAMES.index("NOTE_ON"), KIND_NAMES.index("NOTE_OFF")


class CorpusError(ValueError):
    pass


def truncate(ids: list[int], vocab: Vocab, max_len: int) -> tuple[list[int], bool]:
    """Cut a sequence to at most `max_len` tokens at a point with no open note, ending in EOS."""
    if len(ids) <= max_len:
        return ids, False
    kinds = vocab.kinds
    open_notes = 0
    cut = None
    for i, t in enumerate(ids[: max_len - 1]):
        k = int(kinds[t])
        open_notes += int(k == _NOTE_ON) - int(k == _NOTE_OFF)
        if k == _NOTE_OFF and open_notes == 0:
            cut = i + 1
    if cut is None:
        raise CorpusError(f"max_seq_len {max_len} is too short to hold one whole note")
    return ids[:cut] + [vocab.eos_id], True


def read_samples(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise CorpusError(f"{path}: not found (materialize rudiment_labels first)")
    df = pd.read_parquet(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise CorpusError(f"{path}: missing columns {missing}")
    bad = sorted(set(df["split"]) - set(SPLITS))
    if bad:
        raise CorpusError(f"{path}: unknown split values {bad}")
    return df


def build_corpus(
    samples: pd.DataFrame,
    data_root: Path,
    out_dir: Path,
    vocab: Vocab,
    max_seq_len: int,
    subdivisions: dict[str, int] | None = None,
    source: str = "samples",
    progress: Callable[..., None] | None = None,
) -> dict[str, Any]:
    """Tokenize every sample's MIDI (`midi_path` relative to `data_root`) and write the corpus.

    `progress(done, total)` (`music_assets.progress`) counts the MIDI files tokenized.
    """
    # tokenize everything before writing anything: bad input leaves the previous corpus whole
    tokenized: dict[str, tuple[pd.DataFrame, list[np.ndarray], dict[str, list]]] = {}
    total, done = int(samples["split"].isin(SPLITS).sum()), 0
    if progress and total:
        progress(0, total)
    for split in SPLITS:
        rows = samples[samples["split"] == split].sort_values("sample_id", kind="stable")
        seqs: list[np.ndarray] = []
        index: dict[str, list] = {
            k: [] for k in ("sample_id", "rudiment_slug", "skill_tier", "tempo_bpm", "offset", "length", "truncated")
        }
        offset = 0
        for r in rows.itertuples(index=False):
            midi = data_root / str(r.midi_path)
            try:
                notes, tempo = read_drum_midi(midi)
                ids = vocab.encode_notes(notes, str(r.rudiment_slug), str(r.skill_tier), tempo, source=str(midi))
            except TokenizerError as exc:
                raise CorpusError(f"{source} row {r.sample_id}: {exc}") from exc
            ids, cut = truncate(ids, vocab, max_seq_len)
            seqs.append(np.asarray(ids, dtype=np.uint16))
            for k, v in (
                ("sample_id", r.sample_id),
                ("rudiment_slug", r.rudiment_slug),
                ("skill_tier", r.skill_tier),
                ("tempo_bpm", tempo),
                ("offset", offset),
                ("length", len(ids)),
                ("truncated", cut),
            ):
                index[k].append(v)
            offset += len(ids)
            done += 1
            if progress:
                progress(done, total)
        tokenized[split] = (rows, seqs, index)

    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "max_seq_len": max_seq_len,
        "vocab_size": len(vocab),
        "splits": {},
        "subdivisions": subdivisions or {},
        "files": {},
    }
    write_json(out_dir / "vocab.json", vocab.to_json())
    for split, (rows, seqs, index) in tokenized.items():
        flat = np.concatenate(seqs) if seqs else np.zeros(0, dtype=np.uint16)
        tok_path = out_dir / f"{split}.tokens.npy"
        with atomic_open(tok_path, "wb") as fh:
            np.save(fh, flat, allow_pickle=False)
        table = pa.table(
            {
                "sample_id": pa.array(index["sample_id"], pa.string()),
                "rudiment_slug": pa.array(index["rudiment_slug"], pa.string()),
                "skill_tier": pa.array(index["skill_tier"], pa.string()),
                "tempo_bpm": pa.array(index["tempo_bpm"], pa.float64()),
                "offset": pa.array(index["offset"], pa.int64()),
                "length": pa.array(index["length"], pa.int32()),
                "truncated": pa.array(index["truncated"], pa.bool_()),
            }
        )
        idx_path = out_dir / f"{split}.index.parquet"
        write_parquet(idx_path, table)
        lengths = np.asarray(index["length"], dtype=float)
        summary["splits"][split] = {
            "sequences": len(seqs),
            "tokens": int(flat.size),
            "truncated": int(sum(index["truncated"])),
            "mean_length": float(lengths.mean()) if len(lengths) else 0.0,
            "max_length": int(lengths.max()) if len(lengths) else 0,
            "by_tier": {str(k): int(v) for k, v in rows["skill_tier"].value_counts().sort_index().items()},
        }
        summary["files"][tok_path.name] = sha256_file(tok_path)
        summary["files"][idx_path.name] = sha256_file(idx_path)
    write_json(out_dir / "corpus.json", summary)
    return summary


@dataclass
class SplitData:
    index: pd.DataFrame
    tokens: np.ndarray  # memory-mapped

    def sequences(self, tier: str | None = None) -> list[np.ndarray]:
        rows = self.index if tier is None else self.index[self.index["skill_tier"] == tier]
        return [self.tokens[o : o + n] for o, n in zip(rows["offset"], rows["length"], strict=True)]


class Corpus:
    """Read side of the corpus folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        meta = self.root / "corpus.json"
        if not meta.is_file():
            raise CorpusError(f"{meta}: not found (materialize token_corpus first)")
        self.summary: dict[str, Any] = read_json(meta)
        self.vocab = Vocab.from_json(read_json(self.root / "vocab.json"), source=str(self.root / "vocab.json"))

    def split(self, name: str) -> SplitData:
        tok = self.root / f"{name}.tokens.npy"
        idx = self.root / f"{name}.index.parquet"
        for p in (tok, idx):
            if not p.is_file():
                raise CorpusError(f"{p}: missing from the corpus")
        return SplitData(pd.read_parquet(idx), np.load(tok, mmap_mode="r", allow_pickle=False))

    @property
    def subdivisions(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.summary.get("subdivisions", {}).items()}

    @property
    def max_seq_len(self) -> int:
        return int(self.summary["max_seq_len"])
