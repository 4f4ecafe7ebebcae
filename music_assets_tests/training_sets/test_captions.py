"""Styles, tags and captions: consistent with the annotation and the preset vocabulary."""

from __future__ import annotations

import pytest

from music_assets.training_sets import captions, keys
from music_assets.training_sets.presets import load_presets

PRESETS = load_presets()


def annotation(bpm: float = 96.0, key: str = "E minor", **extra) -> dict:
    return {
        "source_id": "abc123",
        "bpm": bpm,
        "key": key,
        "timesignature": 4,
        "annotation_source": {
            "bpm": "measured",
            "key": "measured",
            "timesignature": "measured",
            "style": "sidecar" if "style" in extra else "rules",
        },
        "vocal": "instrumental",
        "lyrics": None,
        **extra,
    }


def test_rules_pick_a_preset_whose_tempo_and_mode_fit() -> None:
    rec = captions.caption_record(annotation(96.0, "E minor"), PRESETS)
    assert rec["style"] == "funk-groove" and rec["style_source"] == "rules" and rec["style_confidence"] == 1.0
    assert "96 BPM vs 90-115" in rec["style_rule"]
    slow = captions.caption_record(annotation(68.0, "F major"), PRESETS)
    assert slow["style"] == "string-ballad"


def test_tags_come_from_the_vocabulary_plus_the_facts() -> None:
    rec = captions.caption_record(annotation(79.6, "Eb major", style="winter-lofi"), PRESETS)
    vocab = PRESETS["winter-lofi"].vocabulary
    facts = captions.fact_tags(annotation(79.6, "Eb major"))
    assert facts == ["slow", "80 bpm", "Eb major", "4/4 time"]
    assert all(t in vocab or t in facts for t in rec["tags"]) and rec["tags"][-4:] == facts
    assert len(rec["prompt"]) <= captions.PROMPT_MAX_CHARS
    # the caption states the same tempo, in words and figures, and the key spelled out
    assert rec["caption"].startswith("A slow lofi hip hop track in E-flat major at 80 BPM in 4/4")
    assert captions.caption_tempo_problems(rec["caption"], rec["tags"], 79.6) == []
    assert rec["style_source"] == "sidecar" and rec["lyrics"] == captions.INSTRUMENTAL


def test_tempo_disagreement_is_found() -> None:
    rec = captions.caption_record(annotation(96.0), PRESETS)
    problems = captions.caption_tempo_problems(rec["caption"], rec["tags"], 120.0)
    assert any("says 96 BPM" in p for p in problems) and any("'upbeat'" in p for p in problems)


def test_vocal_track_keeps_its_lyrics_and_drops_instrumental() -> None:
    rec = captions.caption_record(
        annotation(80.0, "A minor", style="lofi-hip-hop", vocal="vocal", lyrics="[Verse]\nla la"), PRESETS
    )
    assert "instrumental" not in rec["tags"] and rec["lyrics"] == "[Verse]\nla la"
    assert "with vocals" in rec["caption"] and rec["language"] == "unknown"


def test_unknown_style_is_an_error_row() -> None:
    rec = captions.caption_record(annotation(style="polka"), PRESETS)
    assert rec["error"] and "style 'polka'" in rec["error"] and "tags" not in rec


def test_a_long_vocabulary_is_cut_to_the_v1_prompt_limit_never_the_facts() -> None:
    from dataclasses import replace

    long = replace(
        PRESETS["lofi-hip-hop"], tags={**PRESETS["lofi-hip-hop"].tags, "genre": tuple("x" * 60 for _ in range(3))}
    )
    tags = captions.tags_for(annotation(80.0, "A minor"), long)
    assert len(", ".join(tags)) <= captions.PROMPT_MAX_CHARS and tags[-4:] == captions.fact_tags(
        annotation(80.0, "A minor")
    )


@pytest.mark.parametrize(
    ("text", "scale", "spoken", "cam"),
    [
        ("A minor", "A minor", "A minor", "8A"),
        ("E-flat major", "Eb major", "E-flat major", "5B"),
        ("F#m", "F# minor", "F-sharp minor", "11A"),
    ],
)
def test_key_spellings(text, scale, spoken, cam) -> None:
    assert keys.normalize_key(text) == scale and keys.spoken_key(text) == spoken and keys.camelot(text) == cam


def test_bad_sidecar_values_are_refused() -> None:
    with pytest.raises(ValueError, match="not a number"):
        keys.parse_bpm("fast")
    with pytest.raises(ValueError, match="outside 30-300"):
        keys.parse_bpm(900)
    with pytest.raises(keys.KeyError_):
        keys.parse_key("H dorian")
    assert keys.parse_time_signature("3/4") == 3
    with pytest.raises(ValueError):
        keys.parse_time_signature("5/4")
