"""Analysing files on a process pool of spawned workers, one per core; a crash becomes an error row.

Small batches (under `POOL_MIN_FILES` files and `POOL_MIN_BYTES` bytes) are
analysed in this process: starting the workers would cost more.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing import connection as mp_connection
from typing import Any

from music_assets.audio.catalog.keys import content_hash
from music_assets.cores import usable_cores

# A spawned worker takes a second or more to import numpy/scipy: pool only for real work.
POOL_MIN_FILES = 32
POOL_MIN_BYTES = 64 << 20
PREFETCH = 8  # paths waiting in each worker's pipe
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def analyze_path(path: str) -> dict[str, Any]:
    """Hash and measure one file; never raises: failures become status `error` with the reason."""
    from music_assets.audio.analysis import AudioAnalysisError, analyze_file  # noqa: PLC0415
    from music_assets.audio.provenance import read_tags  # noqa: PLC0415

    # `analyzed` marks rows a later run may reuse for an unchanged file: not
    # filesystem errors, which a chmod fixes without touching size or mtime.
    row: dict[str, Any] = {"content_hash": None, "status": "error", "error": None, "analyzed": True}
    try:
        row["content_hash"] = content_hash(path)
        stats = analyze_file(path)
    except AudioAnalysisError as exc:
        row["error"] = str(exc)
        return row
    except PermissionError:
        row.update(error="permission denied: the file is not readable", analyzed=False)
        return row
    except OSError as exc:
        row.update(error=f"cannot read: {exc.strerror or exc}", analyzed=False)
        return row
    except Exception as exc:  # noqa: BLE001 - a decoder bug on one file must not fail the catalog
        row["error"] = f"analysis failed: {type(exc).__name__}: {exc}"
        return row
    row.update(
        status="ok",
        duration_sec=stats.duration_sec,
        sample_rate=stats.sample_rate,
        channels=stats.channels,
        frames=stats.frames,
        subtype=stats.subtype,
        peak_dbfs=stats.peak_dbfs,
        rms_dbfs=stats.rms_dbfs,
        clipped_ratio=stats.clipped_ratio,
        silence_ratio=stats.silence_ratio,
        loudness_lufs=stats.loudness_lufs,
        **read_tags(path),
    )
    return row


def _worker(conn: Any, fn: Callable[[str], dict[str, Any]]) -> None:
    """A pool process: one BLAS thread, then analyse each path it is sent until it gets None."""
    # Set before this process imports numpy (this module needs only the standard library).
    for var in _THREAD_ENV:
        os.environ[var] = "1"
    while (path := conn.recv()) is not None:
        conn.send(fn(path))


def _worth_a_pool(paths: Sequence[str]) -> bool:
    if len(paths) >= POOL_MIN_FILES:
        return True
    return sum(os.path.getsize(p) for p in paths if os.path.isfile(p)) >= POOL_MIN_BYTES


def default_workers() -> int:
    """One worker per core this process may run on."""
    return usable_cores()


def crashed_row() -> dict[str, Any]:
    return {
        "content_hash": None,
        "status": "error",
        "analyzed": True,
        "error": "the decoder crashed on this file (the analysis process died)",
    }


def analyze_many(
    paths: Sequence[str],
    workers: int = 0,
    fn: Callable[[str], dict[str, Any]] = analyze_path,
    progress: Callable[..., None] | None = None,
) -> list[dict[str, Any]]:
    """`fn` (default `analyze_path`) over many files, in `workers` processes (0: one per core).

    `progress(done, total)` (`music_assets.progress`) is called with 0 first,
    then as each file's result arrives, crashed files included.

    Each worker holds a few paths in its pipe (`PREFETCH`, so it never waits
    for the parent) and answers one result per path, in order; the parent
    therefore always knows which file a worker is on. When a decoder crashes
    its process, that file becomes an error row, its queued paths go to a fresh
    worker, and the rest of the catalog is unaffected. Workers are spawned, not
    forked: the caller may be a threaded Dagster step process.
    """
    workers = min(workers or default_workers(), len(paths))
    total, done = len(paths), 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total)

    if progress and total:
        progress(0, total)
    if workers <= 1 or not _worth_a_pool(paths):
        out = []
        for p in paths:
            out.append(fn(p))
            tick()
        return out
    ctx = multiprocessing.get_context("spawn")
    results: list[dict[str, Any] | None] = [None] * len(paths)
    queue = deque(range(len(paths)))
    busy: dict[Any, tuple[Any, deque[int]]] = {}  # connection -> (process, indices sent, oldest first)
    deaths_in_a_row = 0

    def top_up(conn: Any, proc: Any, sent: deque[int]) -> None:
        while queue and len(sent) < PREFETCH:
            i = queue.popleft()
            try:
                conn.send(paths[i])
            except OSError:  # the worker died: what it held goes back to the queue for its successor
                queue.extendleft(reversed([*sent, i]))
                busy.pop(conn, None)
                proc.join()
                start()
                return
            sent.append(i)
        if sent:
            busy[conn] = (proc, sent)
        else:
            conn.send(None)
            conn.close()
            proc.join()

    def start() -> None:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child, fn), daemon=True)
        proc.start()
        child.close()
        top_up(parent, proc, deque())

    try:
        for _ in range(workers):
            start()
        while busy:
            for conn in mp_connection.wait(list(busy)):
                proc, sent = busy.pop(conn)
                try:
                    results[sent.popleft()] = conn.recv()
                    deaths_in_a_row = 0
                    tick()
                except (EOFError, OSError):
                    proc.join()
                    conn.close()
                    crashed = sent.popleft()
                    deaths_in_a_row += 1
                    if deaths_in_a_row > 2 * workers:
                        raise RuntimeError(
                            f"analysis workers keep dying (exit code {proc.exitcode}); last file: {paths[crashed]}"
                        ) from None
                    results[crashed] = crashed_row()
                    tick()
                    queue.extendleft(reversed(sent))
                    if queue:
                        start()
                    continue
                top_up(conn, proc, sent)
    finally:
        for proc, _ in busy.values():
            proc.kill()
    return results  # type: ignore[return-value]
