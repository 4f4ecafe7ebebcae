"""Rendering rudiment performances to augmented FLAC, and the audio quality gates.

Inputs are the per-rudiment performance tables and MIDI files written by
`rudiment_performances` (see CONTRACTS.md); outputs are
`<data>/rudiments/audio/<slug>/<sample_id>.flac` (44.1 kHz, 24-bit, mono by
default or stereo (`channels`), `duration_sec + TAIL_SEC` long, audio time 0 =
MIDI time 0) and `<data>/rudiments/performances/<slug>/audio.parquet`.

Mono is the default: a General MIDI snare is (nearly) centred, so stereo
carries little more than the room's width, and it doubles the cost of the
augmentation chain and of FLAC encoding and the size of the dataset.

Every sample is rendered dry with FluidSynth (`synthesis.get_renderer`: one
synth per soundfont per process), the dry render's onsets are matched with
the labelled stroke times (`onsets`), then the augmentation chain
(`effects`) colours it and the result is written atomically. Samples are
spread over a process pool (`RenderPool`) with one worker per core, forked
from a server that imported the rendering code once (`render_preload`); each
worker caps BLAS/OpenMP threads to one, and loads each soundfont (and
measures its onset latency) once.

Which soundfont and preset a sample gets is fixed by a stable hash of its id
and the seed: the samples of a partition are ordered by that hash and dealt
round-robin over soundfont x preset (starting at a hash of the rudiment), so
every combination is used equally often. Every augmentation parameter is
drawn from `stable_rng(sample_id, seed, "augment")`. The same inputs and
configuration therefore give byte-identical FLAC files in any process and
order.
"""

from __future__ import annotations

import collections
import itertools
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from music_assets.audio import effects, onsets
from music_assets.audio.presets import PRESET_NAMES, Bed, draw_params, get_preset
from music_assets.audio.synthesis import DEFAULT_SAMPLE_RATE, DEFAULT_SOUNDFONTS, get_renderer, midi_to_events
from music_assets.seeding import stable_rng, stable_seed

TAIL_SEC = 1.0  # release tail after the last note-off: the snare has decayed by > 60 dB
SAMPLE_RATE = DEFAULT_SAMPLE_RATE
SUBTYPE = "PCM_24"
DEFAULT_CHANNELS = 1

# gate thresholds (the acceptance limits)
DURATION_TOLERANCE_SEC = 0.050
MAX_CLIPPED_RATIO = 0.001
SILENCE_DBFS = -60.0  # a file whose peak stays below this is silent
MAX_ALIGN_MEDIAN_MS = 5.0
CLIP_LEVEL = (2**23 - 2**8) << 8  # int32 PCM: within 256 LSB of 24-bit full scale counts as clipped
FLAC_COMPRESSION = 0.125  # libFLAC level 1 of 8: twice as fast as the default, files about 8 % larger

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


class RenderError(RuntimeError):
    pass


def audio_dir(data: Path, slug: str) -> Path:
    return data / "rudiments" / "audio" / slug


def performances_dir(data: Path, slug: str) -> Path:
    return data / "rudiments" / "performances" / slug


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


# ---------------------------------------------------------------- planning


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


def _read_arrow(path: Path, columns: Sequence[str], dictionary: Sequence[str] = ()):
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


