"""The audio catalog: every audio file under some roots, measured, with a stable id.

The walk (`scan`)
    Each root is walked with `os.scandir`, in name order. Folders named `.git`,
    `.venv` or `venv`, folders holding a `pyvenv.cfg` (virtual environments)
    and the given excluded folders (the data dir's generated outputs) are not
    entered. Symlinks are set aside and resolved after every root's real tree
    has been walked, so a file reached both directly and through a link is
    cataloged under its real path. A symlink under a root is followed wherever
    it resolves (linking a music library into a root catalogs it, under the
    link's path), except into an excluded folder; folders are tracked by their
    resolved real path, so each real folder and file is cataloged once: a link
    back to an ancestor (a loop) or to a folder already walked is refused. A
    root nested in another is cataloged once, under the first.

Rows
    One row per name with an audio extension (`AUDIO_EXTENSIONS`). Besides the
    measurements of `music_assets.audio.analysis`, `status` is `ok`, `error`
    (the file is there but cannot be read or decoded whole) or `skipped` (the
    walk does not analyse it: a folder or pipe with an audio name, a macOS
    `._` metadata companion, a link that loops, dangles or leads into an
    excluded folder, a second name for a file already cataloged, a name that
    is not valid UTF-8 or holds a control character such as a newline);
    `error` holds the reason for every non-ok row.

File names are data
    A name that is not valid UTF-8 (a `\xff` byte from another system) or
    holds control characters gets its row like any other file, `skipped` with
    the reason, its `rel_path` escaped (`bad\xffname.wav`, `line\nbreak.wav`)
    so that the table, the logs and the UI can hold it; it never fails the
    catalog or the raw-audio sensor. Rename the file to catalog it.

Identity
    `source_id` is the key a person recognises: the slug of the file's stem
    and 6 hex digits of a hash of its root-relative POSIX path
    (`bounces/funk_groove_96bpm.mp3` -> `funk-groove-96bpm-8507e2`;
    `source_key`). It depends on nothing machine-specific and not on the
    bytes, so an edited file keeps its key (and its partitions) and the same
    folder gives the same keys on every machine. When two roots hold the same
    relative path with the same bytes, the later row is `skipped` as a
    duplicate and has no id; with other bytes (or, rarely, when two paths'
    keys collide) the later row's hash also covers its root's folder name.

Incremental runs
    A row from the previous catalog is reused without reading the file when
    root, rel_path, size and mtime (ns) all match and it was produced by the
    same `ANALYSIS_VERSION` (`analyzed` marks such rows). Rows the walk decided
    (skipped) and files that could not be opened (a chmod fixes those without
    touching size or mtime) are always looked at again. Files to analyse go to
    a process pool (`analyze_many`: spawned workers, one per core, one BLAS
    thread each); a file that crashes its worker becomes an error row.
    `progress(done, total)` (`music_assets.progress`) counts the files analysed.

Provenance
    The walk notes each file's sidecar JSON and each root's provenance.csv
    (`music_assets.audio.provenance`); the analysis reads the file's tags.
    The provenance columns are recomputed on every run, reused rows included,
    so a sidecar edit never needs the audio decoded again; the tags are
    reused with the rest of the analysis (they change only with the file).
    `fingerprint` covers sidecars and provenance.csv files too.
"""

from __future__ import annotations

import errno
import hashlib
import json
import multiprocessing
import os
import re
import stat
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing import connection as mp_connection
from pathlib import Path
from typing import Any

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".aif", ".aiff", ".mp3", ".ogg", ".oga", ".opus"})
EXCLUDED_DIR_NAMES = frozenset({".git", ".venv", "venv"})
FORMAT_BY_EXTENSION = {".aif": "aiff", ".oga": "ogg"}
# Copies from macOS leave a "._name.wav" beside "name.wav" holding Finder metadata.
APPLEDOUBLE_PREFIX = "._"
# Bump when a measurement changes meaning: catalogs written by another version are not reused.
ANALYSIS_VERSION = "2"  # 2: file tags (tag_title, tag_artist, tag_license)
# A spawned worker takes a second or more to import numpy/scipy: pool only for real work.
POOL_MIN_FILES = 32
POOL_MIN_BYTES = 64 << 20
PREFETCH = 8  # paths waiting in each worker's pipe
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

