"""The style taxonomy (presets.yaml): loading, `extends` inheritance and validation.

A preset inherits every field of its parent (`extends`), recursively, and a field it sets
replaces the parent's. Two fields are the preset's own and never inherited: `description`, and
`match` (the rule that lets track_captions assign it from measured features: a parent's rule
says nothing about a child whose tags differ). Loading fails with a PresetError that names the
preset for: an unknown field, an unknown parent, an inheritance cycle, a category outside
CATEGORIES, a tag set that is empty or not a list of non-empty strings (after inheritance), a
tempo that is not [min, max] with 20 <= min < max <= 300, and a `match` rule with an unknown key
or mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PRESETS_FILE = Path(__file__).with_name("presets.yaml")
CATEGORIES = ("core", "seasonal", "thematic", "instrumental", "vocal")
TAG_FIELDS = ("genre", "mood", "instruments", "production", "atmosphere", "vocal_type")
INHERITED = ("category", *TAG_FIELDS, "tempo")
OWN = ("extends", "description", "match")
KNOWN = (*INHERITED, *OWN)
MATCH_KEYS = ("mode",)


class PresetError(ValueError):
    """The presets file is invalid; the message names the preset and the reason."""


@dataclass(frozen=True)
class Preset:
    name: str
    category: str
    tags: dict[str, tuple[str, ...]]  # TAG_FIELDS -> tags
    tempo: tuple[float, float]
    description: str = ""
    parent: str | None = None
    match: dict[str, str] | None = None
    lineage: tuple[str, ...] = field(default=())  # self, parent, grandparent ...

    @property
    def vocabulary(self) -> frozenset[str]:
        """Every tag this preset may put on a track."""
        return frozenset(t for tags in self.tags.values() for t in tags)


def _check_raw(name: str, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise PresetError(f"preset {name!r}: must be a mapping of fields, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(KNOWN))
    if unknown:
        raise PresetError(f"preset {name!r}: unknown field(s) {', '.join(unknown)} (known: {', '.join(KNOWN)})")
    return raw


def _resolve(name: str, raw: dict[str, dict[str, Any]], done: dict[str, dict[str, Any]], chain: list[str]) -> dict:
    if name in done:
        return done[name]
    if name in chain:
        raise PresetError(f"preset {name!r}: inheritance cycle {' -> '.join([*chain, name])}")
    spec = _check_raw(name, raw[name])
    parent = spec.get("extends")
    merged: dict[str, Any] = {}
    lineage = [name]
    if parent is not None:
        if not isinstance(parent, str) or parent not in raw:
            raise PresetError(f"preset {name!r}: extends unknown preset {parent!r}")
        base = _resolve(parent, raw, done, [*chain, name])
        merged = {k: base[k] for k in INHERITED if k in base}
        lineage += base["_lineage"]
    merged.update({k: spec[k] for k in INHERITED if k in spec})
    merged.update({k: spec.get(k) for k in OWN})
    merged["_lineage"] = lineage
    done[name] = merged
    return merged


def _tags(name: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise PresetError(f"preset {name!r}: {key} must be a non-empty list of tags, got {value!r}")
    if not all(isinstance(t, str) and t.strip() and "," not in t for t in value):
        raise PresetError(f"preset {name!r}: {key} tags must be non-empty text without commas, got {value!r}")
    return tuple(t.strip() for t in value)


def _preset(name: str, spec: dict[str, Any]) -> Preset:
    category = spec.get("category")
    if category not in CATEGORIES:
        raise PresetError(f"preset {name!r}: category {category!r} is not one of {', '.join(CATEGORIES)}")
    tags = {k: _tags(name, k, spec.get(k)) for k in TAG_FIELDS}
    tempo = spec.get("tempo")
    if (
        not isinstance(tempo, list)
        or len(tempo) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in tempo)
        or not 20 <= tempo[0] < tempo[1] <= 300
    ):
        raise PresetError(f"preset {name!r}: tempo must be [min_bpm, max_bpm] within 20-300, got {tempo!r}")
    match = spec.get("match")
    if match is not None:
        if not isinstance(match, dict) or set(match) - set(MATCH_KEYS):
            raise PresetError(f"preset {name!r}: match may only hold {', '.join(MATCH_KEYS)}, got {match!r}")
        if match.get("mode") not in (None, "major", "minor"):
            raise PresetError(f"preset {name!r}: match mode must be major or minor, got {match.get('mode')!r}")
    return Preset(
        name=name,
        category=category,
        tags=tags,
        tempo=(float(tempo[0]), float(tempo[1])),
        description=str(spec.get("description") or ""),
        parent=spec.get("extends"),
        match=dict(match) if match else None,
        lineage=tuple(spec["_lineage"]),
    )


def parse_presets(data: Any) -> dict[str, Preset]:
    """Validated, resolved presets from the parsed YAML document."""
    if not isinstance(data, dict) or not isinstance(data.get("presets"), dict) or not data["presets"]:
        raise PresetError("the presets file must be a mapping with a non-empty 'presets' mapping")
    raw = data["presets"]
    for name in raw:
        if not isinstance(name, str) or not name.strip():
            raise PresetError(f"preset name {name!r} must be non-empty text")
    done: dict[str, dict[str, Any]] = {}
    return {name: _preset(name, _resolve(name, raw, done, [])) for name in sorted(raw)}


def load_presets(path: str | Path = PRESETS_FILE) -> dict[str, Preset]:
    """The presets of `path` (default: the package's presets.yaml)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PresetError(f"{path}: cannot read the presets: {exc}") from None
    try:
        return parse_presets(data)
    except PresetError as exc:
        raise PresetError(f"{path}: {exc}") from None


def as_rows(presets: dict[str, Preset]) -> list[dict[str, Any]]:
    """One flat row per preset (the style_presets table)."""
    return [
        {
            "name": p.name,
            "category": p.category,
            "extends": p.parent or "",
            "tempo_min": p.tempo[0],
            "tempo_max": p.tempo[1],
            "auto": p.match is not None,
            **{k: ", ".join(v) for k, v in p.tags.items()},
        }
        for p in presets.values()
    ]
