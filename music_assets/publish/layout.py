"""The staging folder's layout: names, shard file names, listings and hashes.

```
hf_staging/
  README.md                                   dataset card (YAML front matter + text)
  data/{split}-NNNNN-of-NNNNN.parquet         one row per sample
  audio/<slug>/<sample_id>.flac               media (file mode only)
  midi/<slug>/<sample_id>.mid
  auxiliary/strokes.parquet, measures.parquet per-stroke and per-cycle labels
  plots/*.png                                 figures the card shows
```

Names starting with a dot (the `.partial` files of atomic writes) are never
part of the dataset: listings skip them and uploads ignore them.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from music_assets.rudiments.constants import SPLITS

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

_SHARD = re.compile(r"^(?P<split>[a-z_]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet$")


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def parse_shard_name(name: str) -> tuple[str, int, int] | None:
    """(split, index, count) of a data file name, or None when it is not a shard name."""
    m = _SHARD.match(name)
    if not m:
        return None
    return m["split"], int(m["index"]), int(m["count"])


def split_shards(staging: Path) -> dict[str, list[Path]]:
    """The data shards of each split present in `staging`, in split then index order."""
    found: dict[str, list[Path]] = {}
    for p in sorted((staging / DATA).glob("*.parquet")):
        parsed = parse_shard_name(p.name)
        if parsed:
            found.setdefault(parsed[0], []).append(p)
    order = {s: i for i, s in enumerate(SPLITS)}
    return dict(sorted(found.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


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
