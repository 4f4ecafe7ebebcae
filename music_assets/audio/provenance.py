"""Where a source came from: sidecar metadata, a root's provenance.csv, and the file's own tags.

Sidecar JSON
    `<file>.json` next to the audio file (`song.mp3.json`), or `<stem>.json`
    (`song.json`, which then applies to every audio file named `song.*` in
    that folder that has no `<file>.json` of its own). It is one JSON object
    with any of the keys `provider`, `license`, `author`, `url` (strings),
    `acquired` (an ISO date, `2026-05-01`) and `cost` (a number). Other keys
    are ignored. A sidecar that is not valid JSON, not an object, or has a
    value of the wrong type is not used at all: the row's `provenance_error`
    names the sidecar and the reason, and the other sources still apply.

provenance.csv
    At the top of a catalog root (not in sub-folders): a header row with
    `path` (relative to the root, `/`-separated) and any of the columns
    above. Empty cells are missing values. A bad cell (an unreadable date or
    cost) is a `provenance_error` on that file's row, naming the line; a CSV
    without a `path` column is an error on every row of its root.

Tags
    Read from the audio file itself by the analysis: title, artist and
    license (a LICENSE tag, else the copyright string) through libsndfile for
    FLAC/WAV/AIFF/Ogg, and through mutagen's ID3 reader for MP3
    (`TXXX:LICENSE`, else `TCOP`).

Precedence, field by field: sidecar, then provenance.csv, then tags (which
can give only `license` and `author`, from the artist). `license` is
stripped and kept as written (SPDX identifiers such as `CC-BY-4.0` are
expected), "unknown" when no source gives one; `provenance_source` names the
first source that gave any field ("sidecar", "csv", "tags" or "none").
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

FIELDS = ("provider", "license", "author", "url", "acquired", "cost")
TEXT_FIELDS = ("provider", "license", "author", "url")
TAG_FIELDS = ("tag_title", "tag_artist", "tag_license")
CSV_NAME = "provenance.csv"
UNKNOWN_LICENSE = "unknown"
SIDECAR_SUFFIX = ".json"


class ProvenanceError(ValueError):
    pass


def sidecar_candidates(name: str) -> tuple[str, ...]:
    """Sidecar names for an audio file name, in precedence order."""
    stem = os.path.splitext(name)[0]
    return (name + SIDECAR_SUFFIX, stem + SIDECAR_SUFFIX) if stem else (name + SIDECAR_SUFFIX,)


def _acquired(value: Any) -> dt.date:
    if not isinstance(value, str):
        raise ProvenanceError(f"acquired must be an ISO date string, got {type(value).__name__}")
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ProvenanceError(f"acquired {value!r} is not an ISO date (YYYY-MM-DD)") from None


def _cost(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProvenanceError(f"cost must be a number, got {type(value).__name__}")
    return float(value)


def _clean(values: dict[str, Any], *, from_text: bool) -> dict[str, Any]:
    """Known fields, typed; unknown keys dropped. `from_text`: every value is a CSV cell string."""
    out: dict[str, Any] = {}
    for key in FIELDS:
        value = values.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if key in TEXT_FIELDS:
            if not isinstance(value, str):
                raise ProvenanceError(f"{key} must be a string, got {type(value).__name__}")
            out[key] = value.strip()
        elif key == "acquired":
            out[key] = _acquired(value)
        elif from_text:
            try:
                out[key] = float(value)
            except ValueError:
                raise ProvenanceError(f"cost {value!r} is not a number") from None
        else:
            out[key] = _cost(value)
    return out


def read_sidecar(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The known fields of one sidecar; ProvenanceError with the reason if it is unusable."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise ProvenanceError(f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ProvenanceError("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ProvenanceError(f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ProvenanceError(f"must be a JSON object, got {type(data).__name__}")
    return _clean(data, from_text=False)


@dataclass
class CsvTable:
    """A root's provenance.csv: fields by root-relative path, and problems by path (or for all rows)."""

    rows: dict[str, dict[str, Any]]
    errors: dict[str, str]
    error_for_all: str | None = None


