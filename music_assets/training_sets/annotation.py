"""One source's annotation record: the measurement, a person's overrides, and where each field came from.

`annotate(...)` measures the prepared file (`analysis.measure`), applies the sidecar/CSV
overrides (`overrides.read_overrides`) and returns a JSON-ready dict, written by track_annotations
as `<data dir>/training_sets/annotations/<source_id>.json`:

    source_id, prepared_path, prepared_sha256   the file measured, and its hash then (checked when read)
    bpm, key, timesignature                     the values a trainer gets
    <field>_confidence                          0-1; 1.0 when a person gave the value
    annotation_source                           {field: "measured" | "sidecar" | "csv"} for bpm, key,
                                                timesignature, style, lyrics, vocal
    measured                                    the measurement as it was, overridden or not
    duration_sec, loudness_lufs, brightness_hz, onset_density
    vocal                                       "instrumental" unless lyrics are given (no offline vocal
                                                detector is used)
    style, lyrics_path, lyrics, language        a person's word, or None
    problems, blocking_problems                 what could not be used, naming the file and the reason
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from music_assets.io import sha256_file
from music_assets.training_sets.analysis import measure
from music_assets.training_sets.overrides import read_overrides

SOURCED_FIELDS = ("bpm", "key", "timesignature", "style", "lyrics", "vocal")


def annotate(
    source_id: str,
    prepared: str | os.PathLike[str],
    root: str | os.PathLike[str] | None,
    rel_path: str | None,
    data_dir: str | os.PathLike[str],
    method: str = "essentia",
) -> dict[str, Any]:
    """The annotation record of one prepared source (module docstring)."""
    prepared = Path(prepared)
    digest = sha256_file(prepared)
    m = measure(prepared, method=method)
    ov = read_overrides(root, rel_path, data_dir) if root and rel_path else None
    values = ov.values if ov else {}
    sources = ov.sources if ov else {}
    measured = {
        "bpm": m.bpm,
        "bpm_confidence": m.bpm_confidence,
        "key": m.key,
        "key_confidence": m.key_confidence,
        "timesignature": m.time_signature,
        "timesignature_confidence": m.time_signature_confidence,
        "octave_corrected": m.octave_corrected,
        "method": method,
    }
    record: dict[str, Any] = {"source_id": source_id, "prepared_path": str(prepared), "prepared_sha256": digest}
    provenance: dict[str, str] = {}
    for name in ("bpm", "key", "timesignature"):
        if name in values:
            record[name] = values[name]
            record[f"{name}_confidence"] = 1.0
            provenance[name] = sources[name]
        else:
            record[name] = measured[name]
            record[f"{name}_confidence"] = measured[f"{name}_confidence"]
            provenance[name] = "measured"
    lyrics = ov.lyrics_text if ov else None
    record.update(
        {
            "style": values.get("style"),
            "lyrics_path": values.get("lyrics"),
            "lyrics": lyrics,
            "language": values.get("language"),
            "vocal": "vocal" if lyrics else "instrumental",
            "duration_sec": m.duration_sec,
            "loudness_lufs": m.loudness_lufs,
            "brightness_hz": m.brightness_hz,
            "onset_density": m.onset_density,
            "measured": measured,
            "problems": list(ov.problems) if ov else [],
            "blocking_problems": list(ov.blocking) if ov else [],
        }
    )
    provenance["style"] = sources.get("style", "rules")
    provenance["lyrics"] = sources.get("lyrics", "none")
    provenance["vocal"] = sources.get("lyrics", "default")
    record["annotation_source"] = provenance
    return record


def missing_fields(record: dict[str, Any]) -> list[str]:
    """Fields the blocking gate requires that this record lacks (value, confidence or source)."""
    missing = []
    for name in ("bpm", "key", "timesignature"):
        if record.get(name) in (None, ""):
            missing.append(name)
        conf = record.get(f"{name}_confidence")
        if not isinstance(conf, (int, float)) or not 0.0 <= conf <= 1.0:
            missing.append(f"{name}_confidence")
        if record.get("annotation_source", {}).get(name) not in ("measured", "sidecar", "csv"):
            missing.append(f"{name} source")
    return missing
