"""Trust in what is on disk: path confinement, sha256 verification and per-partition manifests.

Confinement
    `confine` is the one check every path derived from a partition key, a
    config value, a table column, a sidecar or a symlink goes through before
    it is read or written: the path, with every symlink resolved, must lie
    inside the data dir (or inside the roots the caller names, such as the
    catalog roots). A key like `../../outside/evil` or a sidecar linked to
    `/etc` fails with `PathEscapeError`, naming where the path came from.

Verification
    `verify_sha256` compares a file with the sha256 recorded when it was
    written and fails with `IntegrityError` naming the file and both hashes.

Manifests
    A partition of a partitioned asset is all-or-nothing through its manifest,
    `<data dir>/manifests/<asset>/<partition>.json`, which lists every file of
    the partition (path relative to the data dir, sha256), the fingerprint of
    the configuration that wrote it, the run, and the manifests of the inputs
    it was made from. A writer removes the manifest before it changes any file
    of the partition (`invalidate_manifest`) and writes it last, once every
    file is in place and flushed. So a partition whose run was killed, ran out
    of disk or failed part-way has no manifest, and a reader
    (`verify_manifest`) refuses it, saying which asset to re-materialize; a
    partition whose files were changed afterwards (a flipped byte, a file
    replaced by hand) fails the hash comparison. The manifest's own sha256
    (`Manifest.digest`) names the generation: a later asset records the
    digests it read, so a reader further down can tell that its inputs were
    regenerated since (`check_inputs_current`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from music_assets.io import sha256_file, write_json
from music_assets.paths import data_dir, manifests_dir

MANIFEST_VERSION = 1
# hashlib releases the GIL on large buffers: a few threads hash a partition's files in parallel
HASH_THREADS = 4


class IntegrityError(RuntimeError):
    """A file differs from what was recorded when it was written, or a partition is incomplete."""


class PathEscapeError(ValueError):
    """A path derived from a key, config value, table or link resolves outside where it may."""


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def confine(
    path: str | os.PathLike[str],
    roots: Iterable[str | os.PathLike[str]] | None = None,
    *,
    what: str = "path",
) -> Path:
    """`path` (relative paths are taken from the first root) if it resolves inside one of `roots`.

    `roots` default to the data dir. Every symlink on the way is resolved (the
    path need not exist yet), so `..` components, absolute paths and links
    that leave the roots all fail with `PathEscapeError`, whose message names
    `what` the path was derived from and where it leads. Returns the
    absolute, unresolved path (the name the caller uses), known to be confined.
    """
    root_list = [Path(r) for r in (roots if roots is not None else [data_dir()])]
    if not root_list:
        raise PathEscapeError(f"{what}: no roots to confine {path!r} to")
    raw = os.fspath(path)
    if "\x00" in raw:
        raise PathEscapeError(f"{what}: {raw!r} contains a NUL byte")
    p = Path(raw)
    if not p.is_absolute():
        p = root_list[0] / p
    real = os.path.realpath(p)
    real_roots = [os.path.realpath(r) for r in root_list]
    if not any(_within(real, r) for r in real_roots):
        shown = ", ".join(str(r) for r in root_list)
        raise PathEscapeError(f"{what}: {raw!r} resolves to {real}, outside {shown}; refused")
    return Path(os.path.abspath(p))


def confined_child(
    parent: str | os.PathLike[str],
    name: str,
    *,
    what: str,
    suffix: str = "",
    roots: Iterable[str | os.PathLike[str]] | None = None,
) -> Path:
    """`parent / (name + suffix)` for a name that came from outside (a partition key, a sample id):
    one plain path component (no separators, not `.` or `..`, no control characters), confined
    to `roots` (default: the data dir)."""
    if not isinstance(name, str) or not name or name in (".", "..") or any(c in name for c in "/\\"):
        raise PathEscapeError(f"{what}: {name!r} is not a plain file or folder name; refused")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise PathEscapeError(f"{what}: {name!r} contains control characters; refused")
    return confine(Path(parent) / f"{name}{suffix}", roots, what=what)


# ---------------------------------------------------------------- hashes


def verify_sha256(path: str | os.PathLike[str], expected: str, recorded_in: str) -> None:
    """Fail unless `path` exists and has the sha256 `expected` (recorded in `recorded_in`)."""
    p = Path(path)
    if not p.is_file():
        raise IntegrityError(f"{p}: missing (listed with sha256 {expected} in {recorded_in})")
    actual = sha256_file(p)
    if actual != expected:
        raise IntegrityError(
            f"{p}: sha256 {actual} does not match {expected} recorded in {recorded_in} "
            "(the file changed after it was written: corrupt, replaced or half-written)"
        )


def hash_files(paths: Sequence[Path]) -> list[str]:
    """sha256 of each file, in order (a few threads for many files)."""
    if len(paths) < 8:
        return [sha256_file(p) for p in paths]
    with ThreadPoolExecutor(HASH_THREADS) as pool:
        return list(pool.map(sha256_file, paths))


def fingerprint(obj: Any) -> str:
    """sha256 of a JSON-able configuration (sorted keys): the config a partition was written with."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