COLUMNS: tuple[tuple[str, str], ...] = (
    ("source_id", "string"),
    ("root", "string"),
    ("rel_path", "string"),
    ("format", "string"),
    ("status", "string"),
    ("error", "string"),
    ("duration_sec", "float64"),
    ("sample_rate", "int32"),
    ("channels", "int32"),
    ("frames", "int64"),
    ("subtype", "string"),
    ("file_size_bytes", "int64"),
    ("mtime", "timestamp"),
    ("mtime_ns", "int64"),
    ("peak_dbfs", "float64"),
    ("rms_dbfs", "float64"),
    ("clipped_ratio", "float64"),
    ("silence_ratio", "float64"),
    ("loudness_lufs", "float64"),
    ("content_hash", "string"),
    ("analyzed", "bool"),
    # provenance (music_assets.audio.provenance): recomputed on every run, never reused
    ("provider", "string"),
    ("license", "string"),
    ("author", "string"),
    ("url", "string"),
    ("acquired", "date32"),
    ("cost", "float64"),
    ("provenance_source", "string"),
    ("provenance_error", "string"),
    ("sidecar", "string"),
    # tags read from the file by the analysis (reused with it: they change only with the file)
    ("tag_title", "string"),
    ("tag_artist", "string"),
    ("tag_license", "string"),
)
_MEASURES = (
    "duration_sec",
    "sample_rate",
    "channels",
    "frames",
    "subtype",
    "peak_dbfs",
    "rms_dbfs",
    "clipped_ratio",
    "silence_ratio",
    "loudness_lufs",
)


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


