"""The 40 PAS rudiments as data: hand-written PAS expectations and validation errors."""

from __future__ import annotations

import shutil
from fractions import Fraction as F
from pathlib import Path

import pytest
import yaml

from music_assets.rudiments.constants import RUDIMENT_SLUGS
from music_assets.rudiments.library import DATA_DIR, RudimentDataError, load_library, load_rudiment

# slug: (sticking, subdivision, primary-stroke positions in quarter-note beats, cycle_beats), from the PAS sheet
PAS = {
    "single_stroke_roll": ("R L R L", "sixteenth", [0, F(1, 4), F(1, 2), F(3, 4)], 1),
    "single_stroke_four": ("R L R >L", "sixteenth_triplet", [0, F(1, 6), F(1, 3), F(1, 2)], 1),
    "triple_stroke_roll": ("R R R L L L", "sixteenth_triplet", [F(i, 6) for i in range(6)], 1),
    "double_stroke_open_roll": ("R R L L", "sixteenth", [0, F(1, 4), F(1, 2), F(3, 4)], 1),
    "five_stroke_roll": (
        "R R L L >R L L R R >L",
        "sixteenth",
        [0, F(1, 4), F(1, 2), F(3, 4), 1, 2, F(9, 4), F(5, 2), F(11, 4), 3],
        4,
    ),
    "six_stroke_roll": (">R L L R R >L", "thirty_second", [0, F(1, 4), F(3, 8), F(1, 2), F(5, 8), F(3, 4)], 1),
    "single_paradiddle": (">R L R R >L R L L", "sixteenth", [F(i, 4) for i in range(8)], 2),
    "double_paradiddle": (">R L R L R R >L R L R L L", "sixteenth_triplet", [F(i, 6) for i in range(12)], 2),
    "paradiddle_diddle": (">R L R R L L", "sixteenth_triplet", [F(i, 6) for i in range(6)], 1),
    "flam": ("lR rL", "quarter", [0, 1], 2),
    "flam_accent": (">lR L R >rL R L", "eighth_triplet", [F(i, 3) for i in range(6)], 2),
    "flam_tap": (">lR R >rL L", "sixteenth", [F(i, 4) for i in range(4)], 1),
    "swiss_army_triplet": (">lR R L", "eighth_triplet", [0, F(1, 3), F(2, 3)], 1),
    "pataflafla": (">lR L R >rL", "sixteenth", [F(i, 4) for i in range(4)], 1),
    "drag": ("llR rrL", "quarter", [0, 1], 2),
    "lesson_25": ("llR L >R rrL R >L", "sixteenth", [0, F(1, 4), F(1, 2), 1, F(5, 4), F(3, 2)], 2),
    "single_ratamacue": (
        "llR L R >L rrL R L >R",
        "sixteenth_triplet",
        [0, F(1, 6), F(1, 3), F(1, 2), 1, F(7, 6), F(4, 3), F(3, 2)],
        2,
    ),
}
TRIPLET_FIGURES = {
    "single_stroke_four",
    "single_stroke_seven",
    "triple_stroke_roll",
    "seven_stroke_roll",
    "double_paradiddle",
    "paradiddle_diddle",
    "flam_accent",
    "flam_paradiddle_diddle",
    "swiss_army_triplet",
    "flam_drag",
    "single_ratamacue",
    "double_ratamacue",
    "triple_ratamacue",
}


def test_exactly_the_40_pas_rudiments_in_order() -> None:
    lib = load_library()
    assert list(lib) == list(RUDIMENT_SLUGS) and len(set(lib)) == 40
    assert [r.pas_number for r in lib.values()] == list(range(1, 41))
    assert {r.category for r in lib.values()} == {"roll", "diddle", "flam", "drag"}


@pytest.mark.parametrize("slug", sorted(PAS))
def test_rudiment_matches_the_pas_sheet(slug: str) -> None:
    sticking, subdivision, positions, cycle_beats = PAS[slug]
    r = load_library()[slug]
    assert r.sticking == sticking
    assert r.subdivision == subdivision
    assert r.beat_positions() == positions
    assert r.cycle_beats == cycle_beats


