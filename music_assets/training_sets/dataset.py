"""Building a training set: split, both layouts, hash, summary; built aside and swapped in.

```
<data dir>/training_sets/<name>/
  summary.json                 counts (train/validation, per style and category), duration, hash, config
  tracks.json                  one entry per track: stem, source, split, style, the annotations, audio sha256
  ace_step_v1/train/           <stem>.flac + <stem>_prompt.txt + <stem>_lyrics.txt
  ace_step_v1/validation/
  ace_step_v1/train_hf/        the converter's Hugging Face dataset (save_to_disk), rows x repeat
  ace_step_v1/validation_hf/   the same, once each
  ace_step_v15/train/          <stem>.flac + .lyrics.txt + .caption.txt + .json, key_bpm.csv
  ace_step_v15/validation/
```

Split: `validation_fraction` of the tracks (at least one; a set needs two tracks), chosen by a
stable hash of (seed, stem): the same tracks and seed give the same split whatever their order.
Hash: sha256 over the sorted tracks' audio hash, split and every annotation a trainer sees, and
the config that shapes the files (repeat, audio format), never over paths: the same inputs in
another data dir give the same hash.

Atomic: everything is written under `training_sets/.staging/<name>.<token>/`, then swapped in by
renaming (the old set moved aside first, deleted after). A killed build leaves only staging
folders, which the next build deletes; a kill between the two renames leaves the old set aside,
and `recover` puts it back before anything else.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from music_assets.io import sha256_file, write_json
from music_assets.seeding import stable_seed
from music_assets.training_sets import layouts

STAGING = ".staging"
RESERVED = ("annotations", "captions")
SPLITS = ("train", "validation")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
HASHED_FIELDS = (
    "stem",
    "split",
    "audio_sha256",
    "bpm",
    "key",
    "timesignature",
    "style",
    "tags",
    "caption",
    "lyrics",
    "language",
    "vocal",
)


class SetError(ValueError):
    """The set cannot be built; the message says why and names the files."""


@dataclass(frozen=True)
class SetConfig:
    name: str = "lofi"
    repeat: int = 100
    validation_fraction: float = 0.1
    seed: int = 0
    audio_format: str = "flac"

    def validate(self) -> None:
        if not _NAME.match(self.name) or self.name in RESERVED:
            raise SetError(
                f"set name {self.name!r}: lowercase letters, digits, - and _ (at most 64), not {', '.join(RESERVED)}"
            )
        if not 1 <= self.repeat <= 100_000:
            raise SetError(f"repeat must be 1-100000, got {self.repeat}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise SetError(f"validation_fraction must be between 0 and 1, got {self.validation_fraction}")
        if self.audio_format not in layouts.AUDIO_FORMATS:
            raise SetError(f"audio_format must be one of {layouts.AUDIO_FORMATS}, got {self.audio_format!r}")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "track"


def split_tracks(stems: list[str], fraction: float, seed: int) -> dict[str, str]:
    """stem -> "train" / "validation": round(fraction x n) validation tracks, at least one."""
    if len(stems) < 2:
        raise SetError(f"a training set needs at least 2 tracks (one for validation), got {len(stems)}")
    n_val = min(len(stems) - 1, max(1, round(fraction * len(stems))))
    order = sorted(stems, key=lambda s: (stable_seed("training-set-split", seed, s), s))
    chosen = set(order[:n_val])
    return {s: ("validation" if s in chosen else "train") for s in sorted(stems)}


def dataset_hash(tracks: list[dict[str, Any]], config: SetConfig) -> str:
    payload = {
        "tracks": [{k: t[k] for k in HASHED_FIELDS} for t in sorted(tracks, key=lambda t: t["stem"])],
        "repeat": config.repeat,
        "audio_format": config.audio_format,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def summarize(tracks: list[dict[str, Any]], config: SetConfig, digest: str, excluded: list[dict[str, str]]) -> dict:
    by_split = Counter(t["split"] for t in tracks)
    return {
        "name": config.name,
        "tracks": len(tracks),
        "train": by_split.get("train", 0),
        "validation": by_split.get("validation", 0),
        "per_style": dict(sorted(Counter(t["style"] for t in tracks).items())),
        "per_category": dict(sorted(Counter(t["category"] for t in tracks).items())),
        "total_duration_sec": round(sum(float(t["duration_sec"]) for t in tracks), 3),
        "dataset_hash": digest,
        "repeat": config.repeat,
        "seed": config.seed,
        "validation_fraction": config.validation_fraction,
        "audio_format": config.audio_format,
        "excluded": excluded,
        "layouts": {"ace_step_v1": layouts.V1, "ace_step_v15": layouts.V15},
    }


def recover(root: Path, name: str) -> None:
    """Put back a set moved aside by a build killed between its two renames; drop staging leftovers."""
    staging = root / STAGING
    if not staging.is_dir():
        return
    aside = sorted(staging.glob(f"{name}.old.*"))
    if aside and not (root / name).exists():
        aside[-1].rename(root / name)
    for leftover in staging.glob(f"{name}.*"):  # names have no dots: only this set's folders
        shutil.rmtree(leftover, ignore_errors=True)


def stems_for(tracks: list[dict[str, Any]]) -> None:
    """Give every track a unique, file-safe stem: `<slug of its title>-<source id prefix>`."""
    seen: set[str] = set()
    for t in sorted(tracks, key=lambda t: t["source_id"]):
        stem = f"{slug(t.get('title') or t['source_id'])}-{t['source_id'][:8]}"
        if stem in seen:
            stem = f"{slug(t.get('title') or 'track')}-{t['source_id']}"
        seen.add(stem)
        t["stem"] = stem


def build_set(
    tracks: list[dict[str, Any]], root: Path, config: SetConfig, excluded: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """Write the set `config.name` under `root` (= <data dir>/training_sets) and return its summary.

    Each track carries the caption record's fields plus source_id, title, artist, duration_sec,
    prepared_path and prepared_sha256 (the hash track_annotations recorded: a prepared file that
    changed since is refused, naming it).
    """
    config.validate()
    excluded = list(excluded or [])
    stale = []
    for t in tracks:
        digest = sha256_file(t["prepared_path"]) if Path(t["prepared_path"]).is_file() else None
        if digest != t["prepared_sha256"]:
            stale.append(
                f"{t['prepared_path']} ({t['source_id']}): "
                + ("missing" if digest is None else "changed since it was annotated")
            )
    if stale:
        raise SetError("re-materialize track_annotations for: " + "; ".join(stale))
    stems_for(tracks)
    splits = split_tracks([t["stem"] for t in tracks], config.validation_fraction, config.seed)
    for t in tracks:
        t["split"] = splits[t["stem"]]
        t["audio_sha256"] = t["prepared_sha256"]
    root.mkdir(parents=True, exist_ok=True)
    recover(root, config.name)
    final = root / config.name
    work = root / STAGING / f"{config.name}.{secrets.token_hex(4)}"
    try:
        for split in SPLITS:
            members = [t for t in tracks if t["split"] == split]
            v1, v15 = work / layouts.V1 / split, work / layouts.V15 / split
            v1.mkdir(parents=True)
            v15.mkdir(parents=True)
            for t in members:
                layouts.write_v1_track(v1, t, Path(t["prepared_path"]), config.audio_format)
                layouts.write_v15_track(v15, t, Path(t["prepared_path"]))
            layouts.write_v15_csv(v15, members)
            rows = layouts.v1_rows_from_files(v1, final / layouts.V1 / split)
            repeat = config.repeat if split == "train" else 1
            layouts.write_v1_dataset(rows, work / layouts.V1 / f"{split}_hf", repeat)
        digest = dataset_hash(tracks, config)
        summary = summarize(tracks, config, digest, excluded)
        write_json(work / "tracks.json", [{k: t[k] for k in sorted(t) if k != "prepared_path"} for t in tracks])
        write_json(work / "summary.json", summary)
        _swap(work, final, root)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return summary


def _swap(work: Path, final: Path, root: Path) -> None:
    if final.exists():
        aside = root / STAGING / f"{final.name}.old.{secrets.token_hex(4)}"
        final.rename(aside)
        work.rename(final)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        work.rename(final)


def read_summary(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "summary.json").read_text(encoding="utf-8"))


def read_tracks(folder: Path) -> list[dict[str, Any]]:
    return json.loads((folder / "tracks.json").read_text(encoding="utf-8"))