def content_hash(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


KEY_SLUG_CHARS = 48  # the slug part of a source key, at most
KEY_HASH_CHARS = 6
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
LEGACY_KEY = re.compile(r"^[0-9a-f]{16}$")  # the ids before readable keys: hash of path and bytes


def slug(text: str) -> str:
    """Lower-case ASCII letters and digits joined by single dashes (accents dropped); "" if none."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")[:KEY_SLUG_CHARS].strip("-")


def source_key(rel_path: str, salt: str = "") -> str:
    """A source's id and partition key: the slug of its file stem and a short hash of its
    root-relative path (`salt`, when given, goes into the hash too); safe as a file name."""
    from music_assets.seeding import stable_id  # noqa: PLC0415

    stem = slug(os.path.splitext(rel_path.rsplit("/", 1)[-1])[0]) or "track"
    digest = stable_id("audio-source-path", rel_path, salt, length=KEY_HASH_CHARS)
    return f"{stem}-{digest}"


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
    return max(1, os.cpu_count() or 1)


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


@dataclass
class CatalogResult:
    rows: list[dict[str, Any]]
    roots: list[str]
    stats: WalkStats
    reused: int
    analyzed: int
    seconds: float

    def table(self):
        """The rows as a pyarrow Table with the catalog schema; its metadata names the roots walked."""
        table = rows_to_table(self.rows)
        return table.replace_schema_metadata({**table.schema.metadata, ROOTS_METADATA: json.dumps(self.roots)})


ROOTS_METADATA = b"music_assets.roots"


def cataloged_roots(path: str | os.PathLike[str]) -> list[str] | None:
    """The roots a written catalog was made from (real paths); None without a readable catalog."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    try:
        meta = pq.read_schema(path).metadata or {}
        return list(json.loads(meta[ROOTS_METADATA]))
    except (OSError, KeyError, ValueError, TypeError):
        return None


def catalog_schema():
    """The pyarrow schema of audio_catalog.parquet."""
    import pyarrow as pa  # noqa: PLC0415

    types = {
        "string": pa.string(),
        "float64": pa.float64(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "bool": pa.bool_(),
        "date32": pa.date32(),
        "timestamp": pa.timestamp("ns", tz="UTC"),
    }
    return pa.schema(
        [(name, types[t]) for name, t in COLUMNS], metadata={"music_assets.analysis_version": ANALYSIS_VERSION}
    )


def rows_to_table(rows: list[dict[str, Any]]):
    import pyarrow as pa  # noqa: PLC0415

    schema = catalog_schema()
    columns = {name: [r.get(name) for r in rows] for name in schema.names}
    columns["mtime"] = pa.array(columns["mtime_ns"], type=pa.int64()).cast(schema.field("mtime").type)
    return pa.table({n: pa.array(v, type=schema.field(n).type) for n, v in columns.items()}, schema=schema)


def load_previous(path: str | os.PathLike[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """Reusable rows of an earlier catalog, by (root, rel_path); empty if none or another version."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    if not os.path.exists(path):
        return {}
    try:
        table = pq.read_table(path)
    except Exception:  # noqa: BLE001 - an unreadable previous catalog only costs a full re-analysis
        return {}
    meta = table.schema.metadata or {}
    if meta.get(b"music_assets.analysis_version") != ANALYSIS_VERSION.encode():
        return {}
    if set(table.column_names) != {name for name, _ in COLUMNS}:
        return {}
    table = table.drop_columns(["mtime"])
    return {(r["root"], r["rel_path"]): r for r in table.to_pylist() if r["analyzed"]}


def _row_from_entry(e: Entry, **extra: Any) -> dict[str, Any]:
    row = {name: None for name, _ in COLUMNS if name != "mtime"}  # mtime is derived from mtime_ns
    row.update(
        root=e.root,
        rel_path=e.rel_path,
        format=audio_format(e.rel_path),
        status=e.status,
        error=e.error,
        file_size_bytes=e.size,
        mtime_ns=e.mtime_ns,
        analyzed=False,
    )
    row.update(extra)
    return row


def build_catalog(
    roots: Iterable[str | os.PathLike[str]],
    *,
    previous: dict[tuple[str, str], dict[str, Any]] | None = None,
    excluded: Iterable[str | os.PathLike[str]] = (),
    workers: int = 0,
    progress: Callable[..., None] | None = None,
) -> CatalogResult:
    """Walk, reuse unchanged rows from `previous`, analyse the rest, assign source ids.

    `progress(done, total)` counts the files analysed of those to analyse (reused rows are not counted).
    """
    started = time.perf_counter()
    entries, stats = scan(roots, excluded)
    previous = previous or {}
    rows: list[dict[str, Any] | None] = []
    todo: list[tuple[int, Entry]] = []
    reused = 0
    for e in entries:
        if e.status:
            rows.append(_row_from_entry(e))
            continue
        old = previous.get((e.root, e.rel_path))
        if old and old["file_size_bytes"] == e.size and old["mtime_ns"] == e.mtime_ns:
            row = dict(old)
            if row["status"] == "skipped":  # an analysed row is only skipped as a duplicate: decided afresh below
                row.update(status="ok", error=None)
            rows.append(row)
            reused += 1
            continue
        todo.append((len(rows), e))
        rows.append(None)
    for (i, e), result in zip(todo, analyze_many([e.path for _, e in todo], workers, progress=progress), strict=True):
        rows[i] = _row_from_entry(e, **result)
    final = [r for r in rows if r is not None]
    add_provenance(final, entries, stats)
    _assign_source_ids(final)
    return CatalogResult(final, resolve_roots(roots), stats, reused, len(todo), time.perf_counter() - started)


def add_provenance(rows: list[dict[str, Any]], entries: Sequence[Entry], stats: WalkStats) -> None:
    """Set the provenance columns of every row from its sidecar, its root's provenance.csv and its tags.

    Recomputed on every run, reused rows included: a sidecar or CSV edited,
    added or removed shows in the next catalog without decoding the audio again.
    """
    from music_assets.audio import provenance as pv  # noqa: PLC0415

    sidecars = {(e.root, e.rel_path): (e.sidecar, e.sidecar_error) for e in entries}
    tables = {
        root: pv.CsvTable({}, {}, stats.provenance_csv_errors[root])
        if root in stats.provenance_csv_errors
        else pv.read_csv(os.path.join(root, pv.CSV_NAME))
        for root in stats.provenance_csv
    }
    for row in rows:
        errors: list[str | None] = []
        sidecar_path, sidecar_error = sidecars.get((row["root"], row["rel_path"]), (None, None))
        sidecar = None
        if sidecar_path and sidecar_error:
            errors.append(f"{escape_name(os.path.basename(sidecar_path))}: {sidecar_error}")
        elif sidecar_path:
            try:
                sidecar = pv.read_sidecar(sidecar_path)
            except pv.ProvenanceError as exc:
                errors.append(f"{os.path.basename(sidecar_path)}: {exc}")
        table = tables.get(row["root"])
        csv_row = None
        if table is not None:
            errors += [table.error_for_all, table.errors.get(row["rel_path"])]
            csv_row = table.rows.get(row["rel_path"])
        tags = {k: row.get(k) for k in pv.TAG_FIELDS}
        row.update(pv.resolve(sidecar, csv_row, tags))
        row["sidecar"] = os.path.relpath(sidecar_path, row["root"]).replace(os.sep, "/") if sidecar_path else None
        row["provenance_error"] = pv.join_errors(errors)


def _assign_source_ids(rows: list[dict[str, Any]]) -> None:
    """Give every row its `source_key`, in row order; see Identity in the module docstring."""
    first: dict[str, dict[str, Any]] = {}
    for r in rows:
        sid = source_key(r["rel_path"])
        other = first.get(sid)
        if other is not None and other["rel_path"] == r["rel_path"] and other["content_hash"] == r["content_hash"]:
            r["source_id"] = None
            if r["status"] == "ok":
                r["status"] = "skipped"
                r["error"] = f"duplicate: same path and content as {os.path.join(other['root'], other['rel_path'])}"
            continue
        n = 1
        while sid in first:  # another file already has the key: hash in the root's name (and a count)
            n += 1
            salt = os.path.basename(r["root"]) + (f"#{n}" if n > 2 else "")
            sid = source_key(r["rel_path"], salt)
        first[sid] = r
        r["source_id"] = sid


def _md_cell(value: Any) -> str:
    if value is None or value != value:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts for the UI: files, per status, total hours of readable audio."""
    by_status = {s: sum(1 for r in rows if r["status"] == s) for s in ("ok", "error", "skipped")}
    hours = sum(r["duration_sec"] or 0.0 for r in rows if r["status"] == "ok") / 3600.0
    return {"files": len(rows), **by_status, "total_hours": hours}


def formats_markdown(rows: Sequence[dict[str, Any]]) -> str:
    formats = sorted({r["format"] for r in rows})
    table = []
    for f in formats:
        of = [r for r in rows if r["format"] == f]
        ok = [r for r in of if r["status"] == "ok"]
        table.append(
            (
                f,
                len(of),
                len(ok),
                sum(r["status"] == "error" for r in of),
                sum(r["status"] == "skipped" for r in of),
                round(sum(r["duration_sec"] for r in ok) / 3600, 3),
            )
        )
    return markdown_table(("format", "files", "ok", "errors", "skipped", "hours"), table)


def worst_files_markdown(rows: Sequence[dict[str, Any]], limit: int = 10) -> str:
    """Errors first, then skipped rows, then readable files by clipping, then silence."""
    rank = {"error": 0, "skipped": 1, "ok": 2}

    def key(r: dict[str, Any]) -> tuple:
        return (rank[r["status"]], -(r["clipped_ratio"] or 0.0), -(r["silence_ratio"] or 0.0), r["rel_path"])

    worst = sorted(rows, key=key)[:limit]
    return markdown_table(
        ("file", "status", "problem", "duration s", "clipped", "silence", "LUFS"),
        [
            (
                r["rel_path"],
                r["status"],
                r["error"],
                r["duration_sec"],
                r["clipped_ratio"],
                r["silence_ratio"],
                r["loudness_lufs"],
            )
            for r in worst
        ],
    )


def licenses_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Files and readable hours per license, and where the provenance came from."""
    table = []
    for lic in sorted({r["license"] or "unknown" for r in rows}):
        of = [r for r in rows if (r["license"] or "unknown") == lic]
        ok = [r for r in of if r["status"] == "ok"]
        sources = ", ".join(sorted({r["provenance_source"] or "none" for r in of}))
        table.append((lic, len(of), len(ok), round(sum(r["duration_sec"] for r in ok) / 3600, 3), sources))
    return markdown_table(("license", "files", "ok", "hours", "from"), table)
