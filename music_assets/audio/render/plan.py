"""Planning a partition's renders: one `RenderJob` per performance, its soundfont and preset dealt by hash.

Reads `<data>/rudiments/performances/<slug>/{samples,strokes}.parquet` (checked
now, so bad input fails before anything renders) and makes the jobs lazily as
they are drawn: a partition's arrays are held, never a partition's jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from music_assets import layout
from music_assets.audio.presets import Bed, get_preset
from music_assets.audio.synthesis import DEFAULT_SAMPLE_RATE
from music_assets.seeding import stable_seed

TAIL_SEC = 1.0  # release tail after the last note-off: the snare has decayed by > 60 dB
SAMPLE_RATE = DEFAULT_SAMPLE_RATE
SUBTYPE = "PCM_24"
DEFAULT_CHANNELS = 1


class RenderError(RuntimeError):
    pass


@dataclass(frozen=True, eq=False)
class RenderJob:
    """Everything a worker needs to render one sample (picklable).

    The stroke times and velocities are float64 arrays rather than tuples of floats: a long
    run keeps up to `RenderPool.max_pending` jobs queued, and a tuple costs four times the memory.
    """

    sample_id: str
    midi_path: str  # absolute
    audio_path: str  # absolute
    audio_rel: str  # relative to the data dir, POSIX
    soundfont: str  # absolute
    preset: str
    seed: int
    stroke_ms: np.ndarray  # labelled primary stroke times (not grace notes, not buzz bounces)
    stroke_velocity: np.ndarray
    note_ms: np.ndarray  # every labelled stroke, grace notes included
    beds: tuple[Bed, ...] = field(default=())
    channels: int = DEFAULT_CHANNELS


def assign_variants(
    sample_ids: Sequence[str], n_soundfonts: int, presets: Sequence[str], seed: int, salt: str = ""
) -> dict[str, tuple[int, str]]:
    """sample_id -> (soundfont index, preset): hash order dealt round-robin over the combinations.

    Soundfonts alternate fastest, so the first few samples of a partition
    already cover every soundfont; each full round covers every pair once.
    """
    if n_soundfonts < 1 or not presets:
        raise RenderError("at least one soundfont and one augmentation preset are needed")
    ordered = sorted(sample_ids, key=lambda s: (stable_seed("variant", s, seed), s))
    combos = [(sf_i, p) for p in presets for sf_i in range(n_soundfonts)]
    start = stable_seed("variant-start", salt, seed) % len(combos)
    return {s: combos[(start + i) % len(combos)] for i, s in enumerate(ordered)}


def read_arrow(path: Path, columns: Sequence[str], dictionary: Sequence[str] = ()):
    """The columns of a partition table as an arrow Table; `dictionary` columns are read
    dictionary-encoded (one dictionary for the whole table)."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    if not path.is_file():
        raise RenderError(f"{path}: missing; materialize rudiment_performances for this rudiment first")
    try:
        names = pq.read_schema(path).names
        missing = [c for c in columns if c not in names]
        table = None if missing else pq.read_table(path, columns=list(columns), read_dictionary=list(dictionary))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for bad files
        raise RenderError(f"{path}: not a readable parquet file: {exc}") from exc
    if missing:
        raise RenderError(f"{path}: missing column(s) {', '.join(missing)}")
    return table.unify_dictionaries() if dictionary else table


def read_table(path: Path, columns: Sequence[str]):
    return read_arrow(path, columns).to_pandas()


class PlannedPartition:
    """A partition's render jobs: its job count now, the jobs made one by one as they are iterated
    (a partition's arrays are held, not its jobs; each iteration makes them afresh)."""

    def __init__(self, count: int, make: Callable[[], Iterator[RenderJob]]):
        self._count = count
        self._make = make

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[RenderJob]:
        return self._make()


def plan_partition(
    slug: str,
    data: Path,
    soundfonts: Sequence[Path],
    presets: Sequence[str],
    seed: int,
    beds: Sequence[Bed] = (),
    channels: int = DEFAULT_CHANNELS,
) -> PlannedPartition:
    """One job per performance of `slug`, from its samples and strokes tables (read and checked
    now; the jobs are made as they are drawn)."""
    if channels not in (1, 2):
        raise RenderError(f"channels must be 1 (mono) or 2 (stereo), not {channels}")
    perf = layout.performance_dir(slug, data)
    samples = read_table(perf / "samples.parquet", ["sample_id", "midi_path"])
    # sample ids dictionary-encoded: a full-preset partition has 250,000 strokes, and a
    # Python string per stroke would make planning's memory grow with the partition
    strokes_path = perf / "strokes.parquet"
    strokes = read_arrow(
        strokes_path,
        ["sample_id", "actual_time_ms", "actual_velocity", "is_grace", "parent_stroke_index"],
        dictionary=["sample_id"],
    )
    stroke_ids = strokes.column("sample_id").combine_chunks()
    if stroke_ids.null_count:
        raise RenderError(f"{strokes_path}: {stroke_ids.null_count} stroke(s) without a sample_id")
    if samples["sample_id"].duplicated().any():
        dup = samples.loc[samples["sample_id"].duplicated(), "sample_id"].iloc[0]
        raise RenderError(f"{perf / 'samples.parquet'}: duplicate sample_id {dup}")
    for p in presets:
        get_preset(p)
    variants = assign_variants(list(samples["sample_id"]), len(soundfonts), presets, seed, salt=slug)

    def column(name: str, fill: object) -> np.ndarray:
        return strokes.column(name).fill_null(fill).to_numpy()

    # measured: the primary strokes, neither grace notes nor buzz bounces (a bounce is the
    # child of a primary 26 ms before it, under whose decay its attack does not show)
    primary = ~column("is_grace", False).astype(bool) & ~(column("parent_stroke_index", -1) >= 0)
    times = column("actual_time_ms", np.nan).astype(np.float64)
    velocity = column("actual_velocity", 100).astype(np.float64)
    codes = stroke_ids.indices.to_numpy()
    order = np.argsort(codes, kind="stable")
    ends = np.cumsum(np.bincount(codes, minlength=len(stroke_ids.dictionary)))
    bounds = {
        sid: (int(end - count), int(end))
        for sid, end, count in zip(stroke_ids.dictionary.to_pylist(), ends, np.diff(ends, prepend=0), strict=True)
        if count
    }
    out_dir = layout.audio_dir(slug, data)
    pairs = list(zip(samples["sample_id"].astype(str), samples["midi_path"], strict=True))
    for sid, _ in pairs:
        if sid not in bounds:
            raise RenderError(f"{perf / 'strokes.parquet'}: no strokes for sample {sid}")

    fonts = [str(f) for f in soundfonts]  # one string per soundfont, shared by its jobs

    def jobs() -> Iterator[RenderJob]:
        for sid, midi_rel in pairs:
            rows = order[slice(*bounds[sid])]
            main = rows[primary[rows]]
            sf_i, preset = variants[sid]
            yield RenderJob(
                sample_id=sid,
                midi_path=str(data / midi_rel),
                audio_path=str(out_dir / f"{sid}.flac"),
                audio_rel=layout.audio_relpath(slug, sid),
                soundfont=fonts[sf_i],
                preset=preset,
                seed=int(seed),
                stroke_ms=times[main],
                stroke_velocity=velocity[main],
                note_ms=times[rows],
                beds=tuple(beds),
                channels=channels,
            )

    return PlannedPartition(len(pairs), jobs)
