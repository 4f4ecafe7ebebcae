"""Print the sha256 of every file `make run` writes, to compare two trees byte for byte.

    python scripts/output_hashes.py > before.txt          # after `make run`
    python scripts/output_hashes.py --compare before.txt  # later: lists every file that differs

The data dir is `$MUSIC_ASSETS_DATA_DIR` (default `data/` in the checkout). The
checked-in inputs (`raw_audio/`), the Dagster instance (`dagster_home/`), the
run logs (`logs/`) and the partition lock files (`.locks/`: the pid and run of
their last writer) are left out: they hold run ids and timestamps, not outputs.
Known to differ between two runs of the same code: the manifests (they record
the id of the run that wrote the partition). The Hub staging shards identify
their media by the sha256 the partitions' manifests recorded, so they are the
same bytes in every run (their footer held the rendered files' modification
times before).
One line per file: `<sha256>  <bytes>  <path relative to the data dir>`, sorted by path.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

SKIP_TOP = {"raw_audio", "dagster_home", "logs", ".locks"}


def data_root() -> Path:
    return Path(os.environ.get("MUSIC_ASSETS_DATA_DIR") or Path(__file__).resolve().parent.parent / "data").resolve()


def file_hashes(root: Path) -> dict[str, tuple[str, int]]:
    """{relative path: (sha256, size)} of every regular file under `root`, outside SKIP_TOP."""
    out: dict[str, tuple[str, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if rel_dir == Path("."):
            dirnames[:] = [d for d in dirnames if d not in SKIP_TOP]
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            out[str(rel_dir / name)] = (h.hexdigest(), path.stat().st_size)
    return dict(sorted(out.items()))


def read_listing(path: Path) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for line in path.read_text().splitlines():
        digest, size, rel = line.split("  ", 2)
        out[rel] = (digest, int(size))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="data dir (default: $MUSIC_ASSETS_DATA_DIR or data/)")
    parser.add_argument("--compare", type=Path, default=None, help="a listing printed earlier: report differences")
    args = parser.parse_args(argv)
    root = (args.root or data_root()).resolve()
    now = file_hashes(root)
    if args.compare is None:
        for rel, (digest, size) in now.items():
            print(f"{digest}  {size}  {rel}")
        return 0
    before = read_listing(args.compare)
    changed = sorted(k for k in before.keys() & now.keys() if before[k][0] != now[k][0])
    missing, added = sorted(before.keys() - now.keys()), sorted(now.keys() - before.keys())
    for label, keys in (("differs", changed), ("missing", missing), ("new", added)):
        for k in keys:
            print(f"{label}: {k}")
    same = len(before.keys() & now.keys()) - len(changed)
    print(f"{same} identical, {len(changed)} differ, {len(missing)} missing, {len(added)} new", file=sys.stderr)
    return 1 if changed or missing or added else 0


if __name__ == "__main__":
    raise SystemExit(main())