# ---------------------------------------------------------------- manifests


def _root(root: str | os.PathLike[str] | None) -> Path:
    return Path(root) if root is not None else data_dir()


def manifest_path(asset: str, partition: str | None = None, root: str | os.PathLike[str] | None = None) -> Path:
    """Where the manifest of `asset` (one partition of it, or the whole asset) lives under the data dir `root`."""
    base = _root(root)
    folder = confined_child(base / manifests_dir().relative_to(data_dir()), asset, what="asset name", roots=[base])
    name = partition if partition is not None else "_all"
    return confined_child(folder, name, what=f"partition key of {asset}", suffix=".json", roots=[base])


@dataclass(frozen=True)
class Manifest:
    asset: str
    partition: str | None
    path: Path
    files: dict[str, str]  # path relative to the data dir (POSIX) -> sha256
    fingerprint: str
    run_id: str | None
    inputs: dict[str, str] = field(default_factory=dict)  # "<asset>/<partition>" -> manifest digest
    extra: dict[str, Any] = field(default_factory=dict)
    digest: str = ""  # sha256 of the manifest file itself: the generation's identity

    @property
    def label(self) -> str:
        return manifest_label(self.asset, self.partition)


def manifest_label(asset: str, partition: str | None) -> str:
    return f"{asset}/{partition}" if partition is not None else asset


def _rerun_hint(asset: str, partition: str | None) -> str:
    where = f" --partition {partition}" if partition is not None else ""
    return f"re-materialize it: dagster asset materialize -m music_assets.definitions --select {asset}{where}"


def invalidate_manifest(asset: str, partition: str | None = None, root: str | os.PathLike[str] | None = None) -> None:
    """Remove the manifest before changing any file of the partition: until a new one is written,
    readers refuse the partition instead of reading a mix of two generations."""
    path = manifest_path(asset, partition, root)
    try:
        path.unlink()
    except FileNotFoundError:
        return
    from music_assets.io import _fsync_dir  # noqa: PLC0415

    _fsync_dir(path.parent)


def write_manifest(
    asset: str,
    partition: str | None,
    files: Iterable[str | os.PathLike[str]],
    *,
    fingerprint: str,
    run_id: str | None = None,
    inputs: Mapping[str, str] | None = None,
    hashes: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
    root: str | os.PathLike[str] | None = None,
) -> Manifest:
    """Hash `files` (absolute, inside the data dir `root`) and write the partition's manifest, last.

    `hashes` (absolute path -> sha256) skips hashing files whose digest the writer already knows.
    """
    root = _root(root)
    paths = [confine(f, [root], what=f"file of {manifest_label(asset, partition)}") for f in files]
    known = {str(Path(k)): v for k, v in (hashes or {}).items()}
    todo = [p for p in paths if str(p) not in known]
    known.update({str(p): h for p, h in zip(todo, hash_files(todo), strict=True)})
    listed = {p.relative_to(root).as_posix(): known[str(p)] for p in paths}
    doc = {
        "version": MANIFEST_VERSION,
        "asset": asset,
        "partition": partition,
        "fingerprint": fingerprint,
        "run_id": run_id,
        "inputs": dict(sorted((inputs or {}).items())),
        "files": dict(sorted(listed.items())),
        **({"extra": dict(extra)} if extra else {}),
    }
    path = manifest_path(asset, partition, root)
    write_json(path, doc)
    return read_manifest(asset, partition, root)


def _digest(doc: Mapping[str, Any]) -> str:
    """The generation's identity: what was written and from what, not by which run (a byte-identical
    regeneration keeps its digest, so what was made from it stays current)."""
    return fingerprint({k: doc.get(k) for k in ("asset", "partition", "fingerprint", "inputs", "files")})


