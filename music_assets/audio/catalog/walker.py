"""The walk over the catalog roots (`scan`), the names it sets aside, and its `fingerprint`."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".aif", ".aiff", ".mp3", ".ogg", ".oga", ".opus"})
EXCLUDED_DIR_NAMES = frozenset({".git", ".venv", "venv"})
FORMAT_BY_EXTENSION = {".aif": "aiff", ".oga": "ogg"}


# Copies from macOS leave a "._name.wav" beside "name.wav" holding Finder metadata.
APPLEDOUBLE_PREFIX = "._"


class CatalogError(ValueError):
    """A configuration problem (a root that does not exist); bad files never raise."""


@dataclass(frozen=True)
class Entry:
    """One audio-named path found by the walk."""

    root: str
    rel_path: str
    path: str
    size: int | None = None
    mtime_ns: int | None = None
    status: str | None = None  # set when the walk decides: "skipped" or "error"
    error: str | None = None
    sidecar: str | None = None  # the provenance sidecar JSON beside the file, if any
    sidecar_stamp: tuple[int, int] | None = None  # its (size, mtime_ns)
    sidecar_error: str | None = None  # why the sidecar is not read (a link that leaves the roots)


@dataclass
class WalkStats:
    folders: int = 0
    excluded: list[str] = field(default_factory=list)
    unreadable_folders: list[str] = field(default_factory=list)
    links_not_followed: list[str] = field(default_factory=list)
    provenance_csv: dict[str, tuple[int, int]] = field(default_factory=dict)  # root -> (size, mtime_ns)
    provenance_csv_errors: dict[str, str] = field(default_factory=dict)  # root -> why its CSV is not read


def audio_format(name: str) -> str | None:
    ext = os.path.splitext(name)[1].lower()
    if ext not in AUDIO_EXTENSIONS:
        return None
    return FORMAT_BY_EXTENSION.get(ext, ext[1:])


def _is_within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip(os.sep) + os.sep)


def odd_name(name: str) -> str | None:
    """Why a file name cannot be stored as it is (not valid UTF-8, control characters), or None."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "the path is not valid UTF-8"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "the path contains a control character (newline, tab, ...)"
    return None


def escape_name(name: str) -> str:
    """A printable, valid UTF-8 rendering of any file name: undecodable bytes as \\xNN, control
    characters as \\n, \\t or \\xNN. Names that are fine are returned unchanged."""
    if odd_name(name) is None:
        return name
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    special = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return "".join(special.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 32 or ord(c) == 127 else c) for c in text)