def _read_table(path: Path, columns: Sequence[str]):
    return _read_arrow(path, columns).to_pandas()


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
    perf = performances_dir(data, slug)
    samples = _read_table(perf / "samples.parquet", ["sample_id", "midi_path"])
    # sample ids dictionary-encoded: a full-preset partition has 250,000 strokes, and a
    # Python string per stroke would make planning's memory grow with the partition
    strokes_path = perf / "strokes.parquet"
    strokes = _read_arrow(
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
    out_dir = audio_dir(data, slug)
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
                audio_rel=f"rudiments/audio/{slug}/{sid}.flac",
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


# ---------------------------------------------------------------- the worker

_LATENCY: dict[tuple[str, int], onsets.LatencyCurve] = {}


def _latency(soundfont: str, pitch: int) -> onsets.LatencyCurve:
    key = (soundfont, pitch)
    if key not in _LATENCY:
        _LATENCY[key] = onsets.calibrate_latency(get_renderer(soundfont, SAMPLE_RATE), pitch)
    return _LATENCY[key]


def preload_soundfont(soundfont: str, pitch: int = 38) -> None:
    """Load a soundfont and measure its onset latency for `pitch` (General MIDI snare) now."""
    _latency(soundfont, pitch)


def render_dry(job: RenderJob) -> tuple[np.ndarray, int]:
    """The dry FluidSynth render of the job's MIDI (MIDI length + TAIL_SEC), planar stereo
    (2, frames), and its main pitch."""
    import pretty_midi  # noqa: PLC0415

    try:
        pm = pretty_midi.PrettyMIDI(job.midi_path)
    except Exception as exc:  # noqa: BLE001 - mido/pretty_midi raise many types for bad files
        raise RenderError(f"{job.midi_path}: not a readable MIDI file: {exc}") from exc
    notes, programs = midi_to_events(pm)
    if not notes:
        raise RenderError(f"{job.midi_path}: the MIDI file has no notes")
    pitches = np.bincount([n.pitch for n in notes], minlength=128)
    renderer = get_renderer(job.soundfont, SAMPLE_RATE)
    dry = renderer.render(notes, total_seconds=pm.get_end_time() + TAIL_SEC, programs=programs, planar=True)
    return dry, int(pitches.argmax())


def _to_pcm24(x: np.ndarray) -> np.ndarray:
    """Planar float (channels, frames) to interleaved (frames, channels) 24-bit PCM in the
    top bits of int32: exactly what the FLAC file will hold."""
    full = np.float32(2**23)
    y = np.empty(x.shape[::-1], dtype=np.float32)
    np.multiply(x.T, full, out=y)  # interleaves while scaling: no separate transposed copy
    np.rint(y, out=y)
    np.clip(y, -full, full - 1, out=y)
    pcm = y.astype(np.int32)
    pcm <<= 8
    return pcm


def render_job(job: RenderJob) -> dict[str, object]:
    """Render, measure, augment and write one sample; return its audio.parquet row."""
    from music_assets.audio.io import write_flac  # noqa: PLC0415
    from music_assets.io import WriteError  # noqa: PLC0415

    try:
        dry, pitch = render_dry(job)
        if job.channels == 1:
            mono = np.add(dry[0], dry[1])
            mono *= np.float32(0.5)  # exactly the channel mean (a power-of-two scale)
            dry = mono[None, :]
        # the detector works on the channel mean, so mono and stereo align identically
        align = onsets.median_alignment_error_ms(
            dry[0] if job.channels == 1 else dry.T,
            SAMPLE_RATE,
            job.stroke_ms,
            job.stroke_velocity,
            _latency(job.soundfont, pitch),
            job.note_ms,
        )
        rng = stable_rng(job.sample_id, job.seed, "augment")
        params = draw_params(job.preset, rng, dry.shape[1] / SAMPLE_RATE, job.beds)
        wet = effects.augment(dry, SAMPLE_RATE, params, stable_rng(job.sample_id, job.seed, "augment-signal"), job.beds)
        del dry
        pcm = _to_pcm24(wet)
        # flushed to disk all at once (os.sync) before audio.parquet lists the files
        write_flac(job.audio_path, pcm, SAMPLE_RATE, subtype=SUBTYPE, compression_level=FLAC_COMPRESSION, fsync=False)
    except RenderError:
        raise
    except WriteError as exc:  # a full disk, a read-only folder: the message names the file being written
        raise RenderError(f"sample {job.sample_id}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - name the sample in whatever went wrong
        raise RenderError(f"{job.midi_path} (sample {job.sample_id}): rendering failed: {exc!r}") from exc
    # stats from the exact integers in the file
    top = max(int(pcm.max()), -int(pcm.min())) if pcm.size else 0
    peak = top / 2.0**31
    # augment stages every preset below full scale, so the count is almost never needed
    clipped = (
        float(np.count_nonzero((pcm >= CLIP_LEVEL) | (pcm <= -CLIP_LEVEL))) / max(1, pcm.size)
        if top >= CLIP_LEVEL
        else 0.0
    )
    return {
        "sample_id": job.sample_id,
        "audio_path": job.audio_rel,
        "soundfont": Path(job.soundfont).name,
        **params.columns(),
        "audio_duration_sec": pcm.shape[0] / SAMPLE_RATE,
        "audio_sample_rate": SAMPLE_RATE,
        "audio_channels": pcm.shape[1],
        "audio_peak_dbfs": 20 * math.log10(max(peak, 1e-10)),
        "audio_clipped_ratio": clipped,
        "align_median_error_ms": align,
    }


def _render_job_measured(job: RenderJob) -> tuple[dict[str, object], float, float]:
    """render_job, plus the CPU seconds it took and this process's peak RSS (MiB)."""
    import resource  # noqa: PLC0415

    t0 = time.process_time()
    row = render_job(job)
    return row, time.process_time() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _init_worker() -> None:
    """Pool initializer: one BLAS/OpenMP thread per worker (the pool already uses every core)."""
    for var in _THREAD_VARS:
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl comes with librosa's scikit-learn
        pass


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# jobs queued ahead of each worker: a few seconds of work, which covers planning the next partition
# (its performances are produced ahead, on another thread) and bounds this process's memory
PENDING_JOBS_PER_WORKER = 128
_DONE = object()


def _drain(items: collections.deque) -> Iterator:
    """The items of `items`, each removed as it is drawn (the deque keeps nothing once drawn)."""
    while items:
        yield items.popleft()


def _map_chunk(fn: Callable, chunk: list) -> list:
    return [fn(x) for x in chunk]


def _bounded_map(executor: ProcessPoolExecutor, fn: Callable, items: Iterable, chunksize: int, max_pending: int):
    """executor.map with at most `max_pending` chunks queued; `items` is drawn on a thread, so a
    lazy producer (planning, generating performances) runs while the workers render."""
    import queue  # noqa: PLC0415
    import threading  # noqa: PLC0415

    slots = threading.Semaphore(max_pending)
    stop = threading.Event()
    ready: queue.Queue = queue.Queue()

    def feed() -> None:
        try:
            source = iter(items)
            while not stop.is_set() and (chunk := list(itertools.islice(source, max(1, chunksize)))):
                slots.acquire()
                if stop.is_set():
                    break
                ready.put(executor.submit(_map_chunk, fn, chunk))
        except BaseException as exc:  # noqa: BLE001 - raised in the caller, after the earlier results
            ready.put(exc)
        finally:
            ready.put(_DONE)

    feeder = threading.Thread(target=feed, name="render-feed", daemon=True)
    feeder.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            results = item.result()
            slots.release()
            yield from results
    finally:
        stop.set()
        slots.release()  # wake a feeder waiting for a slot
        while feeder.is_alive() or not ready.empty():  # drop what has not started
            try:
                item = ready.get(timeout=0.1)
            except queue.Empty:
                continue
            if hasattr(item, "cancel"):
                item.cancel()
        feeder.join()


class RenderPool:
    """The rendering processes, started in the background as soon as this is created.

    Starting them takes a few seconds (the fork server imports scipy and the
    rendering code and loads the soundfonts before it forks the workers, and
    starting a worker blocks until then), so the start runs on a thread and a
    caller can plan, or generate the performances, meanwhile. `workers` 0
    means one per core; 1 means no processes: jobs render in the calling
    process. Use as a context manager or call `close`.
    """

    def __init__(self, workers: int = 0):
        import threading  # noqa: PLC0415

        self.workers = default_workers() if workers <= 0 else workers
        self._executor: ProcessPoolExecutor | None = None
        self._error: BaseException | None = None
        self._starting = None
        if self.workers > 1:
            self._starting = threading.Thread(target=self._start, name="render-pool-start", daemon=True)
            self._starting.start()

    def _start(self) -> None:
        import multiprocessing as mp  # noqa: PLC0415

        try:
            # forkserver: never fork this process (Dagster's step process holds threads and locks);
            # workers fork from a clean server that imported the rendering code once
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(["music_assets.audio.render_preload"])
            executor = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker)
            self._executor = executor
            # one task per worker spawns them all now, not when the first jobs arrive
            for _ in range(self.workers):
                executor.submit(os.getpid)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread by `map`
            self._error = exc

    @property
    def max_pending(self) -> int:
        """Jobs queued ahead of the workers at most."""
        return PENDING_JOBS_PER_WORKER * self.workers

    @property
    def starting(self) -> bool:
        """True while the workers are still being started."""
        return self._starting is not None and self._starting.is_alive()

    def _ready(self) -> ProcessPoolExecutor | None:
        if self._starting is not None:
            self._starting.join()
        if self._error is not None:
            raise RenderError(f"the rendering processes could not start: {self._error!r}") from self._error
        return self._executor

    def map(self, fn: Callable, items: Iterable, chunksize: int = 1):
        """`fn` over `items` in order, with at most `max_pending` queued: `items` is drawn as
        the workers free up, so neither the jobs nor the results of a long run pile up in this
        process (ProcessPoolExecutor.map would queue every item at once)."""
        executor = self._ready()
        if executor is None:
            return map(fn, items)
        return _bounded_map(executor, fn, items, chunksize, max_pending=max(2, self.max_pending // max(1, chunksize)))

    def close(self) -> None:
        if self._starting is not None:
            self._starting.join()
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None

    def __enter__(self) -> RenderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class RenderRun:
    """Rows in job order, and what rendering them cost."""

    rows: Sequence[dict[str, object]]  # render_partitions: read back from the written tables
    workers: int
    cpu_seconds: float  # summed over the rendering processes
    peak_rss_mib: float  # the largest rendering process
    samples: int = 0
    audio_seconds: float = 0.0


def render_jobs(
    jobs: Iterable[RenderJob],
    workers: int = 0,
    progress: Callable[..., None] | None = None,
    pool: RenderPool | None = None,
    sink: Callable[[dict[str, object]], None] | None = None,
    total: int | None = None,
) -> RenderRun:
    """Render every job on `pool`, or on a pool of `workers` processes (0: one per core,
    1: in this process) started and closed here.

    Rows are collected in `RenderRun.rows`, or, with `sink`, handed to it in job
    order and not kept (a long run then holds nothing per sample). `total`, when
    known, is the job count `progress` reports against for a lazy `jobs`.

    `jobs` may be a lazy iterable (a caller producing the work as it goes): it
    is drawn from while the pool starts, then each job is queued as soon as it
    is drawn, so the workers render the first jobs while later ones are made.

    `progress(done, total)` (`music_assets.progress`) is called with 0 once the
    jobs are queued, then after each rendered sample; rendering in this process
    from a lazy iterable, `total` counts the jobs drawn so far.
    """
    if pool is None:
        jobs = list(jobs)
        workers = default_workers() if workers <= 0 else workers
        with RenderPool(min(workers, max(1, len(jobs)))) as own:
            return render_jobs(jobs, progress=progress, pool=own, sink=sink, total=total)
    if isinstance(jobs, Sequence):
        chunk = max(1, min(8, len(jobs) // (pool.workers * 8)))
    else:
        chunk = 2  # unknown length: small chunks keep both workers busy to the end
    drawn = 0

    def counted() -> Iterator[RenderJob]:
        nonlocal drawn
        for job in jobs:
            drawn += 1
            yield job

    source = counted()
    early: collections.deque[RenderJob] = collections.deque()
    while pool.starting and len(early) < pool.max_pending and (job := next(source, None)) is not None:
        early.append(job)
    run = RenderRun([], pool.workers, 0.0, 0.0)
    # `map` draws jobs as the workers free up: `drawn` is the count queued so far
    known = total if total is not None else (len(jobs) if isinstance(jobs, Sequence) else None)
    if progress and known:
        progress(0, known)
    for i, (row, cpu, rss) in enumerate(
        pool.map(_render_job_measured, itertools.chain(_drain(early), source), chunksize=chunk), 1
    ):
        if sink is None:
            run.rows.append(row)
        else:
            sink(row)
        run.samples += 1
        run.audio_seconds += float(row["audio_duration_sec"])
        run.cpu_seconds += cpu
        run.peak_rss_mib = max(run.peak_rss_mib, rss)
        if progress:
            progress(i, max(drawn, known or 0))
    return run


# ---------------------------------------------------------------- partitions


def audio_table(rows: Sequence[dict[str, object]]):
    """The audio.parquet table: strings as pa.string(), ints as int64, the rest float64."""
    import pyarrow as pa  # noqa: PLC0415

    if not rows:
        raise RenderError("no rendered samples to tabulate")
    fields = []
    for key, value in rows[0].items():
        if isinstance(value, str):
            typ = pa.string()
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            typ = pa.int64()
        else:
            typ = pa.float64()
        fields.append(pa.field(key, typ))
    return pa.Table.from_pylist(list(rows), schema=pa.schema(fields))


@dataclass
class PartitionAudio:
    """A rendered partition; its rows are read back from its audio.parquet when asked for."""

    slug: str
    table_path: Path
    num_rows: int

    @property
    def rows(self) -> list[dict[str, object]]:
        import pyarrow.parquet as pq  # noqa: PLC0415

        return pq.read_table(self.table_path).to_pylist()


class _PartitionRows(Sequence):
    """Every partition's rows in order, one partition in memory at a time."""

    def __init__(self, parts: Sequence[PartitionAudio]):
        self._parts = list(parts)

    def __len__(self) -> int:
        return sum(p.num_rows for p in self._parts)

    def __iter__(self) -> Iterator[dict[str, object]]:
        for p in self._parts:
            yield from p.rows

    def __getitem__(self, i):  # rarely used: lists one partition, or all of them for a slice
        if isinstance(i, slice):
            return list(self)[i]
        i = i + len(self) if i < 0 else i
        for p in self._parts:
            if i < p.num_rows:
                return p.rows[i]
            i -= p.num_rows
        raise IndexError(i)


@dataclass
class RenderResult:
    partitions: dict[str, PartitionAudio]
    run: RenderRun


def render_partitions(
    slugs: Sequence[str],
    data: Path,
    *,
    soundfonts: Sequence[str | os.PathLike[str]] = DEFAULT_SOUNDFONTS,
    presets: Sequence[str] = PRESET_NAMES,
    seed: int = 0,
    workers: int = 0,
    use_beds: bool = True,
    channels: int = DEFAULT_CHANNELS,
    progress: Callable[..., None] | None = None,
    pool: RenderPool | None = None,
    prepare: Callable[[str], None] | None = None,
    finished: Callable[[str, PartitionAudio], None] | None = None,
) -> RenderResult:
    """Render every performance of `slugs` on one pool and write each partition's audio.parquet.

    `finished(slug, partition)`, when given, is called as soon as a partition is complete (its
    files flushed, its audio.parquet written, files of samples no longer in it removed): the
    caller records the partition's manifest there.

    The pool (`workers` processes unless one is given) starts before the
    partitions are planned, so its start-up overlaps the planning. Files of
    samples no longer in a partition are removed once its table is written.

    `prepare`, when given, is called with each slug, in order and one at a
    time on a background thread, for a caller that produces the performances
    as it goes (the benchmarks generate them there): partition k + 1 is
    prepared while partition k is planned, queued and rendered, so the workers
    render the first partitions while later ones are produced, and `progress`
    counts against the jobs queued so far.
    """
    from music_assets.io import remove_partials, write_parquet  # noqa: PLC0415

    sf_paths = [Path(p) for p in soundfonts]
    missing = [str(p) for p in sf_paths if not p.is_file()]
    if missing:
        raise RenderError(f"soundfont(s) not found: {', '.join(missing)}")
    if pool is None:
        with RenderPool(workers) as own:
            return render_partitions(
                slugs,
                data,
                soundfonts=soundfonts,
                presets=presets,
                seed=seed,
                use_beds=use_beds,
                channels=channels,
                progress=progress,
                pool=own,
                prepare=prepare,
                finished=finished,
            )
    beds = effects.background_beds(data / "sources") if use_beds else []
    # Streams: each partition is planned only when the workers need its jobs, and its
    # audio.parquet is written as soon as its last row is in, so this process holds a few
    # chunks of jobs and one partition's rows, whatever the number of samples.
    counts: dict[str, int] = {}
    if prepare is None:
        for slug in slugs:  # plan every partition first: bad input fails before anything is rendered
            counts[slug] = len(plan_partition(slug, data, sf_paths, presets, seed, beds, channels))
    total = sum(counts.values()) if prepare is None else None

    def jobs() -> Iterator[RenderJob]:
        # the next partition is prepared on a thread while this one's jobs are queued and
        # rendered, so the pending window need only cover planning, not producing, a partition
        ahead = ThreadPoolExecutor(1, thread_name_prefix="render-prepare") if prepare is not None else None
        try:
            prepared = ahead.submit(prepare, slugs[0]) if ahead is not None and slugs else None
            for i, slug in enumerate(slugs):
                if prepared is not None:
                    prepared.result()  # prepare's error, if any, stops the run here
                    prepared = ahead.submit(prepare, slugs[i + 1]) if i + 1 < len(slugs) else None
                # made as they are drawn, not a partition's worth at once: a partition has
                # samples / 40 jobs, more than the pending window at scale
                part = plan_partition(slug, data, sf_paths, presets, seed, beds, channels)
                counts[slug] = len(part)
                remove_partials(audio_dir(data, slug))
                yield from part
        finally:
            if ahead is not None:
                ahead.shutdown(wait=True, cancel_futures=True)

    out: dict[str, PartitionAudio] = {}
    pending = iter(slugs)
    current: list[str | None] = [None]
    part_rows: list[dict[str, object]] = []

    def finish(slug: str) -> None:
        os.sync()  # the FLAC files reach the disk before the table that lists them
        path = performances_dir(data, slug) / "audio.parquet"
        write_parquet(path, audio_table(part_rows))
        keep = {Path(str(r["audio_path"])).name for r in part_rows}
        for stale in audio_dir(data, slug).glob("*.flac"):
            if stale.name not in keep:
                stale.unlink()
        out[slug] = PartitionAudio(slug, path, len(part_rows))
        part_rows.clear()
        if finished is not None:
            finished(slug, out[slug])

    def sink(row: dict[str, object]) -> None:
        while current[0] is None or len(part_rows) >= counts[current[0]]:
            current[0] = next(pending)
        part_rows.append(row)
        if len(part_rows) == counts[current[0]]:
            finish(current[0])
            current[0] = None

    run = render_jobs(jobs(), progress=progress, pool=pool, sink=sink, total=total)
    for slug in slugs:  # a partition without samples still gets its (empty) table's error
        if slug not in out:
            finish(slug)
    run.rows = _PartitionRows([out[s] for s in slugs])
    return RenderResult({s: out[s] for s in slugs}, run)


# ---------------------------------------------------------------- quality gates


@dataclass
class GateResult:
    name: str
    passed: bool
    description: str
    metadata: dict[str, object]


def check_partition(slug: str, data: Path) -> list[GateResult]:
    """The blocking gates of one partition, computed from its written files and tables.

    - duration: every FLAC exists, is 44.1 kHz 24-bit with the channel count its
      audio.parquet row records (1 or 2), and lasts the MIDI
      length (`duration_sec`) + TAIL_SEC within +-50 ms (read from the file header);
    - clipping: at most 0.1 % of the samples of any file at full scale;
    - silence: no file whose peak stays below -60 dBFS;
    - alignment: in every sample, onsets in the dry render are within a median
      5 ms of the labelled non-grace strokes.
    """
    import soundfile as sf  # noqa: PLC0415

    perf = performances_dir(data, slug)
    samples = _read_table(perf / "samples.parquet", ["sample_id", "duration_sec"])
    audio = _read_table(
        perf / "audio.parquet",
        [
            "sample_id",
            "audio_path",
            "audio_channels",
            "audio_peak_dbfs",
            "audio_clipped_ratio",
            "align_median_error_ms",
        ],
    )
    merged = samples.merge(audio, on="sample_id", how="left")
    n = len(merged)

    bad_duration: list[str] = []
    worst_dur = 0.0
    for sid, rel, dur, channels in zip(
        merged["sample_id"], merged["audio_path"], merged["duration_sec"], merged["audio_channels"], strict=True
    ):
        if not isinstance(rel, str):
            bad_duration.append(f"{sid}: no audio row")
            continue
        path = data / rel
        try:
            info = sf.info(str(path))
        except Exception as exc:  # noqa: BLE001 - missing or unreadable file
            bad_duration.append(f"{rel}: unreadable ({type(exc).__name__})")
            continue
        if (
            info.samplerate != SAMPLE_RATE
            or info.channels != channels
            or channels not in (1, 2)
            or info.subtype != SUBTYPE
        ):
            bad_duration.append(
                f"{rel}: {info.samplerate} Hz, {info.channels} ch, {info.subtype}; "
                f"expected {SAMPLE_RATE} Hz, {channels} ch, {SUBTYPE}"
            )
            continue
        off = abs(info.frames / info.samplerate - (float(dur) + TAIL_SEC))
        worst_dur = max(worst_dur, off)
        if off > DURATION_TOLERANCE_SEC:
            bad_duration.append(f"{rel}: {info.frames / info.samplerate:.3f} s, expected {float(dur) + TAIL_SEC:.3f} s")

    def _listing(items: list[str]) -> str:
        return "; ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")

    clip = merged["audio_clipped_ratio"].astype(float)
    peak = merged["audio_peak_dbfs"].astype(float)
    align = merged["align_median_error_ms"].astype(float)
    clipped = merged.loc[~(clip <= MAX_CLIPPED_RATIO), "sample_id"].tolist()
    silent = merged.loc[~(peak >= SILENCE_DBFS), "sample_id"].tolist()
    misaligned = merged.loc[~(align <= MAX_ALIGN_MEDIAN_MS), "sample_id"].tolist()
    return [
        GateResult(
            "audio_duration_matches_midi",
            not bad_duration and n > 0,
            f"{n - len(bad_duration)}/{n} files last the MIDI length + {TAIL_SEC} s within "
            f"+-{DURATION_TOLERANCE_SEC * 1000:.0f} ms"
            + (f"; failing: {_listing(bad_duration)}" if bad_duration else ""),
            {"samples": n, "failing": len(bad_duration), "worst_offset_ms": round(worst_dur * 1000, 2)},
        ),
        GateResult(
            "audio_not_clipped",
            not clipped and n > 0,
            f"{n - len(clipped)}/{n} files with at most {MAX_CLIPPED_RATIO:.1%} clipped samples"
            + (f"; failing: {_listing(clipped)}" if clipped else ""),
            {"samples": n, "failing": len(clipped), "max_clipped_ratio": float(clip.max()) if n else 0.0},
        ),
        GateResult(
            "audio_not_silent",
            not silent and n > 0,
            f"{n - len(silent)}/{n} files peak above {SILENCE_DBFS:.0f} dBFS"
            + (f"; silent: {_listing(silent)}" if silent else ""),
            {"samples": n, "failing": len(silent), "min_peak_dbfs": float(peak.min()) if n else 0.0},
        ),
        GateResult(
            "audio_aligned_with_labels",
            not misaligned and n > 0,
            f"{n - len(misaligned)}/{n} samples with median |onset - labelled stroke| <= {MAX_ALIGN_MEDIAN_MS} ms"
            + (f"; failing: {_listing(misaligned)}" if misaligned else ""),
            {"samples": n, "failing": len(misaligned)}
            | (
                {
                    "median_error_ms": round(float(np.nanmedian(align)), 3),
                    "worst_sample_error_ms": round(float(np.nanmax(align)), 3),
                }
                if np.isfinite(align).any()
                else {}
            ),
        ),
    ]
