"""Atomic file writes and small file helpers shared by every domain package.

Every artifact is written to a temporary file in the destination folder and
renamed over the destination only once complete and flushed to disk, so a
killed run never leaves a half-written file under the final name. Temporary
names start with a dot and end in `.partial`, so globs for `*.flac`,
`*.parquet` etc. never pick them up. A temporary name carries its writer:
a hash of the host, the process id, the run id when the step set one
(`MUSIC_ASSETS_RUN_ID`) and a random part, so it is private to its run, and
`remove_partials` sweeps only the ones whose writer is gone (a killed
process), never those of a run still writing beside it.

A write that fails (a full disk, a read-only or forbidden folder) raises
`WriteError`, an `OSError` with the same errno whose message names the file
being written: `No space left on device while writing .../flam/xyz.flac`.
"""

from __future__ import annotations

import contextlib
import errno as errnos
import hashlib
import json
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

PARTIAL_SUFFIX = ".partial"
RUN_ID_ENV = "MUSIC_ASSETS_RUN_ID"
# A partial written on another machine (a shared data dir) is swept only once this old: its
# writer's liveness cannot be checked from here.
FOREIGN_PARTIAL_AGE_SEC = 6 * 3600
_OWNER_RE = re.compile(
    r"\.(?:(?P<host>[0-9a-f]{8})-)?(?P<pid>\d+)(?:-r(?P<run>[0-9A-Za-z]{1,8}))?-[0-9a-f]{8}"
    + re.escape(PARTIAL_SUFFIX)
    + "$"
)


class WriteError(OSError):
    """Writing a file failed; the message names the file being written and the reason."""

    def __str__(self) -> str:
        return f"{self.strerror} while writing {self.filename}"


def host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode(), usedforsecurity=False).hexdigest()[:8]


def _owner_tag() -> str:
    run = re.sub(r"[^0-9A-Za-z]", "", os.environ.get(RUN_ID_ENV, ""))[:8]
    return f"{host_tag()}-{os.getpid()}" + (f"-r{run}" if run else "")


def tmp_path(dest: str | os.PathLike[str]) -> Path:
    """A temporary name beside `dest`, private to this process and run (see the module docstring)."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.{_owner_tag()}-{secrets.token_hex(4)}{PARTIAL_SUFFIX}")


_tmp_path = tmp_path


def _write_error(exc: OSError, dest: Path, tmp: Path) -> OSError:
    """`exc` as a WriteError naming `dest` when it is about writing `dest` (not, say, a missing input)."""
    if isinstance(exc, WriteError):
        return exc
    name = exc.filename
    about_dest = name is None or str(name) == str(tmp) or str(dest).startswith(str(name).rstrip(os.sep) + os.sep)
    if not about_dest:
        return exc
    code = exc.errno
    if code is None:  # pyarrow: "... Detail: [errno 28] No space left on device"
        m = re.search(r"\[errno (\d+)\]", str(exc), re.IGNORECASE)
        code = int(m.group(1)) if m else None
    reason = os.strerror(code) if code else (exc.strerror or str(exc))
    return WriteError(code or errnos.EIO, reason, str(dest))


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; on success it replaces `dest` atomically.

    Writers that infer the format from the file name must be told the format
    explicitly (the temporary name ends in `.partial`). On error the
    temporary file is removed and `dest` is untouched. `fsync=False` keeps the
    rename atomic for readers and killed processes but leaves flushing to disk
    to the caller (one `os.sync()` after writing thousands of small files
    instead of two fsyncs per file).
    """
    dest = Path(dest)
    tmp = tmp_path(dest)
    try:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            yield tmp
            if not tmp.exists():
                raise FileNotFoundError(f"writer produced no file for {dest} (its temporary file {tmp} is gone)")
            if fsync:
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
            os.replace(tmp, dest)
            if fsync:
                _fsync_dir(dest.parent)
        except OSError as exc:
            err = _write_error(exc, dest, tmp)
            if err is exc:
                raise
            raise err from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(
    dest: str | os.PathLike[str], mode: str = "wb", *, fsync: bool = True, **kwargs: Any
) -> Iterator[IO[Any]]:
    """Open a temporary file beside `dest` for writing; rename over `dest` on success."""
    if not mode.startswith("w"):
        raise ValueError(f"atomic_open is for writing, got mode {mode!r}")
    with atomic_path(dest, fsync=fsync) as tmp:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()


def write_bytes(dest: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> Path:
    with atomic_open(dest, "wb", fsync=fsync) as fh:
        fh.write(data)
    return Path(dest)


def write_text(dest: str | os.PathLike[str], text: str) -> Path:
    with atomic_open(dest, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    return Path(dest)


def write_json(dest: str | os.PathLike[str], obj: Any) -> Path:
    """Deterministic JSON (sorted keys, fixed indentation), written atomically."""
    return write_text(dest, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def write_parquet(dest: str | os.PathLike[str], table: Any, **kwargs: Any) -> Path:
    """Write a pyarrow Table (or pandas DataFrame) to parquet atomically.

    Statistics and compression are fixed so identical tables give identical bytes.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    kwargs.setdefault("compression", "zstd")
    with atomic_path(dest) as tmp:
        pq.write_table(table, tmp, **kwargs)
    return Path(dest)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _pid_alive(pid: int) -> bool:
    import psutil  # noqa: PLC0415

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return pid == os.getpid()


def writer_gone(partial: Path, now: float | None = None) -> bool:
    """True when the process that writes `partial` is gone (killed): its temporary file is litter.

    A partial of this host is litter when its pid is not running; one written on another host
    (a shared data dir) when it is older than FOREIGN_PARTIAL_AGE_SEC; a name that does not parse
    (not ours) never is.
    """
    m = _OWNER_RE.search(partial.name)
    if m is None:
        return False
    host = m.group("host")
    if host is None or host == host_tag():
        return not _pid_alive(int(m.group("pid")))
    try:
        age = (now or time.time()) - partial.stat().st_mtime
    except FileNotFoundError:
        return False
    return age > FOREIGN_PARTIAL_AGE_SEC


def remove_partials(folder: str | os.PathLike[str]) -> int:
    """Delete temporary files that killed writers left under `folder`; return how many.

    Files of writers still running (another run writing beside this one) are left alone.
    """
    n = 0
    root = Path(folder)
    if not root.exists():
        return 0
    for p in root.rglob(f".*{PARTIAL_SUFFIX}"):
        if not writer_gone(p):
            continue
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            n += 1
    return n
