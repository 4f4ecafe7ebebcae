"""Deferred sample shards: a plan written at staging, the shard built from it at upload."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from music_assets.io import write_bytes
from music_assets.publish import layout
from music_assets.publish.staging import shards as shard_writer
from music_assets.publish.staging.base import (
    FINGERPRINT_KEY,
    LOCAL_SHARE_OF_FREE_DISK,
    PLAN_COLUMNS,
    PLAN_KEY,
    StagingError,
    first_few,
)
from music_assets.publish.staging.shards import shard_table, write_shard


def plan_info(path: Path) -> dict | None:
    """The plan metadata of a deferred shard's plan file (None for any other parquet file)."""
    return plan_info_of(pq.read_schema(path).metadata or {})


def plan_info_of(metadata: dict[bytes, bytes]) -> dict | None:
    """plan_info from a parquet schema's metadata already read."""
    raw = metadata.get(PLAN_KEY)
    return json.loads(raw) if raw else None


@dataclass(frozen=True)
class BuiltShard:
    rel: str  # the shard's path relative to staging
    path: Path  # where it was written
    rows: int
    size: int
    sha256: str  # what the Hub reports for an LFS/Xet file
    blob_id: str  # the git object id
    fingerprint: str


def build_deferred_shard(staging: Path, rel: str, dest: Path | None = None, limit: int | None = None) -> BuiltShard:
    """Build the deferred sample shard `rel` from its plan, atomically, into `dest` (default: its place in
    staging): the bytes `local` storage would have written. `limit` builds only the first rows (a preview).

    Raises StagingError, naming the files, when the plan is unreadable or a source file is missing or
    changed since staging (its bytes would not be the ones the card and the checks describe).
    """
    plan_path = layout.deferred_path(staging, rel)
    try:
        table = pq.read_table(plan_path)
        meta = table.schema.metadata or {}
        info = json.loads(meta[PLAN_KEY])
        fingerprint = meta[FINGERPRINT_KEY]
        schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(info["data_schema"])))
    except Exception as exc:  # noqa: BLE001 - missing, unreadable or not a plan
        raise StagingError(f"{plan_path}: not a readable shard plan ({exc}); materialize hf_staging again") from exc
    if limit is not None:
        table = table.slice(0, limit)
    data_root = Path(os.path.normpath(staging / info["data_root"]))
    files: dict[str, list[Path]] = {}
    changed: list[str] = []
    for col, (c_src, c_size, c_mtime) in PLAN_COLUMNS.items():
        files[col] = [data_root / r for r in table[c_src].to_pylist()]
        for f, size, mtime in zip(files[col], table[c_size].to_pylist(), table[c_mtime].to_pylist(), strict=True):
            try:
                st = f.stat()
            except FileNotFoundError:
                changed.append(f"{f} is missing")
                continue
            if (st.st_size, st.st_mtime_ns) != (size, mtime):
                changed.append(f"{f} changed ({st.st_size} bytes now, {size} when staged)")
    if changed:
        raise StagingError(
            f"{plan_path}: {len(changed)} source file(s) of {rel} changed since hf_staging: {first_few(changed)}; "
            "materialize hf_staging again"
        )
    part = table.drop_columns([c for cols in PLAN_COLUMNS.values() for c in cols]).replace_schema_metadata(None)
    shard = shard_table(part, files, schema)
    dest = dest or staging / rel
    write_shard(dest, shard, fingerprint, shard_writer.SAMPLE_ROWS_PER_GROUP)  # read now: the tests lower it
    size = dest.stat().st_size
    sha = hashlib.sha256()
    blob = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False)
    with open(dest, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
            blob.update(chunk)
    return BuiltShard(rel, dest, shard.num_rows, size, sha.hexdigest(), blob.hexdigest(), fingerprint.decode())


def read_built_record(staging: Path) -> dict[str, dict]:
    """{shard: {fingerprint, size, sha256, blob_id, rows}} of the deferred shards built so far ({} when none)."""
    try:
        return json.loads((staging / layout.BUILT_RECORD).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}


def record_built(staging: Path, shards: Sequence[BuiltShard]) -> None:
    """Remember what each built shard's bytes were (so a later upload knows them without building)."""
    record = read_built_record(staging)
    for b in shards:
        record[b.rel] = {
            "fingerprint": b.fingerprint,
            "size": b.size,
            "sha256": b.sha256,
            "blob_id": b.blob_id,
            "rows": b.rows,
        }
    write_bytes(staging / layout.BUILT_RECORD, json.dumps(record, indent=1, sort_keys=True).encode())


def choose_shard_storage(setting: str, estimated: int, free: int) -> tuple[str, str]:
    """(storage, why) for the sample shards: `setting` unless "auto", which keeps them local while they take at
    most LOCAL_SHARE_OF_FREE_DISK of `free` (the free disk plus what the current shards occupy)."""
    if setting != "auto":
        return setting, f"shard_storage is {setting}"
    gb = f"{estimated / 1e9:.1f} GB"
    if estimated <= LOCAL_SHARE_OF_FREE_DISK * free:
        return "local", f"auto: the sample shards ({gb}) take at most half of the {free / 1e9:.1f} GB free"
    return "deferred", (
        f"auto: the sample shards ({gb}) would take more than half of the {free / 1e9:.1f} GB free, "
        "so each is built when it is uploaded"
    )
