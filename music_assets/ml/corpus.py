"""The token corpus: every split's performances as score-conditioned token arrays.

Built from the dataset's labels (`rudiments/labels/samples.parquet` and
`strokes.parquet`): each performance's written score is expanded from the
rudiment library (`music_assets.ml.score`) at the sample's tempo and length and
matched stroke by stroke with its labelled strokes (the labels list every
note of the MIDI file in written order, with its primary for grace notes and
bounces); a stroke's timing offset and velocity come from its label
(`actual_time_ms`, `actual_velocity`). A label that does not match the score
(another stroke kind, a missing grace note) is an error naming the sample: the
labels and the library disagree.

Layout under the corpus folder (`<data dir>/models/corpus/`):

- `vocab.json` — the tokenizer config and token list (`Vocab.to_json`);
- `scores.json` — the score template of every rudiment (`ScoreTemplate.to_dict`);
- `<split>.tokens.npy` — all sequences of the split concatenated (uint16), appended
  one performance at a time as it is tokenized (`TokenFileWriter`), so building a
  corpus of any size holds one performance, not the split's tokens;
- `<split>.index.parquet` — one row per sequence: `sample_id`, `rudiment_slug`,
  `skill_tier`, `tempo_bpm`, `beats`, `offset`, `length`, `truncated`;
- `corpus.json` — sizes, the sha256 of every file, `max_seq_len`, and each
  rudiment's timing grid (the coarsest subdivision its strokes sit on, for the
  timing measure, `timing.py`).

A performance longer than `max_seq_len` tokens keeps its first whole events
and ends with EOS (counted in `truncated`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from music_assets.io import atomic_path, read_json, sha256_file, write_json
from music_assets.ml.score import ScoreTemplate, expand, intended_seconds
from music_assets.ml.tokenizer import EVENT_LEN, HEADER_LEN, Event, TokenizerError, Vocab
from music_assets.rudiments.constants import SPLITS

REQUIRED_COLUMNS = ("sample_id", "rudiment_slug", "skill_tier", "split", "tempo_bpm", "num_cycles")
STROKE_COLUMNS = ("sample_id", "index", "stroke_type", "actual_time_ms", "actual_velocity", "parent_stroke_index")
INDEX_COLUMNS = ("sample_id", "rudiment_slug", "skill_tier", "tempo_bpm", "beats", "offset", "length", "truncated")
SCORES_FILE = "scores.json"


class CorpusError(ValueError):
    pass


def truncate(ids: list[int], vocab: Vocab, max_len: int) -> tuple[list[int], bool]:
    """Cut a sequence to at most `max_len` tokens: the header, whole events, EOS."""
    if len(ids) <= max_len:
        return ids, False
    events = (max_len - HEADER_LEN - 1) // EVENT_LEN
    if events < 1:
        raise CorpusError(f"max_seq_len {max_len} is too short to hold one event")
    return ids[: HEADER_LEN + events * EVENT_LEN] + [vocab.eos_id], True


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


def primary_label(kind: str) -> str:
    """The `stroke_type` label of a primary stroke kind (an accent wins over a diddle or a buzz)."""
    parts = kind.split("_")[1:]
    if "ACCENT" in parts:
        return "accent"
    if any(p.startswith("DIDDLE") for p in parts):
        return "diddle"
    return "buzz" if "BUZZ" in parts else "tap"


def performance_events(
    template: ScoreTemplate, tempo_bpm: float, beats: float, strokes: Mapping[str, np.ndarray], source: str
) -> list[Event]:
    """The events of one labelled performance: its score expanded, with each stroke's offset and velocity.

    `strokes` holds the performance's label columns (`index`, `stroke_type`,
    `actual_time_ms`, `actual_velocity`, `parent_stroke_index` with -1 for
    none), one row per note in index order (0, 1, ...).
    """
    n = len(strokes["index"])
    if not np.array_equal(np.asarray(strokes["index"]), np.arange(n)):
        raise CorpusError(f"{source}: stroke indices are not 0..{n - 1} in order")
    parent = np.asarray(strokes["parent_stroke_index"])
    actual = np.asarray(strokes["actual_time_ms"], dtype=float)
    velocity = np.asarray(strokes["actual_velocity"])
    labels = strokes["stroke_type"]
    kids: dict[int, list[int]] = {}
    for row in np.flatnonzero(parent >= 0).tolist():
        kids.setdefault(int(parent[row]), []).append(row)
    primaries = iter(np.flatnonzero(parent < 0).tolist())
    events: list[Event] = []
    current, queue = -1, []
    for e in expand(template, tempo_bpm, beats):
        if e.parent < 0:
            if queue:
                raise CorpusError(f"{source}: stroke {current} has more grace notes or bounces than the score")
            current = next(primaries, None)
            if current is None:
                raise CorpusError(f"{source}: the score has more primary strokes than the {n} labelled notes")
            if str(labels[current]) != primary_label(e.kind):
                raise CorpusError(f"{source}: stroke {current} is a {labels[current]}, the score has {e.kind}")
            intended_ms = 1000.0 * intended_seconds(e.step, template.steps_per_beat, tempo_bpm)
            events.append(Event(e.grid_steps, e.kind, actual[current] - intended_ms, int(velocity[current])))
            queue = list(kids.get(current, []))
        else:
            if not queue:
                raise CorpusError(f"{source}: the score has a {e.kind} after stroke {current} that the labels lack")
            row = queue.pop(0)
            if str(labels[row]) != child_label(e.kind):
                raise CorpusError(f"{source}: stroke {row} is a {labels[row]}, the score has {e.kind}")
            events.append(Event(0, e.kind, actual[row] - actual[current], int(velocity[row])))
    if queue or next(primaries, None) is not None:
        raise CorpusError(f"{source}: the labels have strokes the score does not ({n} labelled notes)")
    return events


def child_label(kind: str) -> str:
    """The `stroke_type` label of a child stroke kind (FLAM_GRACE1 -> flam_grace, BOUNCE2 -> buzz_bounce)."""
    return "buzz_bounce" if kind.startswith("BOUNCE") else kind.split("_")[0].lower() + "_grace"


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


def iter_performances(strokes_path: Path, batch_rows: int = 65_536) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """(sample_id, label columns) of each performance in `strokes.parquet`, streamed in record batches.

    A performance's rows must be contiguous (as `merge_labels` writes them); a
    sample id seen again after another is an error.
    """
    if not strokes_path.is_file():
        raise CorpusError(f"{strokes_path}: not found (materialize rudiment_labels first)")
    import pyarrow.compute as pc  # noqa: PLC0415

    try:
        pf = pq.ParquetFile(strokes_path)
        missing = [c for c in STROKE_COLUMNS if c not in pf.schema_arrow.names]
        if missing:
            raise CorpusError(f"{strokes_path}: missing columns {missing}")
        batches = pf.iter_batches(batch_size=batch_rows, columns=list(STROKE_COLUMNS))
        carry: dict[str, np.ndarray] | None = None
        seen: set[str] = set()
        for batch in batches:
            cols = {
                c: (pc.fill_null(batch.column(c), -1) if c == "parent_stroke_index" else batch.column(c)).to_numpy(
                    zero_copy_only=False
                )
                for c in STROKE_COLUMNS
            }
            if carry is not None:
                cols = {c: np.concatenate([carry[c], cols[c]]) for c in STROKE_COLUMNS}
            sid = cols["sample_id"]
            cuts = [0, *(np.flatnonzero(sid[1:] != sid[:-1]) + 1).tolist(), len(sid)]
            for a, b in zip(cuts[:-2], cuts[1:-1], strict=True):
                name = str(sid[a])
                if name in seen:
                    raise CorpusError(f"{strokes_path}: the strokes of {name} are not contiguous")
                seen.add(name)
                yield name, {c: v[a:b] for c, v in cols.items()}
            carry = {c: v[cuts[-2] :] for c, v in cols.items()}
        if carry is not None and len(carry["sample_id"]):
            yield str(carry["sample_id"][0]), carry
    except (OSError, pa.ArrowException) as exc:
        raise CorpusError(f"{strokes_path}: unreadable parquet ({exc})") from exc


def build_corpus(
    samples: pd.DataFrame,
    strokes_path: Path,
    out_dir: Path,
    vocab: Vocab,
    templates: Mapping[str, ScoreTemplate],
    max_seq_len: int,
    subdivisions: dict[str, int] | None = None,
    source: str = "samples",
    progress: Callable[..., None] | None = None,
) -> dict[str, Any]:
    """Tokenize every labelled performance of `samples` (strokes from `strokes_path`) and write the corpus.

    `progress(done, total)` (`music_assets.progress`) counts the performances tokenized.

    Streams: each performance is tokenized and appended to its split's token
    file at once, so memory holds one performance (plus a few numbers per
    sequence for the index), never a split's tokens or the strokes table.
    Every file is written under a temporary name and renamed only once every
    split is complete, so bad input leaves the previous corpus whole (and no
    folder where none was).
    """
    rows = samples[samples["split"].isin(SPLITS)]
    meta = {
        str(r.sample_id): (str(r.rudiment_slug), str(r.skill_tier), str(r.split), float(r.tempo_bpm), int(r.num_cycles))
        for r in rows.itertuples(index=False)
    }
    unknown = sorted({m[0] for m in meta.values()} - set(templates))
    if unknown:
        raise CorpusError(f"{source}: rudiments without a score template: {unknown[:5]}")
    total, done = len(meta), 0
    if progress and total:
        progress(0, total)
    created = not out_dir.exists()
    summary: dict[str, Any] = {
        "max_seq_len": max_seq_len,
        "vocab_size": len(vocab),
        "splits": {},
        "subdivisions": subdivisions or {},
        "files": {},
    }
    index: dict[str, dict[str, list]] = {s: {k: [] for k in INDEX_COLUMNS} for s in SPLITS}
    truncated = dict.fromkeys(SPLITS, 0)
    try:
        with contextlib.ExitStack() as commit:  # renames every file on success, removes them all on error
            out_dir.mkdir(parents=True, exist_ok=True)
            tok_paths = {s: out_dir / f"{s}.tokens.npy" for s in SPLITS}
            tok_tmps = {s: commit.enter_context(atomic_path(p)) for s, p in tok_paths.items()}
            handles = {s: commit.enter_context(open(tok_tmps[s], "wb")) for s in SPLITS}
            writers = {s: TokenFileWriter(handles[s]) for s in SPLITS}
            found: set[str] = set()
            for sid, strokes in iter_performances(strokes_path):
                if sid not in meta:
                    continue  # a sample outside the splits
                slug, tier, split, tempo, cycles = meta[sid]
                template = templates[slug]
                beats = cycles * template.cycle_beats
                try:
                    events = performance_events(template, tempo, beats, strokes, f"{source} sample {sid}")
                    ids = vocab.encode(events, slug, tier, tempo)
                except TokenizerError as exc:
                    raise CorpusError(f"{source} sample {sid}: {exc}") from exc
                ids, cut = truncate(ids, vocab, max_seq_len)
                w = writers[split]
                for k, v in zip(INDEX_COLUMNS, (sid, slug, tier, tempo, beats, w.size, len(ids), cut), strict=True):
                    index[split][k].append(v)
                truncated[split] += int(cut)
                w.append(ids)
                found.add(sid)
                done += 1
                if progress:
                    progress(done, total)
            missing = sorted(set(meta) - found)
            if missing:
                raise CorpusError(f"{strokes_path}: no strokes for {len(missing)} samples, e.g. {missing[0]}")
            for split in SPLITS:
                writers[split].close()
                handles[split].close()
                idx = index[split]
                table = pa.table(
                    {
                        "sample_id": pa.array(idx["sample_id"], pa.string()),
                        "rudiment_slug": pa.array(idx["rudiment_slug"], pa.string()),
                        "skill_tier": pa.array(idx["skill_tier"], pa.string()),
                        "tempo_bpm": pa.array(idx["tempo_bpm"], pa.float64()),
                        "beats": pa.array(idx["beats"], pa.int32()),
                        "offset": pa.array(idx["offset"], pa.int64()),
                        "length": pa.array(idx["length"], pa.int32()),
                        "truncated": pa.array(idx["truncated"], pa.bool_()),
                    }
                )
                idx_path = out_dir / f"{split}.index.parquet"
                idx_tmp = commit.enter_context(atomic_path(idx_path))
                pq.write_table(table, idx_tmp, compression="zstd")  # what io.write_parquet writes
                lengths = np.asarray(idx["length"], dtype=float)
                tiers = pd.Series(idx["skill_tier"], dtype=object)
                summary["splits"][split] = {
                    "sequences": len(lengths),
                    "tokens": writers[split].size,
                    "truncated": truncated[split],
                    "mean_length": float(lengths.mean()) if len(lengths) else 0.0,
                    "max_length": int(lengths.max()) if len(lengths) else 0,
                    "by_tier": {str(k): int(v) for k, v in tiers.value_counts().sort_index().items()},
                }
                summary["files"][tok_paths[split].name] = sha256_file(tok_tmps[split])
                summary["files"][idx_path.name] = sha256_file(idx_tmp)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # empty once the temporary files are gone
        raise
    write_json(out_dir / SCORES_FILE, {slug: templates[slug].to_dict() for slug in sorted(templates)})
    write_json(out_dir / "vocab.json", vocab.to_json())
    summary["files"][SCORES_FILE] = sha256_file(out_dir / SCORES_FILE)
    write_json(out_dir / "corpus.json", summary)
    return summary


@dataclass
class SplitData:
    index: pd.DataFrame
    tokens: np.ndarray  # memory-mapped

    def sequences(self, tier: str | None = None) -> list[np.ndarray]:
        rows = self.index if tier is None else self.index[self.index["skill_tier"] == tier]
        return [self.tokens[o : o + n] for o, n in zip(rows["offset"], rows["length"], strict=True)]


def read_templates(path: Path) -> dict[str, ScoreTemplate]:
    """The score templates of a corpus (or a model folder)."""
    if not path.is_file():
        raise CorpusError(f"{path}: not found (materialize token_corpus again)")
    return {slug: ScoreTemplate.from_dict(d) for slug, d in read_json(path).items()}


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
    def templates(self) -> dict[str, ScoreTemplate]:
        return read_templates(self.root / SCORES_FILE)

    @property
    def subdivisions(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.summary.get("subdivisions", {}).items()}

    @property
    def max_seq_len(self) -> int:
        return int(self.summary["max_seq_len"])
