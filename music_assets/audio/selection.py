"""Choosing usable sources from the catalog: rules, scores and the reason for every rejection.

A row is selected when every rule passes:

- `status` is `ok` (the file decoded whole);
- the duration lies in [`min_duration_sec`, `max_duration_sec`];
- no skip pattern matches its path;
- `clipped_ratio` <= `max_clipped_ratio` and `silence_ratio` <= `max_silence_ratio`;
- when `allowed_licenses` is set, the catalog's `license` is one of them
  (compared case-insensitively; a source without a known license has
  `license` "unknown", which passes only if "unknown" is listed). The default,
  None, allows every license; `license` is carried into the selection either way.

`rejection_reason` lists every failed rule, separated by "; ". `source_version` is the
source's data version (`source_version`): what the assets made from it depend on.

Patterns match words of the root-relative path (never the root itself, whose
name the user does not control): the lower-cased path is split on anything
that is not a letter or digit, and a pattern matches a word that starts with
it, so `test` matches `tests/` and `test_take.wav` but not `latest.wav`.

`selection_score` ranks sources; rejected rows are scored too, so the table
shows how close they came (rows that could not be measured have no score):

    + preferred_boost (10) for every preferred pattern that matches the path
    + 5 if `preferred_channels` is set and matches, + 5 likewise for `preferred_sample_rate`
    + 10 * (1 - silence_ratio)                      (0..10: more music, less silence)
    - 10 * min(1, clipped_ratio / max_clipped_ratio) (0..10: clipping up to the limit)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from music_assets.audio.catalog import catalog_schema
from music_assets.audio.provenance import license_key, normalize_license

PREFERENCE_MATCH_BOOST = 5.0
QUALITY_WEIGHT = 10.0
_WORD = re.compile(r"[^0-9a-z]+")


@dataclass(frozen=True)
class SelectionRules:
    min_duration_sec: float = 30.0
    max_duration_sec: float = 3600.0
    preferred_patterns: Sequence[str] = ("bounces", "masters", "tracks")
    preferred_boost: float = 10.0
    skip_patterns: Sequence[str] = ("scratch", "test", "draft")
    preferred_channels: int | None = None
    preferred_sample_rate: int | None = None
    max_clipped_ratio: float = 0.001
    max_silence_ratio: float = 0.5
    allowed_licenses: Sequence[str] | None = None

    def __post_init__(self) -> None:
        problems = rule_problems(self)
        if problems:
            raise ValueError("invalid selection rules: " + "; ".join(problems))


def rule_problems(r: SelectionRules) -> list[str]:
    """Every way `r` is out of range or inconsistent (empty when the rules make sense)."""
    import math  # noqa: PLC0415

    problems = []
    for name in ("min_duration_sec", "max_duration_sec", "preferred_boost", "max_clipped_ratio", "max_silence_ratio"):
        if not math.isfinite(getattr(r, name)):
            problems.append(f"{name} must be a finite number, got {getattr(r, name)}")
    if problems:
        return problems
    if r.min_duration_sec < 0:
        problems.append(f"min_duration_sec must be >= 0, got {r.min_duration_sec}")
    if not r.min_duration_sec < r.max_duration_sec:
        problems.append(f"min_duration_sec {r.min_duration_sec} must be < max_duration_sec {r.max_duration_sec}")
    if not 0 < r.max_clipped_ratio <= 1:
        problems.append(f"max_clipped_ratio must be in (0, 1], got {r.max_clipped_ratio}")
    if not 0 <= r.max_silence_ratio <= 1:
        problems.append(f"max_silence_ratio must be in [0, 1], got {r.max_silence_ratio}")
    if r.preferred_channels is not None and r.preferred_channels < 1:
        problems.append(f"preferred_channels must be >= 1, got {r.preferred_channels}")
    if r.preferred_sample_rate is not None and r.preferred_sample_rate < 1:
        problems.append(f"preferred_sample_rate must be >= 1, got {r.preferred_sample_rate}")
    if r.allowed_licenses is not None and isinstance(r.allowed_licenses, str):
        problems.append("allowed_licenses must be a list of licenses, not one string")
    return problems


def path_words(rel_path: str) -> list[str]:
    return [w for w in _WORD.split(rel_path.lower()) if w]


def matching_patterns(rel_path: str, patterns: Sequence[str]) -> list[str]:
    words = path_words(rel_path)
    return [p for p in patterns if any(w.startswith(p.lower()) for w in words)]


def _missing(value: Any) -> bool:
    return value is None or value != value  # None or NaN


def evaluate(row: dict[str, Any], rules: SelectionRules) -> tuple[float | None, list[tuple[str, str]]]:
    """(score, failed rules as (rule, message)) for one catalog row."""
    failed: list[tuple[str, str]] = []
    if row["status"] != "ok":
        failed.append(("status", f"status {row['status']}: {row['error']}"))
    duration = row.get("duration_sec")
    if not _missing(duration):
        if duration < rules.min_duration_sec:
            failed.append(("duration", f"duration {duration:.1f} s < {rules.min_duration_sec:g} s"))
        elif duration > rules.max_duration_sec:
            failed.append(("duration", f"duration {duration:.1f} s > {rules.max_duration_sec:g} s"))
    if rules.allowed_licenses is not None:
        allowed = {license_key(x) for x in rules.allowed_licenses}
        if license_key(row.get("license")) not in allowed:
            failed.append(("license", f"license '{normalize_license(row.get('license'))}' not in allowed licenses"))
    skips = matching_patterns(row["rel_path"], rules.skip_patterns)
    if skips:
        failed.append(("skip_pattern", "path matches skip pattern " + ", ".join(repr(s) for s in skips)))
    clipped, silence = row.get("clipped_ratio"), row.get("silence_ratio")
    if _missing(clipped) or _missing(silence):
        return None, failed
    if clipped > rules.max_clipped_ratio:
        failed.append(("clipping", f"clipped ratio {clipped:.4f} > {rules.max_clipped_ratio:g}"))
    if silence > rules.max_silence_ratio:
        failed.append(("silence", f"silence ratio {silence:.2f} > {rules.max_silence_ratio:g}"))
    score = rules.preferred_boost * len(matching_patterns(row["rel_path"], rules.preferred_patterns))
    if rules.preferred_channels is not None and row.get("channels") == rules.preferred_channels:
        score += PREFERENCE_MATCH_BOOST
    if rules.preferred_sample_rate is not None and row.get("sample_rate") == rules.preferred_sample_rate:
        score += PREFERENCE_MATCH_BOOST
    score += QUALITY_WEIGHT * (1.0 - silence)
    score -= QUALITY_WEIGHT * min(1.0, clipped / rules.max_clipped_ratio)
    return round(score, 3), failed


def selection_schema() -> pa.Schema:
    return (
        catalog_schema()
        .append(pa.field("selection_score", pa.float64()))
        .append(pa.field("selected", pa.bool_()))
        .append(pa.field("rejection_reason", pa.string()))
        .append(pa.field("source_version", pa.string()))
    )


def select_sources(catalog: pa.Table, rules: SelectionRules = SelectionRules()) -> tuple[pa.Table, Counter[str]]:
    """Every catalog row plus `selection_score`, `selected`, `rejection_reason`, best score first.

    Also returns how many rows each rule rejected (a row may fail several).
    """
    scores, selected, reasons, versions = [], [], [], []
    failures: Counter[str] = Counter()
    for row in catalog.to_pylist():
        score, failed = evaluate(row, rules)
        scores.append(score)
        selected.append(not failed)
        reasons.append("; ".join(m for _, m in failed) if failed else None)
        versions.append(source_version(row))
        failures.update(rule for rule, _ in failed)
    schema = selection_schema()
    out = catalog.select(catalog_schema().names).cast(catalog_schema())
    out = out.append_column(schema.field("selection_score"), pa.array(scores, pa.float64()))
    out = out.append_column(schema.field("selected"), pa.array(selected, pa.bool_()))
    out = out.append_column(schema.field("rejection_reason"), pa.array(reasons, pa.string()))
    out = out.append_column(schema.field("source_version"), pa.array(versions, pa.string()))
    out = out.sort_by(
        [
            ("selection_score", "descending", "at_end"),
            ("root", "ascending", "at_end"),
            ("rel_path", "ascending", "at_end"),
        ]
    )
    return out.replace_schema_metadata(catalog.schema.metadata), failures


PROVENANCE_COLUMNS = ("license", "provider", "author", "url", "acquired", "cost", "provenance_source")
# What the assets made from a source depend on: its bytes and the provenance they record.
VERSION_COLUMNS = ("content_hash", "license", "provider", "author", "url")


def source_version(row: dict[str, Any]) -> str:
    """The data version of a selected source: a hash of its bytes' hash and the provenance the
    prepared file and texture beds record. Not its root, so moving the music folder (same
    relative paths) changes no version; an edited file, or a new license, does."""
    from music_assets.seeding import stable_id  # noqa: PLC0415

    return stable_id("source-version", *(row.get(c) for c in VERSION_COLUMNS))


def provenance_by_source(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """For assets made from sources (beds, textures, the dataset card): each source id's provenance columns."""
    return {r["source_id"]: {k: r.get(k) for k in PROVENANCE_COLUMNS} for r in rows if r.get("source_id")}
