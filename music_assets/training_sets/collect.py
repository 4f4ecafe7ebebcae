"""The tracks of a set: each source's caption and annotation records, read back and checked.

A source joins the set when its caption record has no `error` and was made from the annotation
now on disk (the caption records the annotation file's sha256, verified here); otherwise it is an
excluded row naming the file and the reason. `dataset.build_set` then verifies each prepared
file against the hash its annotation recorded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from music_assets.io import sha256_file

FROM_ANNOTATION = (
    "source_id",
    "prepared_path",
    "prepared_sha256",
    "bpm",
    "bpm_confidence",
    "key_confidence",
    "timesignature_confidence",
    "annotation_source",
    "duration_sec",
)
FROM_CAPTION = (
    "style",
    "category",
    "style_source",
    "style_confidence",
    "tags",
    "caption",
    "lyrics",
    "vocal",
    "language",
    "key",
    "camelot",
    "timesignature",
)


def collect_tracks(
    keys: list[str], annotations: Path, captions: Path, selected: dict[str, dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(tracks to build, excluded rows {source_id, file, reason}); `selected`: selected_sources rows by id."""
    tracks, excluded = [], []
    for key in sorted(keys):
        cap_path, ann_path = captions / f"{key}.json", annotations / f"{key}.json"
        if not cap_path.is_file() or not ann_path.is_file():
            reason = "not annotated and captioned yet (materialize track_annotations and track_captions)"
            excluded.append({"source_id": key, "file": str(cap_path), "reason": reason})
            continue
        cap = json.loads(cap_path.read_text(encoding="utf-8"))
        if cap.get("error"):
            excluded.append({"source_id": key, "file": str(cap_path), "reason": cap["error"]})
            continue
        if cap.get("annotation_sha256") != sha256_file(ann_path):
            reason = f"captioned from an older {ann_path.name} (re-materialize track_captions)"
            excluded.append({"source_id": key, "file": str(cap_path), "reason": reason})
            continue
        ann = json.loads(ann_path.read_text(encoding="utf-8"))
        row = selected.get(key, {})
        tracks.append(
            {
                **{k: ann[k] for k in FROM_ANNOTATION},
                **{k: cap[k] for k in FROM_CAPTION},
                "title": Path(row.get("rel_path") or key).stem,
                "artist": row.get("author") or "",
                "license": row.get("license") or "unknown",
            }
        )
    return tracks, excluded