def _norm_rel(path: str) -> str:
    p = path.strip().replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    return p


def read_csv(path: str | os.PathLike[str]) -> CsvTable:
    name = os.path.basename(os.fspath(path))
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            if "path" not in header:
                return CsvTable({}, {}, f"{name}: no 'path' column (header: {', '.join(header) or 'empty'})")
            reader.fieldnames = header
            rows: dict[str, dict[str, Any]] = {}
            errors: dict[str, str] = {}
            for record in reader:
                rel = _norm_rel(record.get("path") or "")
                if not rel:
                    continue
                try:
                    rows[rel] = _clean({k: record.get(k) for k in FIELDS}, from_text=True)
                except ProvenanceError as exc:
                    errors[rel] = f"{name} line {reader.line_num}: {exc}"
    except OSError as exc:
        return CsvTable({}, {}, f"{name}: cannot read: {exc.strerror or exc}")
    except (UnicodeDecodeError, csv.Error) as exc:
        return CsvTable({}, {}, f"{name}: not a readable CSV file: {exc}")
    return CsvTable(rows, errors)


def read_tags(path: str | os.PathLike[str]) -> dict[str, str | None]:
    """tag_title, tag_artist, tag_license of an audio file; all None when it has none or cannot be read."""
    tags: dict[str, str | None] = dict.fromkeys(TAG_FIELDS)
    try:
        if os.fspath(path).lower().endswith(".mp3"):
            found = _id3_tags(path)
        else:
            import soundfile as sf  # noqa: PLC0415

            with sf.SoundFile(path) as f:
                meta = f.copy_metadata()
            found = {
                "tag_title": meta.get("title"),
                "tag_artist": meta.get("artist"),
                "tag_license": meta.get("license") or meta.get("copyright"),
            }
    except Exception:  # noqa: BLE001 - tags are optional; an unreadable file is reported by the analysis
        return tags
    for key, value in found.items():
        if isinstance(value, str) and value.strip():
            tags[key] = value.strip()
    return tags


def _id3_tags(path: str | os.PathLike[str]) -> dict[str, str | None]:
    from mutagen.id3 import ID3, ID3NoHeaderError  # noqa: PLC0415

    try:
        id3 = ID3(path)
    except ID3NoHeaderError:
        return {}

    def text(frame_id: str) -> str | None:
        frame = id3.get(frame_id)
        return str(frame.text[0]) if frame is not None and frame.text else None

    license_text = next(
        (str(f.text[0]) for f in id3.getall("TXXX") if f.desc.strip().lower() == "license" and f.text), None
    )
    return {"tag_title": text("TIT2"), "tag_artist": text("TPE1"), "tag_license": license_text or text("TCOP")}


def resolve(
    sidecar: dict[str, Any] | None, csv_row: dict[str, Any] | None, tags: dict[str, Any] | None
) -> dict[str, Any]:
    """The provenance columns of one row from its sources (each None when absent), by precedence."""
    from_tags: dict[str, Any] = {}
    if tags:
        if tags.get("tag_license"):
            from_tags["license"] = tags["tag_license"]
        if tags.get("tag_artist"):
            from_tags["author"] = tags["tag_artist"]
    layers = [("sidecar", sidecar or {}), ("csv", csv_row or {}), ("tags", from_tags)]
    out: dict[str, Any] = dict.fromkeys(FIELDS)
    for key in FIELDS:
        out[key] = next((values[key] for _, values in layers if values.get(key) is not None), None)
    out["license"] = normalize_license(out["license"])
    out["provenance_source"] = next((name for name, values in layers if values), "none")
    return out


def normalize_license(value: str | None) -> str:
    value = (value or "").strip()
    return value or UNKNOWN_LICENSE


def license_key(value: str | None) -> str:
    """How licenses compare (SPDX identifiers are case-insensitive)."""
    return normalize_license(value).casefold()


def join_errors(errors: Iterable[str | None]) -> str | None:
    kept = [e for e in errors if e]
    return "; ".join(kept) if kept else None
