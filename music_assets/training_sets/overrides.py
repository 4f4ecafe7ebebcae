"""A person's word on a track: the annotation fields a source's sidecar or its root's provenance.csv may set.

The same files the catalog reads for provenance (`music_assets.audio.provenance`): the sidecar
JSON beside the audio file (`song.mp3.json`, else `song.json`) and the `provenance.csv` at the top
of the catalog root (a row per `path`). Besides the provenance keys they may hold:

    bpm            a number, 30-300                     "bpm": 92 / bpm,92
    key            a key, "A minor", "E-flat major", "F#m"
    timesignature  beats per bar: 2, 3, 4, 6, or "3/4"
    style          a style preset name (style_presets)
    lyrics         a UTF-8 text file, relative to the sidecar's folder (the root for the CSV)
    language       the lyrics' language code ("en"), for ACE-Step 1.5's `language`

Precedence, field by field: sidecar, then CSV, then the measurement. A value that cannot be read
(a BPM that is not a number, a key that is not a key) is not used: the field keeps the
measurement and the problem names the file and the reason. A lyrics path must resolve (links
followed) inside the source's catalog root or the data dir; one outside, or a file that does not
exist or is not UTF-8, is a problem that keeps the track out of the set (training it as
instrumental would teach the wrong thing). Style names are checked against the presets by
track_captions, which keeps an unknown style out of the set the same way.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from music_assets.audio.provenance import CSV_NAME, sidecar_candidates
from music_assets.training_sets.keys import KeyError_, normalize_key, parse_bpm, parse_time_signature

FIELDS = ("bpm", "key", "timesignature", "style", "lyrics", "language")
MAX_LYRICS_BYTES = 200_000


@dataclass
class Overrides:
    """The values found per field, where each came from (`sidecar` / `csv`), and the problems."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    lyrics_text: str | None = None
    blocking: list[str] = field(default_factory=list)  # problems that keep the track out of the set


def _sidecar_path(audio: Path) -> Path | None:
    for name in sidecar_candidates(audio.name):
        p = audio.with_name(name)
        if p.is_file():
            return p
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: must be a JSON object, got {type(data).__name__}")
    return data


def _csv_row(root: Path, rel_path: str) -> tuple[dict[str, Any], Path] | None:
    path = root / CSV_NAME
    if not path.is_file():
        return None
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            reader.fieldnames = [h.strip() for h in reader.fieldnames or []]
            for record in reader:
                if _norm_rel(record.get("path") or "") == rel_path:
                    return {k: v for k, v in record.items() if k in FIELDS and v not in (None, "")}, path
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: not a readable CSV file ({exc})") from None
    return None


def _norm_rel(path: str) -> str:
    """A CSV `path` cell as the catalog compares it: `/`-separated, without a leading `./`."""
    p = path.strip().replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    return p


def inside(path: Path, bases: list[Path]) -> bool:
    real = os.path.realpath(path)
    for base in bases:
        b = os.path.realpath(base)
        if os.path.commonpath([real, b]) == b:
            return True
    return False


def _apply(out: Overrides, key: str, value: Any, where: Path, label: str, bases: list[Path]) -> None:
    """Check one value; record it (or the problem) unless a higher layer already set the field."""
    if key in out.values:
        return
    try:
        if key == "bpm":
            out.values[key] = parse_bpm(value)
        elif key == "key":
            out.values[key] = normalize_key(value)
        elif key == "timesignature":
            out.values[key] = parse_time_signature(value)
        elif key in ("style", "language"):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{key} must be non-empty text, got {value!r}")
            out.values[key] = value.strip()
        elif key == "lyrics":
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"lyrics must be a file name, got {value!r}")
            lyrics = (where.parent / value.strip()).resolve()
            if not inside(lyrics, bases):
                raise PermissionError(
                    f"lyrics file {value!r} resolves to {lyrics}, outside {', '.join(map(str, bases))}"
                )
            if not lyrics.is_file():
                raise FileNotFoundError(f"lyrics file {lyrics} does not exist")
            if lyrics.stat().st_size > MAX_LYRICS_BYTES:
                raise ValueError(f"lyrics file {lyrics} is larger than {MAX_LYRICS_BYTES} bytes")
            try:
                text = lyrics.read_text(encoding="utf-8").strip()
            except UnicodeDecodeError:
                raise ValueError(f"lyrics file {lyrics} is not UTF-8 text") from None
            if not text:
                raise ValueError(f"lyrics file {lyrics} is empty")
            out.values[key] = str(lyrics)
            out.lyrics_text = text
        out.sources[key] = label
    except (ValueError, KeyError_, OSError) as exc:
        message = f"{where}: {key}: {exc}"
        out.problems.append(message)
        if key == "lyrics":
            out.blocking.append(message)


def read_overrides(root: str | os.PathLike[str], rel_path: str, data_dir: str | os.PathLike[str]) -> Overrides:
    """The override fields of the source `root/rel_path` (see the module docstring)."""
    root, audio = Path(root), Path(root) / rel_path
    bases = [root, Path(data_dir)]
    out = Overrides()
    sidecar = _sidecar_path(audio)
    if sidecar is not None:
        try:
            data = _read_json(sidecar)
        except ValueError as exc:
            out.problems.append(str(exc))
            data = {}
        for key in FIELDS:
            if data.get(key) not in (None, ""):
                _apply(out, key, data[key], sidecar, "sidecar", bases)
    try:
        row = _csv_row(root, rel_path)
    except ValueError as exc:
        out.problems.append(str(exc))
        row = None
    if row is not None:
        values, csv_path = row
        for key in FIELDS:
            if key in values:
                # CSV lyrics paths are relative to the root, where the CSV lives
                _apply(out, key, values[key], csv_path, "csv", bases)
    return out
