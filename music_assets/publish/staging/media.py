"""The media files of the staged samples: where each comes from, linked or copied into the staging folder."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pyarrow as pa

from music_assets.integrity import PathEscapeError, confine
from music_assets.io import tmp_path
from music_assets.publish.staging.base import MEDIA_DIRS, SOURCE_PATH_COLUMNS, StagingError, first_few


def _tmp_beside(dest: Path) -> Path:
    return tmp_path(dest)


def sync_file(src: Path, dest: Path) -> str:
    """Make `dest` a hard link to (or, across devices, a copy of) `src`; leave it if already the same.

    Returns "unchanged", "linked" or "copied". Same inode, or same size and
    modification time (copies keep the source's mtime), counts as unchanged.
    """
    s = src.stat()
    try:
        d = dest.lstat()
    except FileNotFoundError:
        d = None
    if d is not None and not dest.is_symlink():
        if (d.st_ino, d.st_dev) == (s.st_ino, s.st_dev) or (d.st_size, d.st_mtime_ns) == (s.st_size, s.st_mtime_ns):
            return "unchanged"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_beside(dest)
    try:
        try:
            os.link(src, tmp)
            how = "linked"
        except OSError:  # another device, or a filesystem without hard links
            shutil.copy2(src, tmp)
            how = "copied"
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return how


def media_plan(table: pa.Table, data_root: Path, samples_path: Path) -> dict[str, list[tuple[Path, str]]]:
    """media column -> [(source file, staged path relative to staging)] per row; every source must exist."""
    plan: dict[str, list[tuple[Path, str]]] = {}
    missing: list[str] = []
    slugs = table["rudiment_slug"].to_pylist()
    ids = table["sample_id"].to_pylist()
    for col, src_col in SOURCE_PATH_COLUMNS.items():
        rows = []
        for slug, sid, rel in zip(slugs, ids, table[src_col].to_pylist(), strict=True):
            if not rel:
                missing.append(f"{sid}: empty {src_col}")
                continue
            try:  # a path from a table is data: it must stay inside the data dir
                src = confine(data_root / rel, [data_root], what=f"{src_col} of {sid} in {samples_path}")
            except PathEscapeError as exc:
                raise StagingError(str(exc)) from None
            if not src.is_file():
                missing.append(str(src))
            rows.append((src, f"{MEDIA_DIRS[col]}/{slug}/{sid}{Path(rel).suffix}"))
        plan[col] = rows
    if missing:
        raise StagingError(f"{samples_path}: {len(missing)} media file(s) missing: {first_few(missing)}")
    return plan