def test_triplet_figures_sit_on_a_triplet_grid_and_paradiddles_on_sixteenths() -> None:
    lib = load_library()
    assert {s for s, r in lib.items() if r.is_triplet} == TRIPLET_FIGURES
    assert lib["single_paradiddle"].subdivision == "sixteenth"


def test_grace_notes_flams_one_and_drags_two_at_distinct_offsets_by_the_other_hand() -> None:
    for r in load_library().values():
        for s in r.strokes:
            if s.grace == "flam":
                assert s.grace_offsets == (-1.0,)
            elif s.grace == "drag":
                assert len(s.grace_offsets) == 2 and s.grace_offsets[0] < s.grace_offsets[1] < 0
            assert s.grace_hand != s.hand
    lib = load_library()
    assert [s.grace for s in lib["double_drag_tap"].strokes] == ["drag", "drag", None] * 2
    assert all(s.buzz for s in lib["multiple_bounce_roll"].strokes)
    assert [s.diddle for s in lib["single_paradiddle"].strokes] == [0, 0, 1, 2] * 2


def test_every_rudiment_has_its_own_tempo_range() -> None:
    lib = load_library()
    ranges = {(r.tempo_min_bpm, r.tempo_max_bpm) for r in lib.values()}
    assert len(ranges) > 5
    assert all(30 <= r.tempo_min_bpm < r.tempo_max_bpm <= 240 for r in lib.values())
    assert lib["six_stroke_roll"].tempo_max_bpm < lib["single_stroke_roll"].tempo_max_bpm


def _copy_data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(DATA_DIR, folder)
    return folder


def _edit(path: Path, edit) -> None:
    doc = yaml.safe_load(path.read_text())
    edit(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.mark.parametrize(
    ("slug", "edit", "field"),
    [
        ("flam_accent", lambda d: d["strokes"][1].update(hand="X"), "strokes[1].hand"),
        ("flam_accent", lambda d: d["strokes"][2].update(at=0), "strokes"),
        ("drag", lambda d: d["strokes"][0].update(grace_offsets=[-1, -1]), "strokes[0].grace_offsets"),
        ("flam", lambda d: d.update(sticking="lR lR"), "sticking"),
        ("single_paradiddle", lambda d: d.update(subdivision="sixteenths"), "subdivision"),
        ("single_paradiddle", lambda d: d.update(tempo_bpm=[120, 60]), "tempo_bpm"),
        ("single_paradiddle", lambda d: d["strokes"][3].update(diddle=0), "strokes[2].diddle"),
        ("flam_tap", lambda d: d.pop("cycle_beats"), "cycle_beats"),
        ("flam_tap", lambda d: d.update(pas_number=3), "pas_number"),
        ("lesson_25", lambda d: d["strokes"][4].update(hand="L"), "alternates"),
    ],
)
def test_invalid_data_names_the_file_and_the_field(tmp_path: Path, slug: str, edit, field: str) -> None:
    folder = _copy_data(tmp_path)
    _edit(folder / f"{slug}.yaml", edit)
    with pytest.raises(RudimentDataError) as err:
        load_library(folder)
    assert err.value.path == folder / f"{slug}.yaml" and err.value.field == field
    assert f"{slug}.yaml" in str(err.value) and field in str(err.value)


def test_a_missing_rudiment_file_is_an_error(tmp_path: Path) -> None:
    folder = _copy_data(tmp_path)
    (folder / "pataflafla.yaml").unlink()
    with pytest.raises(RudimentDataError, match="pataflafla"):
        load_library(folder)


def test_broken_yaml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "flam.yaml"
    bad.write_text("slug: flam\nstrokes: [\n")
    with pytest.raises(RudimentDataError, match=r"flam\.yaml.*not valid YAML"):
        load_rudiment(bad)
