"""Partition locks: one writer per partition at a time, across processes and runs.

A partition being written is locked with `fcntl.flock` on
`<data dir>/.locks/<asset>/<partition>.lock`; the holder writes who it is (run
id, pid, host, since when) into the file. A second writer either waits up to
`timeout` seconds, or fails with `PartitionBusyError`: "partition flam of
rudiment_audio is being written by run 1b2c... (pid 4242 on host, since
...)". The kernel drops a lock when its process dies, so a killed run never
leaves a partition locked: there is nothing to clean up by hand.

flock works between processes of one machine and on most network file
systems that support it (NFSv4 with lock support, CephFS); where the data dir
is shared by several machines, make sure the mount supports locks.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from music_assets.integrity import confined_child
from music_assets.paths import locks_dir

WHOLE_ASSET = "_all"  # the lock of an unpartitioned asset
POLL_SECONDS = 0.5


class PartitionBusyError(RuntimeError):
    """Another run is writing the partition."""


def lock_path(asset: str, partition: str | None) -> Path:
    folder = confined_child(locks_dir(), asset, what="asset name")
    return confined_child(folder, partition or WHOLE_ASSET, what=f"partition key of {asset}", suffix=".lock")


def _holder(path: Path) -> str:
    try:
        h = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "another process"
    run = f"run {h['run_id']}" if h.get("run_id") else "a process"
    return f"{run} (pid {h.get('pid')} on {h.get('host')}, since {h.get('since')})"


def describe(asset: str, partition: str | None) -> str:
    """Who holds (or last held) the lock of a partition."""
    return _holder(lock_path(asset, partition))


@contextlib.contextmanager
def partition_lock(
    asset: str,
    partitions: Iterable[str | None],
    *,
    run_id: str | None = None,
    timeout: float = 0.0,
    log: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the write lock of every partition in `partitions` (None: the whole asset) for the block.

    Locks are taken in sorted order, so two runs over overlapping partitions cannot deadlock.
    When one is held by another run, wait up to `timeout` seconds (logging who holds it), then
    raise PartitionBusyError naming the partition and the run writing it.
    """
    keys = sorted({p if p is not None else WHOLE_ASSET for p in partitions})
    held: list[int] = []
    try:
        for key in keys:
            held.append(_acquire(asset, None if key == WHOLE_ASSET else key, run_id, timeout, log))
        yield
    finally:
        for fd in reversed(held):
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _acquire(
    asset: str, partition: str | None, run_id: str | None, timeout: float, log: Callable[[str], None] | None
) -> int:
    path = lock_path(asset, partition)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + max(0.0, timeout)
    logged = 0.0
    name = f"partition {partition} of {asset}" if partition is not None else f"{asset}"
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            now = time.monotonic()
            if now >= deadline:
                raise PartitionBusyError(
                    f"{name} is being written by {_holder(path)}; wait for that run to finish "
                    f"(or stop it) and materialize again (lock file {path})"
                )
            if log and now - logged >= 30:
                log(f"waiting for {name}: it is being written by {_holder(path)}")
                logged = now
            time.sleep(POLL_SECONDS)
        holder = {
            "run_id": run_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "asset": asset,
            "partition": partition,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        return fd
    except BaseException:
        os.close(fd)
        raise
