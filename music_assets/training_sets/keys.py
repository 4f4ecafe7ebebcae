"""Keys, tempos and meters as the trainers spell them.

A key is a pitch class (0 = C) and a mode ("major" or "minor"). Written for the
trainers it is a *keyscale*: the tonic with an ASCII accidental and the mode,
`"Eb major"`, `"F# minor"` -- the spelling ACE-Step 1.5 accepts (its
VALID_KEYSCALES are note + "", "#", "b", "♯" or "♭" + " major"/" minor", so
`"E-flat major"` would be rejected there). Captions read better spelled out
(`"E-flat major"`): `spoken_key` gives that form. The Camelot code is the one
DJ key finders export (`8A` = A minor, `8B` = C major).
"""

from __future__ import annotations

import re

MODES = ("major", "minor")
# The usual spelling of each tonic: flats for the flat keys, F# for the tritone.
SHARP_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
MAJOR_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B")
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTALS = {"": 0, "#": 1, "♯": 1, "sharp": 1, "b": -1, "♭": -1, "flat": -1}
# Camelot wheel: number of each major tonic (B = major) and minor tonic (A = minor).
_CAMELOT_MAJOR = {0: 8, 7: 9, 2: 10, 9: 11, 4: 12, 11: 1, 6: 2, 1: 3, 8: 4, 3: 5, 10: 6, 5: 7}
_CAMELOT_MINOR = {9: 8, 4: 9, 11: 10, 6: 11, 1: 12, 8: 1, 3: 2, 10: 3, 5: 4, 0: 5, 7: 6, 2: 7}
_KEY_RE = re.compile(
    r"^(?P<letter>[A-Ga-g]) ?(?P<acc>#|♯|b|♭|sharp|flat)? ?(?P<mode>major|minor|maj|min|m)?$", re.IGNORECASE
)
# Tempo words for captions and tags, by BPM range [lo, hi).
TEMPO_WORDS = (
    (0, 66, "very slow"),
    (66, 80, "slow"),
    (80, 100, "mid-tempo"),
    (100, 125, "upbeat"),
    (125, 1000, "fast"),
)
TIME_SIGNATURES = (2, 3, 4, 6)  # the numerators ACE-Step 1.5 accepts


class KeyError_(ValueError):
    """A key string that cannot be read."""


def keyscale(tonic: int, mode: str) -> str:
    """`"Eb major"`: the ACE-Step spelling of a key."""
    if mode not in MODES:
        raise KeyError_(f"mode must be major or minor, got {mode!r}")
    names = MAJOR_NAMES if mode == "major" else MINOR_NAMES
    return f"{names[tonic % 12]} {mode}"


def parse_key(text: str) -> tuple[int, str]:
    """(tonic pitch class, mode) of a key written as `"A minor"`, `"E-flat major"`, `"F#m"`, `"Bb"` (major)."""
    if not isinstance(text, str):
        raise KeyError_(f"a key must be text like 'A minor', got {type(text).__name__}")
    m = _KEY_RE.match(" ".join(text.replace("-", " ").split()))
    if m is None:
        raise KeyError_(f"{text!r} is not a key (expected e.g. 'A minor', 'E-flat major', 'F# minor')")
    letter = m["letter"].upper()
    acc = (m["acc"] or "").lower()
    # "F#m" and "Am" are minor; a key without a mode is major.
    mode = "minor" if (m["mode"] or "").lower() in ("minor", "min", "m") else "major"
    return (_LETTERS[letter] + _ACCIDENTALS[acc]) % 12, mode


def normalize_key(text: str) -> str:
    """Any readable key as its keyscale (`"e-flat major"` -> `"Eb major"`)."""
    return keyscale(*parse_key(text))


def spoken_key(text: str) -> str:
    """`"Eb major"` -> `"E-flat major"`: the key for a sentence."""
    tonic, mode = parse_key(text)
    name = keyscale(tonic, mode).split()[0]
    if len(name) == 2:
        name = f"{name[0]}-{'flat' if name[1] == 'b' else 'sharp'}"
    return f"{name} {mode}"


def relative(text: str) -> str:
    """The relative major/minor of a key (`"A minor"` -> `"C major"`)."""
    tonic, mode = parse_key(text)
    return keyscale((tonic + 3) % 12, "major") if mode == "minor" else keyscale((tonic + 9) % 12, "minor")


def camelot(text: str) -> str:
    """The Camelot code of a key (`"A minor"` -> `"8A"`, `"C major"` -> `"8B"`)."""
    tonic, mode = parse_key(text)
    return f"{_CAMELOT_MAJOR[tonic]}B" if mode == "major" else f"{_CAMELOT_MINOR[tonic]}A"


def tempo_word(bpm: float) -> str:
    for lo, hi, word in TEMPO_WORDS:
        if lo <= bpm < hi:
            return word
    return TEMPO_WORDS[-1][2]


def tempo_word_range(word: str) -> tuple[float, float]:
    """The BPM range [lo, hi) a tempo word stands for."""
    for lo, hi, w in TEMPO_WORDS:
        if w == word:
            return float(lo), float(hi)
    raise KeyError_(f"unknown tempo word {word!r}")


def parse_bpm(value: object) -> float:
    """A BPM from a sidecar value (number or numeric text), 30-300 like the trainers accept."""
    if isinstance(value, bool):
        raise ValueError(f"bpm must be a number, got {value!r}")
    try:
        bpm = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"bpm {value!r} is not a number") from None
    if not 30.0 <= bpm <= 300.0:
        raise ValueError(f"bpm {bpm:g} is outside 30-300")
    return bpm


def parse_time_signature(value: object) -> int:
    """The beats per bar from `4`, `"4"` or `"4/4"` (2, 3, 4 or 6, as ACE-Step 1.5 accepts)."""
    text = str(value).strip()
    head = text.split("/", 1)[0].strip()
    try:
        n = int(head)
    except ValueError:
        raise ValueError(f"time signature {value!r} is not one of 2, 3, 4, 6 (or 3/4, 4/4 ...)") from None
    if n not in TIME_SIGNATURES:
        raise ValueError(f"time signature {value!r}: beats per bar must be one of {TIME_SIGNATURES}")
    return n