def read_manifest(asset: str, partition: str | None = None, root: str | os.PathLike[str] | None = None) -> Manifest:
    """The partition's manifest (not its files); IntegrityError when it is missing or unreadable."""
    path = manifest_path(asset, partition, root)
    label = manifest_label(asset, partition)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise IntegrityError(
            f"{label} is incomplete: {path} is missing (the partition was never written, or its last run "
            f"was killed, ran out of disk or failed part-way); {_rerun_hint(asset, partition)}"
        ) from None
    try:
        doc = json.loads(raw)
        files = doc["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{path}: unreadable manifest ({exc}); {_rerun_hint(asset, partition)}") from exc
    return Manifest(
        asset=asset,
        partition=partition,
        path=path,
        files=dict(files),
        fingerprint=str(doc.get("fingerprint", "")),
        run_id=doc.get("run_id"),
        inputs=dict(doc.get("inputs") or {}),
        extra=dict(doc.get("extra") or {}),
        digest=_digest(doc),
    )


def verify_manifest(
    asset: str, partition: str | None = None, *, files: bool = True, root: str | os.PathLike[str] | None = None
) -> Manifest:
    """The partition's manifest, after checking that every file it lists is on disk with its sha256.

    Fails with IntegrityError naming the partition (incomplete) or the first differing file and
    both hashes. `files=False` checks only that the manifest is there (a complete generation).
    """
    m = read_manifest(asset, partition, root)
    if not files:
        return m
    base = _root(root)
    rels = sorted(m.files)
    paths = [confine(base / rel, [base], what=f"file listed in {m.path}") for rel in rels]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise IntegrityError(
            f"{missing[0]}: missing, but listed in {m.path} ({len(missing)} file(s) of {m.label} missing); "
            f"{_rerun_hint(asset, partition)}"
        )
    for rel, p, actual in zip(rels, paths, hash_files(paths), strict=True):
        if actual != m.files[rel]:
            raise IntegrityError(
                f"{p}: sha256 {actual} does not match {m.files[rel]} recorded in {m.path} "
                f"(changed after {m.label} was written: corrupt or replaced); {_rerun_hint(asset, partition)}"
            )
    return m


def check_inputs_current(m: Manifest, reader: str, root: str | os.PathLike[str] | None = None) -> None:
    """Fail when an input `m` records was regenerated since (its manifest's digest changed)."""
    for label, digest in sorted(m.inputs.items()):
        asset, _, partition = label.partition("/")
        current = read_manifest(asset, partition or None, root)
        if current.digest != digest:
            raise IntegrityError(
                f"{m.label} was made from an earlier generation of {label} ({current.path} changed since); "
                f"{_rerun_hint(m.asset, m.partition)} before {reader}"
            )


def remove_manifest(asset: str, partition: str | None = None, root: str | os.PathLike[str] | None = None) -> None:
    """Drop the manifest of a partition that no longer exists (its files were removed)."""
    try:
        manifest_path(asset, partition, root).unlink()
    except FileNotFoundError:
        pass


def rekey_manifest(asset: str, old: str, new: str, *, root: str | os.PathLike[str] | None = None) -> Manifest | None:
    """Move a partition's manifest from key `old` to `new` after its files were renamed the same way
    (a path component `old`, or `old.<suffix>`, became `new`...): the files are hashed again under
    their new names, inputs recorded under `old` point at their own re-keyed manifest. None (and no
    manifest under `new`) when `old` had none. The caller verifies the files before renaming them."""
    try:
        m = read_manifest(asset, old, root)
    except IntegrityError:
        return None
    base = _root(root)

    def renamed(part: str) -> str:
        if part == old:
            return new
        return new + part[len(old) :] if part.startswith(old + ".") else part

    files = [base.joinpath(*(renamed(p) for p in Path(rel).parts)) for rel in sorted(m.files)]
    inputs = {}
    for label, digest in m.inputs.items():
        in_asset, _, in_partition = label.partition("/")
        if in_partition == old:
            label, digest = manifest_label(in_asset, new), read_manifest(in_asset, new, root).digest
        inputs[label] = digest
    out = write_manifest(
        asset, new, files, fingerprint=m.fingerprint, run_id=m.run_id, inputs=inputs, extra=m.extra, root=root
    )
    remove_manifest(asset, old, root)
    return out
