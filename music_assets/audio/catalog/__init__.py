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

The package: `walker` (the walk and its fingerprint), `keys` (source keys and
content hashes), `pool` (the analysis process pool), `table` (the catalog
table, incremental reuse, provenance), `reports` (the markdown summaries).
"""

from __future__ import annotations

from music_assets.audio.catalog.keys import KEY_HASH_CHARS, KEY_SLUG_CHARS, LEGACY_KEY, content_hash, slug, source_key
from music_assets.audio.catalog.pool import (
    POOL_MIN_BYTES,
    POOL_MIN_FILES,
    PREFETCH,
    analyze_many,
    analyze_path,
    crashed_row,
    default_workers,
)
from music_assets.audio.catalog.reports import (
    formats_markdown,
    licenses_markdown,
    markdown_table,
    summary,
    worst_files_markdown,
)
from music_assets.audio.catalog.table import (
    ANALYSIS_VERSION,
    COLUMNS,
    ROOTS_METADATA,
    CatalogResult,
    add_provenance,
    build_catalog,
    catalog_schema,
    cataloged_roots,
    load_previous,
    rows_to_table,
)
from music_assets.audio.catalog.walker import (
    APPLEDOUBLE_PREFIX,
    AUDIO_EXTENSIONS,
    EXCLUDED_DIR_NAMES,
    FORMAT_BY_EXTENSION,
    CatalogError,
    Entry,
    WalkStats,
    audio_format,
    escape_name,
    fingerprint,
    odd_name,
    resolve_roots,
    scan,
)

__all__ = [
    "ANALYSIS_VERSION",
    "APPLEDOUBLE_PREFIX",
    "AUDIO_EXTENSIONS",
    "COLUMNS",
    "CatalogError",
    "CatalogResult",
    "EXCLUDED_DIR_NAMES",
    "Entry",
    "FORMAT_BY_EXTENSION",
    "KEY_HASH_CHARS",
    "KEY_SLUG_CHARS",
    "LEGACY_KEY",
    "POOL_MIN_BYTES",
    "POOL_MIN_FILES",
    "PREFETCH",
    "ROOTS_METADATA",
    "WalkStats",
    "add_provenance",
    "analyze_many",
    "analyze_path",
    "audio_format",
    "build_catalog",
    "catalog_schema",
    "cataloged_roots",
    "content_hash",
    "crashed_row",
    "default_workers",
    "escape_name",
    "fingerprint",
    "formats_markdown",
    "licenses_markdown",
    "load_previous",
    "markdown_table",
    "odd_name",
    "resolve_roots",
    "rows_to_table",
    "scan",
    "slug",
    "source_key",
    "summary",
    "worst_files_markdown",
]
