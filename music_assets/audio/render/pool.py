"""The rendering process pool and the bounded job stream that feeds it.

Workers fork from a server that imported the rendering code once
(`render_preload`); jobs are drawn lazily and at most
`PENDING_JOBS_PER_WORKER` per worker are queued, so a long run holds a bounded
number of jobs whatever its size.
"""

from __future__ import annotations

import collections
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from music_assets.audio.render.plan import RenderError, RenderJob
from music_assets.audio.render.worker import render_job_measured
from music_assets.cores import usable_cores

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


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
    return usable_cores()


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
        pool.map(render_job_measured, itertools.chain(_drain(early), source), chunksize=chunk), 1
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
