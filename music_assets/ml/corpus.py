"""The token corpus: every split's MIDI as memory-mappable token arrays.

Layout under the corpus folder (`<data dir>/models/corpus/`):

- `vocab.json` — the tokenizer config and token list (`Vocab.to_json`);
- `<split>.tokens.npy` — all sequences of the split concatenated (uint16), appended
  one performance at a time as it is tokenized (`TokenFileWriter`), so building a
  corpus of any size holds one sequence, not the split's tokens;
- `<split>.index.parquet` — one row per sequence: `sample_id`, `rudiment_slug`,
  `skill_tier`, `tempo_bpm`, `offset`, `length`, `truncated`;
- `corpus.json` — sizes, the sha256 of every file, `max_seq_len`, and the
  grid subdivision of each rudiment (for the timing measure, `timing.py`).

A performance longer than `max_seq_len` tokens is cut at the last point where
no note is open and closed with EOS (counted in `truncated`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from music_assets.io import atomic_path, read_json, sha256_file, write_json
from music_assets.ml.tokenizer import KIND_NAMES, TokenizerError, Vocab, read_drum_midi
from music_assets.rudiments.constants import SPLITS

REQUIRED_COLUMNS = ("sample_id", "rudiment_slug", "skill_tier", "split", "midi_path")
INDEX_COLUMNS = ("sample_id", "rudiment_slug", "skill_tier", "tempo_bpm", "offset", "length", "truncated")
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


class TokenFileWriter:
    """Appends token sequences to a `.npy` file (uint16, one dimension) without holding them.

    The header is written first with a zero length and rewritten with the real
    length when the file is closed: numpy pads the header so that its length
    does not depend on the shape (`np.lib.format`, room for 21 digits), so the
    bytes are exactly those `np.save` writes for the concatenated array.
    """

    DTYPE = np.dtype(np.uint16)

    def __init__(self, fh: BinaryIO):
        self.fh = fh
        self.size = 0
        self._start = fh.tell()
        self._header_len = self._write_header(0)

    def _write_header(self, n: int) -> int:
        before = self.fh.tell()
        header = {"descr": np.lib.format.dtype_to_descr(self.DTYPE), "fortran_order": False, "shape": (n,)}
        np.lib.format.write_array_header_1_0(self.fh, header)
        return self.fh.tell() - before

    def append(self, ids: Sequence[int] | np.ndarray) -> None:
        arr = np.asarray(ids, dtype=self.DTYPE)
        self.fh.write(arr.tobytes())
        self.size += int(arr.size)

    def close(self) -> None:
        end = self.fh.tell()
        self.fh.seek(self._start)
        if self._write_header(self.size) != self._header_len:  # pragma: no cover - numpy pads headers
            raise CorpusError(f"{self.fh.name}: the .npy header changed length; cannot finish it in place")
        self.fh.seek(end)


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

    Streams: each performance is tokenized and appended to its split's token
    file at once, so memory holds one sequence (plus a few numbers per
    sequence for the index), never the split's tokens. Every file is written
    under a temporary name and renamed only once every split is complete, so
    bad input leaves the previous corpus whole (and no folder where none was).
    """
    created = not out_dir.exists()
    total, done = int(samples["split"].isin(SPLITS).sum()), 0
    if progress and total:
        progress(0, total)
    summary: dict[str, Any] = {
        "max_seq_len": max_seq_len,
        "vocab_size": len(vocab),
        "splits": {},
        "subdivisions": subdivisions or {},
        "files": {},
    }
    try:
        with contextlib.ExitStack() as commit:  # renames every file on success, removes them all on error
            for split in SPLITS:
                rows = samples[samples["split"] == split].sort_values("sample_id", kind="stable")
                tok_path, idx_path = out_dir / f"{split}.tokens.npy", out_dir / f"{split}.index.parquet"
                tok_tmp = commit.enter_context(atomic_path(tok_path))
                index: dict[str, list] = {k: [] for k in INDEX_COLUMNS}
                truncated = 0
                with open(tok_tmp, "wb") as fh:
                    tokens = TokenFileWriter(fh)
                    for r in rows.itertuples(index=False):
                        midi = data_root / str(r.midi_path)
                        try:
                            notes, tempo = read_drum_midi(midi)
                            ids = vocab.encode_notes(
                                notes, str(r.rudiment_slug), str(r.skill_tier), tempo, source=str(midi)
                            )
                        except TokenizerError as exc:
                            raise CorpusError(f"{source} row {r.sample_id}: {exc}") from exc
                        ids, cut = truncate(ids, vocab, max_seq_len)
                        for k, v in (
                            ("sample_id", r.sample_id),
                            ("rudiment_slug", r.rudiment_slug),
                            ("skill_tier", r.skill_tier),
                            ("tempo_bpm", tempo),
                            ("offset", tokens.size),
                            ("length", len(ids)),
                            ("truncated", cut),
                        ):
                            index[k].append(v)
                        truncated += int(cut)
                        tokens.append(ids)
                        done += 1
                        if progress:
                            progress(done, total)
                    tokens.close()
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
                idx_tmp = commit.enter_context(atomic_path(idx_path))
                pq.write_table(table, idx_tmp, compression="zstd")  # what io.write_parquet writes
                lengths = np.asarray(index["length"], dtype=float)
                summary["splits"][split] = {
                    "sequences": len(lengths),
                    "tokens": tokens.size,
                    "truncated": truncated,
                    "mean_length": float(lengths.mean()) if len(lengths) else 0.0,
                    "max_length": int(lengths.max()) if len(lengths) else 0,
                    "by_tier": {str(k): int(v) for k, v in rows["skill_tier"].value_counts().sort_index().items()},
                }
                summary["files"][tok_path.name] = sha256_file(tok_tmp)
                summary["files"][idx_path.name] = sha256_file(idx_tmp)
                del index, table
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # empty once the temporary files are gone
        raise
    write_json(out_dir / "vocab.json", vocab.to_json())
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
