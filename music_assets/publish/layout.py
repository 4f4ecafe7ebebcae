"""The staging folder's layout: names, shard file names, listings and hashes.

```
hf_staging/
  README.md                                        dataset card (YAML front matter + text)
  data/<family>/{split}-NNNNN-of-NNNNN.parquet     one row per sample, audio and MIDI embedded
  auxiliary/<table>/{split}-NNNNN-of-NNNNN.parquet per-stroke and per-cycle labels (strokes, measures)
  audio/<slug>/<sample_id>.flac                    browsable copies of the media (files mode only)
  midi/<slug>/<sample_id>.mid
  plots/*.png                                      figures the card shows
  .deferred/data/<family>/{split}-...parquet       plans of sample shards built at upload (deferred storage)
  .deferred/built.json                             size and hash of each deferred shard once built
```

The card's `configs:` name the parquet files of each subset: `default` (every
family), one per rudiment family present (`roll`, `diddle`, `flam`, `drag`),
and one per auxiliary table, each with one entry per split (`config_data_files`).

Names starting with a dot (the `.partial` files of atomic writes, the
`.deferred/` plans) are never part of the dataset: listings skip them and
uploads ignore them.

With deferred shard storage (a dataset too large to hold its audio twice on
the disk), a sample shard is not on disk: `.deferred/<path>` holds its plan,
the same rows without the media bytes, and the shard is built from it just
before it is uploaded. The listings below (`folder_shards` and the functions
built on it) return such a shard's path all the same; `shard_file` is the
file to read for it (the plan when deferred).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from music_assets.rudiments.constants import SPLITS
from music_assets.rudiments.library import CATEGORIES

FAMILIES = CATEGORIES  # PAS rudiment families, one subset each
DEFAULT_CONFIG = "default"

CARD = "README.md"
DATA = "data"
AUDIO = "audio"
MIDI = "midi"
AUXILIARY = "auxiliary"
PLOTS = "plots"
AUXILIARY_TABLES = ("strokes", "measures")
SCORE_PLOT = f"{PLOTS}/score_distributions_by_tier.png"
RUDIMENT_PLOT = f"{PLOTS}/samples_per_rudiment.png"
# Files the Hub creates itself; they are not part of the staged dataset.
HUB_MANAGED = frozenset({".gitattributes"})
DEFERRED = ".deferred"
BUILT_RECORD = f"{DEFERRED}/built.json"

_SHARD = re.compile(r"^(?P<split>[a-z_]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet$")


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def parse_shard_name(name: str) -> tuple[str, int, int] | None:
    """(split, index, count) of a data file name, or None when it is not a shard name."""
    m = _SHARD.match(name)
    if not m:
        return None
    return m["split"], int(m["index"]), int(m["count"])


def shard_path(folder: str, split: str, index: int, count: int) -> str:
    """`<folder>/{split}-NNNNN-of-NNNNN.parquet`, relative to staging (folder e.g. `data/flam`)."""
    return f"{folder}/{shard_name(split, index, count)}"


def family_dir(family: str) -> str:
    return f"{DATA}/{family}"


def auxiliary_dir(table: str) -> str:
    return f"{AUXILIARY}/{table}"


def _by_split(paths: list[Path]) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for p in paths:
        parsed = parse_shard_name(p.name)
        if parsed:
            found.setdefault(parsed[0], []).append(p)
    order = {s: i for i, s in enumerate(SPLITS)}
    return dict(sorted(found.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def deferred_path(staging: Path, rel: str) -> Path:
    """Where the plan of the deferred shard `rel` lives."""
    return staging / DEFERRED / rel


def deferred_shards(staging: Path) -> list[str]:
    """The paths (relative to staging) of every deferred sample shard, sorted."""
    root = staging / DEFERRED
    return sorted(p.relative_to(root).as_posix() for p in (root / DATA).rglob("*.parquet")) if root.is_dir() else []


def shard_file(staging: Path, rel: str) -> Path:
    """The file to read for the shard `rel`: its plan when it is deferred, else the shard itself."""
    planned = deferred_path(staging, rel)
    return planned if planned.is_file() else staging / rel


def folder_shards(staging: Path, folder: str) -> dict[str, list[Path]]:
    """The shards of `staging/folder` (on disk or deferred), by split (split order, then name order)."""
    names = {p.name for p in (staging / folder).glob("*.parquet")}
    names |= {p.name for p in deferred_path(staging, folder).glob("*.parquet")}
    return _by_split([staging / folder / n for n in sorted(names)])


def family_shards(staging: Path) -> dict[str, dict[str, list[Path]]]:
    """{family: {split: shards}} of the sample shards under `data/`, families in PAS order."""
    names = sorted(
        {
            d.name
            for root in (staging / DATA, deferred_path(staging, DATA))
            if root.is_dir()
            for d in root.iterdir()
            if d.is_dir()
        }
    )
    names.sort(key=lambda f: (FAMILIES.index(f) if f in FAMILIES else len(FAMILIES), f))
    return {f: shards for f in names if (shards := folder_shards(staging, family_dir(f)))}


def split_shards(staging: Path) -> dict[str, list[Path]]:
    """The sample shards of each split across every family, in split, family, then index order."""
    merged: dict[str, list[Path]] = {}
    for shards in family_shards(staging).values():
        for split, paths in shards.items():
            merged.setdefault(split, []).extend(paths)
    order = {s: i for i, s in enumerate(SPLITS)}
    return dict(sorted(merged.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def config_data_files(config: str, split: str) -> str:
    """The `data_files` path pattern of one config's split in the card (relative to the repository root)."""
    if config == DEFAULT_CONFIG:
        folder = f"{DATA}/*"
    elif config in AUXILIARY_TABLES:
        folder = auxiliary_dir(config)
    else:
        folder = family_dir(config)
    return f"{folder}/{split}-*.parquet"


def is_hidden(relpath: str) -> bool:
    return any(part.startswith(".") for part in relpath.split("/"))


def list_files(root: Path) -> dict[str, int]:
    """{POSIX path relative to `root`: size} of every regular file, hidden names skipped."""
    out: dict[str, int] = {}
    if not root.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        base = Path(dirpath)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            p = base / name
            rel = p.relative_to(root).as_posix()
            out[rel] = p.stat().st_size
    return out


def size_category(n: int) -> str:
    """The Hub's `size_categories` bucket for `n` rows."""
    bounds = [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
        (1_000_000_000, "100M<n<1B"),
    ]
    for bound, label in bounds:
        if n < bound:
            return label
    return "n>1B"


def git_blob_sha1(path: Path, chunk: int = 1 << 20) -> str:
    """The git object id of a file's content (what the Hub reports for files not stored in LFS/Xet)."""
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
