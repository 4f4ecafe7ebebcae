"""Names shared by the rudiment dataset, the models and the Dagster partitions."""

from __future__ import annotations

# The 40 PAS International Drum Rudiments, in PAS order.
RUDIMENT_SLUGS: tuple[str, ...] = (
    "single_stroke_roll",
    "single_stroke_four",
    "single_stroke_seven",
    "multiple_bounce_roll",
    "triple_stroke_roll",
    "double_stroke_open_roll",
    "five_stroke_roll",
    "six_stroke_roll",
    "seven_stroke_roll",
    "nine_stroke_roll",
    "ten_stroke_roll",
    "eleven_stroke_roll",
    "thirteen_stroke_roll",
    "fifteen_stroke_roll",
    "seventeen_stroke_roll",
    "single_paradiddle",
    "double_paradiddle",
    "triple_paradiddle",
    "paradiddle_diddle",
    "flam",
    "flam_accent",
    "flam_tap",
    "flamacue",
    "flam_paradiddle",
    "single_flammed_mill",
    "flam_paradiddle_diddle",
    "pataflafla",
    "swiss_army_triplet",
    "inverted_flam_tap",
    "flam_drag",
    "drag",
    "single_drag_tap",
    "double_drag_tap",
    "lesson_25",
    "single_dragadiddle",
    "drag_paradiddle_1",
    "drag_paradiddle_2",
    "single_ratamacue",
    "double_ratamacue",
    "triple_ratamacue",
)

SKILL_TIERS: tuple[str, ...] = ("beginner", "intermediate", "advanced", "professional")
SPLITS: tuple[str, ...] = ("train", "validation", "test")
