"""The gates of lora_training_set, measured from the written set folder (never from memory).

Blocking:
    annotations_complete       every track has bpm, key and timesignature, each with a confidence (0-1)
                               and a source (measured, sidecar or csv)
    tags_from_vocabulary       every tag in every v1 `_prompt.txt` is in the vocabulary of the track's
                               style preset, or is one of the track's measured facts (recomputed)
    caption_tempo_matches_bpm  the v1.5 caption (.caption.txt and the .json's caption), the v1 tags, the
                               .json's bpm and key_bpm.csv's BPM all agree with the annotated BPM
    split_has_validation       both layouts hold at least one validation and one train track, no stem in
                               both splits, and the summary's counts are the files'
    datasets_loads_rows_match  `datasets.load_from_disk` of each v1 HF dataset gives exactly the rows
                               ACE-Step v1's converter makes of the split folder's files (x repeat for
                               train); every row's audio exists, decodes, and has the annotated audio hash
Warning:
    style_balance              of the categories in the set, none under `min_share` of the tracks
    low_confidence             measured BPM or key below its confidence threshold, listed by file
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from music_assets.checks import CheckResult, Table
from music_assets.io import sha256_file
from music_assets.training_sets import layouts
from music_assets.training_sets.annotation import missing_fields
from music_assets.training_sets.captions import caption_tempo_problems, fact_tags
from music_assets.training_sets.dataset import SPLITS, read_summary, read_tracks
from music_assets.training_sets.presets import CATEGORIES, Preset

DESCRIPTIONS = {
    "annotations_complete": "Every track has BPM, key and time signature, each with its confidence and source.",
    "tags_from_vocabulary": "Every tag of every v1 _prompt.txt is in the track's preset vocabulary or is one of its "
    "measured facts.",
    "caption_tempo_matches_bpm": "The v1.5 caption (.caption.txt, .json), the v1 tags, the .json bpm and the CSV's BPM "
    "agree with the annotated BPM.",
    "split_has_validation": "Both layouts hold train and validation tracks, none in both; counts match the summary.",
    "datasets_loads_rows_match": "datasets.load_from_disk of each v1 HF dataset returns exactly the rows ACE-Step's "
    "converter makes of the files; every row's audio decodes and is the annotated audio.",
    "style_balance": "Of the categories in the set, none under min_category_share (warning); the style distribution.",
    "low_confidence": "Measured BPMs and keys under their confidence thresholds, listed by file (warning).",
}
BLOCKING = (
    "annotations_complete",
    "tags_from_vocabulary",
    "caption_tempo_matches_bpm",
    "split_has_validation",
    "datasets_loads_rows_match",
)


STYLE_COLUMNS = (("category", "string"), ("style", "string"), ("tracks", "int"), ("share", "float"))
LOW_CONFIDENCE_COLUMNS = (
    ("file", "string"),
    ("field", "string"),
    ("value", "string"),
    ("confidence", "float"),
    ("threshold", "float"),
)


def _problems(name: str, problems: list[str], ok: str, metadata: dict[str, Any] | None = None) -> CheckResult:
    shown = "; ".join(problems[:10]) + (f" ... and {len(problems) - 10} more" if len(problems) > 10 else "")
    return CheckResult(
        name=name,
        passed=not problems,
        description=ok if not problems else shown,
        metadata={"problems": len(problems), **(metadata or {})},
    )


def annotations_complete(folder: Path) -> CheckResult:
    problems = []
    tracks = read_tracks(folder)
    for t in tracks:
        missing = missing_fields(t)
        if missing:
            problems.append(f"{t['stem']}: no {', '.join(missing)}")
    return _problems(
        "annotations_complete",
        problems,
        f"all {len(tracks)} tracks have bpm, key and time signature with confidence and source",
        {"tracks": len(tracks)},
    )


def tags_from_vocabulary(folder: Path, presets: dict[str, Preset]) -> CheckResult:
    problems, checked = [], 0
    for t in read_tracks(folder):
        preset = presets.get(t["style"])
        if preset is None:
            problems.append(f"{t['stem']}: style {t['style']!r} is not a preset")
            continue
        prompt = folder / layouts.V1 / t["split"] / f"{t['stem']}_prompt.txt"
        if not prompt.is_file():
            problems.append(f"{prompt} is missing")
            continue
        allowed = preset.vocabulary | set(fact_tags(t))
        for tag in prompt.read_text(encoding="utf-8").strip().split(layouts.TAG_SEPARATOR):
            checked += 1
            if tag not in allowed:
                problems.append(
                    f"{prompt.name}: tag {tag!r} is neither in {preset.name}'s vocabulary nor a measured fact"
                )
    return _problems(
        "tags_from_vocabulary",
        problems,
        f"{checked} tags, all from the presets or measured facts",
        {"tags_checked": checked},
    )


def caption_tempo_matches_bpm(folder: Path) -> CheckResult:
    problems = []
    tracks = read_tracks(folder)
    csv_bpm: dict[str, str] = {}
    for split in SPLITS:
        v15 = folder / layouts.V15 / split
        try:
            header, rows = layouts.read_v15_csv(v15)
        except OSError as exc:
            problems.append(f"{v15 / layouts.CSV_NAME}: {exc}")
            continue
        if tuple(header) != layouts.CSV_HEADER:
            problems.append(f"{v15 / layouts.CSV_NAME}: header {header} is not {list(layouts.CSV_HEADER)}")
        csv_bpm.update({r["File"]: r["BPM"] for r in rows})
    for t in tracks:
        bpm = float(t["bpm"])
        v1 = folder / layouts.V1 / t["split"] / f"{t['stem']}_prompt.txt"
        v15 = folder / layouts.V15 / t["split"]
        try:
            tags = v1.read_text(encoding="utf-8").strip().split(layouts.TAG_SEPARATOR)
            written = layouts.read_v15_track(v15, t["stem"])
        except (OSError, ValueError) as exc:
            problems.append(f"{t['stem']}: {exc}")
            continue
        for label, caption in (
            ("caption.txt", written["caption"]),
            (".json caption", written["json"].get("caption", "")),
        ):
            problems += [f"{t['stem']} {label}: {p}" for p in caption_tempo_problems(caption, tags, bpm)]
        if written["json"].get("bpm") != round(bpm):
            problems.append(f"{t['stem']}.json: bpm {written['json'].get('bpm')!r}, annotated {bpm:g}")
        if csv_bpm.get(f"{t['stem']}.flac") != str(round(bpm)):
            problems.append(f"{layouts.CSV_NAME}: BPM of {t['stem']}.flac is {csv_bpm.get(t['stem'] + '.flac')!r}")
    return _problems(
        "caption_tempo_matches_bpm",
        problems,
        f"captions, tags, .json and CSV of {len(tracks)} tracks state their annotated BPM",
    )


def _audio_stems(folder: Path) -> list[str]:
    return (
        sorted(p.stem for p in folder.iterdir() if p.suffix.lstrip(".") in layouts.AUDIO_FORMATS)
        if folder.is_dir()
        else []
    )


def split_has_validation(folder: Path) -> CheckResult:
    problems, counts = [], {}
    summary = read_summary(folder)
    for layout in (layouts.V1, layouts.V15):
        stems = {s: _audio_stems(folder / layout / s) for s in SPLITS}
        for s in SPLITS:
            counts[f"{layout}_{s}"] = len(stems[s])
            if not stems[s]:
                problems.append(f"{layout}/{s} holds no track")
            if len(stems[s]) != summary.get(s):
                problems.append(f"{layout}/{s} holds {len(stems[s])} tracks, the summary says {summary.get(s)}")
        both = set(stems["train"]) & set(stems["validation"])
        if both:
            problems.append(f"{layout}: in both splits: {', '.join(sorted(both))}")
    return _problems(
        "split_has_validation",
        problems,
        f"{counts.get('ace_step_v1_train')} train / {counts.get('ace_step_v1_validation')} validation "
        "tracks in both layouts",
        counts,
    )


def datasets_loads_rows_match(folder: Path) -> CheckResult:
    import soundfile as sf  # noqa: PLC0415
    from datasets import load_from_disk  # noqa: PLC0415

    problems, loaded = [], {}
    summary = read_summary(folder)
    audio_hash = {t["stem"]: t["audio_sha256"] for t in read_tracks(folder)}
    for split in SPLITS:
        files = folder / layouts.V1 / split
        dest = folder / layouts.V1 / f"{split}_hf"
        try:
            ds = load_from_disk(str(dest))
        except Exception as exc:  # noqa: BLE001 - whatever datasets raises is the failure reported
            problems.append(f"{dest}: load_from_disk failed: {type(exc).__name__}: {exc}")
            continue
        rows = ds.to_list()
        loaded[f"{split}_rows"] = len(rows)
        missing_cols = set(layouts.V1_COLUMNS) ^ set(ds.column_names)
        if missing_cols:
            problems.append(f"{dest}: columns {ds.column_names}, expected {list(layouts.V1_COLUMNS)}")
        expected = layouts.v1_rows_from_files(files, files) * (summary["repeat"] if split == "train" else 1)
        if rows != expected:
            diff = next(
                (i for i, (a, b) in enumerate(zip(rows, expected, strict=False)) if a != b),
                min(len(rows), len(expected)),
            )
            problems.append(f"{dest}: {len(rows)} rows, the files give {len(expected)}; first difference at row {diff}")
        for row in {r["filename"]: r for r in rows}.values():
            path = Path(row["filename"])
            try:
                info = sf.info(str(path))
                if info.frames <= 0:
                    problems.append(f"{path}: no audio frames")
            except (OSError, RuntimeError) as exc:
                problems.append(f"{path}: does not decode ({exc})")
                continue
            if summary.get("audio_format") == "flac" and sha256_file(path) != audio_hash.get(row["keys"]):
                problems.append(f"{path}: not the annotated audio (sha256 differs)")
    return _problems(
        "datasets_loads_rows_match",
        problems,
        "both v1 datasets load with datasets and match their folders row for row",
        loaded,
    )


def style_balance(folder: Path, presets: dict[str, Preset], min_share: float) -> CheckResult:
    tracks = read_tracks(folder)
    n = max(1, len(tracks))
    by_cat = Counter(t["category"] for t in tracks)
    by_style = Counter(t["style"] for t in tracks)
    low = sorted(c for c, k in by_cat.items() if k / n < min_share)
    table = [
        {"category": c, "style": s, "tracks": by_style.get(s, 0), "share": round(by_style.get(s, 0) / n, 4)}
        for c in CATEGORIES
        for s in sorted(p.name for p in presets.values() if p.category == c)
        if by_style.get(s, 0)
    ] + [
        {"category": c, "style": "(all)", "tracks": by_cat.get(c, 0), "share": round(by_cat.get(c, 0) / n, 4)}
        for c in CATEGORIES
    ]
    desc = (
        f"no category in the set under {min_share:.0%} of its tracks"
        if not low
        else f"under {min_share:.0%}: " + ", ".join(f"{c} ({by_cat[c]}/{len(tracks)})" for c in low)
    )
    return CheckResult(
        name="style_balance",
        passed=not low,
        description=desc,
        metadata={
            "min_share": min_share,
            "categories_in_set": len(by_cat),
            "style_distribution": Table(STYLE_COLUMNS, table),
        },
        severity="warn",
    )


def low_confidence(folder: Path, min_bpm_confidence: float, min_key_confidence: float) -> CheckResult:
    rows = []
    for t in read_tracks(folder):
        for name, threshold in (("bpm", min_bpm_confidence), ("key", min_key_confidence)):
            conf = float(t.get(f"{name}_confidence", 0.0))
            if t["annotation_source"].get(name) == "measured" and conf < threshold:
                rows.append(
                    {
                        "file": f"{t['stem']}.flac",
                        "field": name,
                        "value": str(t[name]),
                        "confidence": conf,
                        "threshold": threshold,
                    }
                )
    desc = (
        "every measured BPM and key at or above its confidence threshold"
        if not rows
        else "; ".join(f"{r['file']} {r['field']} {r['value']} ({r['confidence']:.2f})" for r in rows[:10])
    )
    return CheckResult(
        name="low_confidence",
        passed=not rows,
        description=desc,
        metadata={"low": len(rows), "low_confidence_files": Table(LOW_CONFIDENCE_COLUMNS, rows)},
        severity="warn",
    )
