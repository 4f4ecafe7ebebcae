"""The style presets: 38 in 5 categories, `extends` inheritance, validation errors that name the preset."""

from __future__ import annotations

from collections import Counter

import pytest

from music_assets.training_sets.presets import CATEGORIES, TAG_FIELDS, PresetError, load_presets, parse_presets

BASE = {
    "category": "core",
    "genre": ["lofi hip hop"],
    "mood": ["calm"],
    "instruments": ["piano"],
    "production": ["vinyl crackle"],
    "atmosphere": ["night"],
    "vocal_type": ["instrumental"],
    "tempo": [70, 90],
}


def test_package_presets() -> None:
    presets = load_presets()
    assert len(presets) == 38
    assert Counter(p.category for p in presets.values()) == {
        "core": 10,
        "seasonal": 7,
        "thematic": 9,
        "instrumental": 7,
        "vocal": 5,
    }
    assert set(CATEGORIES) == {p.category for p in presets.values()}
    for p in presets.values():
        assert all(p.tags[f] for f in TAG_FIELDS) and p.tempo[0] < p.tempo[1]


def test_extends_inherits_and_overrides() -> None:
    presets = parse_presets(
        {
            "presets": {
                "base": {**BASE, "match": {"mode": "minor"}, "description": "the parent"},
                "child": {"extends": "base", "mood": ["happy"], "category": "seasonal"},
                "grandchild": {"extends": "child", "tempo": [60, 70]},
            }
        }
    )
    child, grand = presets["child"], presets["grandchild"]
    assert child.tags["mood"] == ("happy",) and child.tags["genre"] == ("lofi hip hop",)
    assert child.category == "seasonal" and child.tempo == (70.0, 90.0)
    assert grand.tags["mood"] == ("happy",) and grand.tempo == (60.0, 70.0) and grand.category == "seasonal"
    assert grand.lineage == ("grandchild", "child", "base")
    # the rule and the description are the preset's own
    assert presets["base"].match == {"mode": "minor"} and child.match is None and child.description == ""


@pytest.mark.parametrize(
    ("presets", "message"),
    [
        ({"a": {**BASE, "extends": "nowhere"}}, "preset 'a': extends unknown preset 'nowhere'"),
        ({"a": {**BASE, "extends": "b"}, "b": {**BASE, "extends": "a"}}, "inheritance cycle"),
        ({"a": {**BASE, "mood": []}}, "preset 'a': mood must be a non-empty list"),
        ({"a": {**BASE, "colour": ["red"]}}, "preset 'a': unknown field(s) colour"),
        ({"a": {**BASE, "category": "misc"}}, "preset 'a': category 'misc'"),
        ({"a": {**BASE, "tempo": [90, 70]}}, "preset 'a': tempo must be"),
        ({"a": {**BASE, "genre": ["a, b"]}}, "without commas"),
        ({"a": {**BASE, "match": {"mode": "dorian"}}}, "match mode"),
        ({"a": BASE, "b": {"extends": "a", "instruments": None}}, "preset 'b': instruments"),
    ],
)
def test_validation_errors_name_the_preset(presets, message) -> None:
    with pytest.raises(PresetError) as err:
        parse_presets({"presets": presets})
    assert message in str(err.value)


def test_a_child_with_an_empty_inherited_set_is_an_error() -> None:
    with pytest.raises(PresetError, match="preset 'b': vocal_type"):
        parse_presets({"presets": {"a": BASE, "b": {"extends": "a", "vocal_type": []}}})