class _Walker:
    def __init__(self, roots: Sequence[str], excluded: Iterable[str | os.PathLike[str]]):
        self.roots = roots
        self.excluded = [os.path.realpath(p) for p in excluded]
        self.visited_dirs: set[str] = set()
        # real folders reached through a folder link under a root (a linked library): their own
        # sidecars are read like those under a root; a sidecar that links out of both is not
        self.linked_dirs: list[str] = []
        self.seen_files: dict[str, str] = {}
        self.entries: list[Entry] = []
        self.links: list[tuple[str, str, str]] = []  # (root, rel_path, path)
        self.stats = WalkStats()

    def _excluded_dir(self, name: str, real: str) -> bool:
        return (
            name in EXCLUDED_DIR_NAMES
            or any(_is_within(real, e) for e in self.excluded)
            or os.path.exists(os.path.join(real, "pyvenv.cfg"))
        )

    def _file(
        self, root: str, rel: str, path: str, real: str, st: os.stat_result, names: dict[str, Any] | None = None
    ) -> None:
        first = self.seen_files.get(real)
        if first is not None:
            self.entries.append(
                Entry(root, rel, path, st.st_size, st.st_mtime_ns, "skipped", f"duplicate: another name for {first}")
            )
            return
        self.seen_files[real] = os.path.join(root, rel)
        sidecar, stamp, problem = _find_sidecar(path, names, [*self.roots, *self.linked_dirs])
        self.entries.append(
            Entry(
                root,
                rel,
                path,
                st.st_size,
                st.st_mtime_ns,
                sidecar=sidecar,
                sidecar_stamp=stamp,
                sidecar_error=problem,
            )
        )

    def walk_dir(self, root: str, rel_dir: str, real_dir: str) -> None:
        stack = [(rel_dir, real_dir)]
        while stack:
            rel_dir, real_dir = stack.pop()
            if real_dir in self.visited_dirs:
                continue
            self.visited_dirs.add(real_dir)
            self.stats.folders += 1
            try:
                with os.scandir(real_dir) as it:
                    items = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                self.stats.unreadable_folders.append(f"{escape_name(os.path.join(root, rel_dir))} ({exc.strerror})")
                continue
            subdirs = []
            names = {item.name: item for item in items}
            for item in items:
                rel = f"{rel_dir}/{item.name}" if rel_dir else item.name
                fmt = audio_format(item.name)
                if item.is_symlink():
                    self.links.append((root, rel, item.path))
                    continue
                try:
                    st = item.stat(follow_symlinks=False)
                except OSError as exc:
                    if fmt:
                        self.entries.append(
                            Entry(root, rel, item.path, status="error", error=f"cannot stat: {exc.strerror}")
                        )
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if fmt:
                        self.entries.append(
                            Entry(root, rel, item.path, status="skipped", error="is a directory, not an audio file")
                        )
                    if self._excluded_dir(item.name, item.path):
                        self.stats.excluded.append(escape_name(os.path.join(root, rel)))
                    else:
                        subdirs.append((rel, item.path))
                elif fmt:
                    if item.name.startswith(APPLEDOUBLE_PREFIX):
                        self.entries.append(
                            Entry(
                                root,
                                rel,
                                item.path,
                                st.st_size,
                                st.st_mtime_ns,
                                "skipped",
                                "macOS metadata file (AppleDouble '._' companion), not audio",
                            )
                        )
                    elif stat.S_ISREG(st.st_mode):
                        self._file(root, rel, item.path, item.path, st, names)
                    else:
                        self.entries.append(
                            Entry(
                                root,
                                rel,
                                item.path,
                                status="skipped",
                                error="not a regular file (pipe, socket or device)",
                            )
                        )
            stack.extend(reversed(subdirs))

    def follow_links(self) -> None:
        i = 0
        while i < len(self.links):  # following a folder link may queue further links
            root, rel, path = self.links[i]
            i += 1
            audio = audio_format(rel) is not None
            try:
                real = os.path.realpath(path, strict=True)
                st = os.stat(real)
            except OSError as exc:
                reason = "symlink loop" if exc.errno == errno.ELOOP else "broken symlink: the target does not exist"
                self._not_followed(root, rel, path, audio, reason)
                continue
            # Followed wherever it resolves (a library linked into a root); only the part of the
            # target's path inside a root (or, outside the roots, its own name) is checked for
            # excluded folder names, so a library under someone's "venv" folder is still read.
            target_root = next((r for r in self.roots if _is_within(real, r)), None)
            inside = Path(os.path.relpath(real, target_root)).parts if target_root else (os.path.basename(real),)
            excluded = any(_is_within(real, e) for e in self.excluded) or set(inside) & EXCLUDED_DIR_NAMES
            if excluded or (stat.S_ISDIR(st.st_mode) and os.path.exists(os.path.join(real, "pyvenv.cfg"))):
                self._not_followed(root, rel, path, audio, "symlink resolves into an excluded folder")
                continue
            if stat.S_ISDIR(st.st_mode):
                if real in self.visited_dirs:
                    self._not_followed(root, rel, path, audio, "symlink to a folder already cataloged (alias or loop)")
                    continue
                if audio:
                    self.entries.append(
                        Entry(root, rel, path, status="skipped", error="is a directory, not an audio file")
                    )
                self.linked_dirs.append(real)
                self.walk_dir(root, rel, real)
            elif audio:
                if stat.S_ISREG(st.st_mode):
                    self._file(root, rel, path, real, st)
                else:
                    self.entries.append(
                        Entry(root, rel, path, status="skipped", error="not a regular file (pipe, socket or device)")
                    )

    def _not_followed(self, root: str, rel: str, path: str, audio: bool, reason: str) -> None:
        if audio:
            self.entries.append(Entry(root, rel, path, status="skipped", error=reason))
        else:
            self.stats.links_not_followed.append(f"{escape_name(os.path.join(root, rel))} ({reason})")


