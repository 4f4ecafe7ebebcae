"""Atomic file writes and small file helpers shared by every domain package.

Every artifact is written to a temporary file in the destination folder and
renamed over the destination only once complete and flushed to disk, so a
killed run never leaves a half-written file under the final name. Temporary
names start with a dot and end in `.partial`, so globs for `*.flac`,
`*.parquet` etc. never pick them up; `remove_partials` sweeps the ones a
killed process left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

PARTIAL_SUFFIX = ".partial"


def _tmp_path(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.{os.getpid()}-{secrets.token_hex(4)}{PARTIAL_SUFFIX}")


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
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(dest)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"writer produced no file for {dest}")
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, dest)
        if fsync:
            _fsync_dir(dest.parent)
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


def remove_partials(folder: str | os.PathLike[str]) -> int:
    """Delete temporary files a killed writer left under `folder`; return how many."""
    n = 0
    root = Path(folder)
    if not root.exists():
        return 0
    for p in root.rglob(f".*{PARTIAL_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            n += 1
    return n
