"""Captions: a style for each track, tags from that style's vocabulary plus measured facts, a sentence.

Style: the sidecar's `style` when it names a preset (an unknown name keeps the track out of the
set, with the reason); else the best-scoring preset that has a `match` rule, scored from the
annotation as 0.6 x tempo fit (1 inside the preset's range, falling to 0 at 25 % outside it) +
0.4 x mode match. The rule that decided and its score (the confidence, 0-1) are recorded.

Tags (`tags`): genre, the first moods, instruments and production tags, one atmosphere tag and
the vocal type from the preset (a track with lyrics drops an `instrumental` vocal type), then the
measured facts: the tempo word and `<bpm> bpm`, the key (`E minor`) and the meter (`4/4 time`).
The tag line is what ACE-Step v1 trains on: it joins the tags with ", ", shuffles them and cuts
the prompt at 256 characters, so preset tags are dropped from the end until the line fits and no
fact is ever cut. Caption: one sentence with the same facts.
"""

from __future__ import annotations

import re
from typing import Any

from music_assets.training_sets.keys import camelot, parse_key, spoken_key, tempo_word, tempo_word_range
from music_assets.training_sets.presets import Preset

PROMPT_MAX_CHARS = 256  # ACE-Step v1's Text2MusicDataset: prompt = prompt[:256]
TAG_COUNTS = {"genre": 3, "mood": 2, "instruments": 3, "production": 2, "atmosphere": 1, "vocal_type": 1}
TEMPO_WEIGHT, MODE_WEIGHT = 0.6, 0.4
INSTRUMENTAL = "[Instrumental]"
_CAPTION_BPM = re.compile(r"\bat (?P<bpm>\d+(?:\.\d+)?) BPM\b")


class CaptionError(ValueError):
    """A track that cannot be captioned (an unknown style); the message names the file."""


def tempo_fit(bpm: float, lo: float, hi: float) -> float:
    if lo <= bpm <= hi:
        return 1.0
    edge = lo if bpm < lo else hi
    return max(0.0, 1.0 - abs(bpm - edge) / (0.25 * edge))


def assign_style(annotation: dict[str, Any], presets: dict[str, Preset]) -> dict[str, Any]:
    """{style, category, style_rule, style_confidence, style_source} of one annotated track."""
    wanted = annotation.get("style")
    if wanted:
        if wanted not in presets:
            where = annotation.get("annotation_source", {}).get("style", "sidecar")
            raise CaptionError(
                f"{annotation['source_id']}: the {where} names style {wanted!r}, which is not a preset "
                f"(style_presets has {len(presets)}: {', '.join(sorted(presets)[:6])} ...)"
            )
        p = presets[wanted]
        return {
            "style": p.name,
            "category": p.category,
            "style_rule": f"named by the {annotation['annotation_source'].get('style', 'sidecar')}",
            "style_confidence": 1.0,
            "style_source": annotation["annotation_source"].get("style", "sidecar"),
        }
    bpm = float(annotation["bpm"])
    mode = parse_key(annotation["key"])[1]
    scored = []
    for p in presets.values():
        if p.match is None:
            continue
        fit = tempo_fit(bpm, *p.tempo)
        mode_ok = p.match.get("mode") in (None, mode)
        score = TEMPO_WEIGHT * fit + MODE_WEIGHT * mode_ok
        rule = f"tempo {bpm:g} BPM vs {p.tempo[0]:g}-{p.tempo[1]:g} (fit {fit:.2f}); {mode} mode " + (
            "matches" if mode_ok else f"vs {p.match.get('mode')}"
        )
        scored.append((-score, p.name, rule, score))
    if not scored:
        raise CaptionError("no preset has a match rule: every track needs a style in its sidecar")
    _, name, rule, score = min(scored)
    return {
        "style": name,
        "category": presets[name].category,
        "style_rule": rule,
        "style_confidence": round(score, 3),
        "style_source": "rules",
    }


def fact_tags(annotation: dict[str, Any]) -> list[str]:
    """The measured facts as tags: tempo word, `<bpm> bpm`, the key, the meter."""
    bpm = float(annotation["bpm"])
    return [tempo_word(bpm), f"{round(bpm)} bpm", annotation["key"], f"{annotation['timesignature']}/4 time"]


def tags_for(annotation: dict[str, Any], preset: Preset) -> list[str]:
    vocal = annotation.get("vocal") == "vocal"
    picked: list[str] = []
    for name, n in TAG_COUNTS.items():
        for t in preset.tags[name][:n]:
            if name == "vocal_type" and vocal and t == "instrumental":
                continue
            if t not in picked:
                picked.append(t)
    facts = fact_tags(annotation)
    while picked and len(", ".join(picked + facts)) > PROMPT_MAX_CHARS:
        picked.pop()
    return picked + facts


def caption_for(annotation: dict[str, Any], preset: Preset) -> str:
    bpm = float(annotation["bpm"])
    word = tempo_word(bpm)
    inst = list(preset.tags["instruments"][:3])
    listed = ", ".join(inst[:-1]) + f" and {inst[-1]}" if len(inst) > 1 else inst[0]
    mood = " and ".join(preset.tags["mood"][:2])
    voice = "with vocals" if annotation.get("vocal") == "vocal" else "instrumental"
    return (
        f"{'An' if word[0] in 'aeiou' else 'A'} {word} {preset.tags['genre'][0]} track in "
        f"{spoken_key(annotation['key'])} at {round(bpm)} BPM "
        f"in {annotation['timesignature']}/4, {voice}: {listed}; {mood}."
    )


def caption_record(annotation: dict[str, Any], presets: dict[str, Preset]) -> dict[str, Any]:
    """The track_captions record of one annotation; an `error` instead of tags when it cannot be used."""
    base = {"source_id": annotation["source_id"], "error": None}
    blocking = annotation.get("blocking_problems") or []
    if blocking:
        return {**base, "error": "; ".join(blocking)}
    try:
        style = assign_style(annotation, presets)
    except CaptionError as exc:
        return {**base, "error": str(exc)}
    preset = presets[style["style"]]
    tags = tags_for(annotation, preset)
    return {
        **base,
        **style,
        "tags": tags,
        "prompt": ", ".join(tags),
        "caption": caption_for(annotation, preset),
        "lyrics": annotation.get("lyrics") or INSTRUMENTAL,
        "vocal": annotation.get("vocal", "instrumental"),
        "language": annotation.get("language") or ("instrumental" if annotation.get("vocal") != "vocal" else "unknown"),
        "bpm": round(float(annotation["bpm"])),
        "key": annotation["key"],
        "camelot": camelot(annotation["key"]),
        "timesignature": int(annotation["timesignature"]),
    }


def caption_tempo_problems(caption: str, tags: list[str], bpm: float) -> list[str]:
    """Why a caption's or tag line's tempo disagrees with `bpm` (empty when they agree)."""
    problems = []
    m = _CAPTION_BPM.search(caption)
    if m is None:
        problems.append(f"the caption states no 'at <n> BPM': {caption!r}")
    elif abs(float(m["bpm"]) - bpm) > 0.5 + 1e-9:
        problems.append(f"the caption says {m['bpm']} BPM, the annotation {bpm:g}")
    word = tempo_word(bpm)
    lo, hi = tempo_word_range(word)
    if f" {word} " not in f" {caption} ":
        problems.append(f"the caption lacks the tempo word {word!r} ({lo:g}-{hi:g} BPM)")
    if f"{round(bpm)} bpm" not in tags:
        problems.append(f"the tags lack '{round(bpm)} bpm'")
    if word not in tags:
        problems.append(f"the tags lack the tempo word {word!r}")
    return problems