def _find_sidecar(
    path: str, names: dict[str, Any] | None, roots: Sequence[str] = ()
) -> tuple[str | None, tuple[int, int] | None, str | None]:
    """The first sidecar candidate beside `path` that is a regular file, its (size, mtime_ns), and
    why it must not be read (it resolves outside `roots`, through a link), or None.

    `names`: the folder's listing (os.DirEntry by name) when the walk has it, so
    only existing candidates cost a stat.
    """
    from music_assets.audio.provenance import sidecar_candidates  # noqa: PLC0415
    from music_assets.integrity import PathEscapeError, confine  # noqa: PLC0415

    folder, name = os.path.split(path)
    for candidate in sidecar_candidates(name):
        if names is not None and candidate not in names:
            continue
        full = os.path.join(folder, candidate)
        try:
            st = os.stat(full)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            problem = None
            if roots:
                try:
                    confine(full, roots, what=f"sidecar {candidate}")
                except PathEscapeError:
                    problem = "is a link that resolves outside the catalog roots; not read"
            return full, (st.st_size, st.st_mtime_ns), problem
    return None, None, None


def resolve_roots(roots: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Real absolute paths of the roots, in order, without repeats; CatalogError if one is missing."""
    out: list[str] = []
    for r in roots:
        real = os.path.realpath(os.path.expanduser(os.fspath(r)))
        if not os.path.isdir(real):
            raise CatalogError(f"{r}: catalog root does not exist or is not a folder")
        if real not in out:
            out.append(real)
    if not out:
        raise CatalogError("no catalog roots given")
    return out


def scan(
    roots: Iterable[str | os.PathLike[str]], excluded: Iterable[str | os.PathLike[str]] = ()
) -> tuple[list[Entry], WalkStats]:
    """Walk the roots (see the module docstring); entries sorted by (root order, rel_path)."""
    real_roots = resolve_roots(roots)
    walker = _Walker(real_roots, excluded)
    for root in real_roots:
        walker.walk_dir(root, "", root)
    walker.follow_links()
    from music_assets.audio.provenance import CSV_NAME  # noqa: PLC0415
    from music_assets.integrity import PathEscapeError, confine  # noqa: PLC0415

    for root in real_roots:
        try:
            st = os.stat(os.path.join(root, CSV_NAME))
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            walker.stats.provenance_csv[root] = (st.st_size, st.st_mtime_ns)
            try:
                confine(os.path.join(root, CSV_NAME), real_roots, what=CSV_NAME)
            except PathEscapeError:
                walker.stats.provenance_csv_errors[root] = (
                    f"{CSV_NAME}: is a link that resolves outside the catalog roots; not read"
                )
    entries = [_odd_entry(e) for e in walker.entries]
    order = {r: i for i, r in enumerate(real_roots)}
    entries.sort(key=lambda e: (order[e.root], e.rel_path))
    return entries, walker.stats


def _odd_entry(e: Entry) -> Entry:
    """`e`, or for a path that cannot be stored as it is, a skipped entry with the name escaped."""
    reason = odd_name(e.rel_path)
    if reason is None:
        return e
    return Entry(
        e.root,
        escape_name(e.rel_path),
        e.path,
        e.size,
        e.mtime_ns,
        "skipped",
        f"{reason} (shown escaped); rename the file to catalog it",
    )


def fingerprint(entries: Iterable[Entry], stats: WalkStats | None = None) -> str:
    """A hash of what the walk saw (paths, sizes, mtimes, walk verdicts, provenance sidecars and
    provenance.csv files): it changes when a file or its provenance does."""
    h = hashlib.sha256()

    def put(text: str) -> None:  # a path with bytes that are not UTF-8 is hashed as its bytes, never an error
        h.update(text.encode("utf-8", "surrogateescape"))

    for e in entries:
        put(f"{e.root}\x1f{e.rel_path}\x1f{e.size}\x1f{e.mtime_ns}\x1f{e.status}")
        put(f"\x1f{e.sidecar}\x1f{e.sidecar_stamp}\x1e")
    for root, stamp in sorted((stats.provenance_csv if stats else {}).items()):
        put(f"csv\x1f{root}\x1f{stamp}\x1e")
    return h.hexdigest()
