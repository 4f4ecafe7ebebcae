"""The dataset card: front matter computed from the data, every column documented, formulas from the code."""

from __future__ import annotations

import inspect
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import yaml

from music_assets.audio.presets import PRESET_NAMES, PRESETS
from music_assets.publish import layout
from music_assets.publish.card import _generation_section, parse_front_matter
from music_assets.rudiments import profiles, scores
from music_assets.rudiments.constants import RUDIMENT_SLUGS

SPLITS = ("train", "validation", "test")
GOLDEN_GENERATION = Path(__file__).with_name("golden") / "generation_settings.md"


def _rows_and_sizes(paths) -> tuple[int, int]:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in paths), sum(p.stat().st_size for p in paths)


def test_front_matter_is_computed_from_the_data(staged_files) -> None:
    s = staged_files.staging
    meta = parse_front_matter((s / "README.md").read_text())
    assert meta["license"] == "cc-by-4.0"
    assert meta["size_categories"] == ["n<1K"]
    folders = {
        "default": "data/*",
        "roll": "data/roll",
        "diddle": "data/diddle",
        "flam": "data/flam",
        "strokes": "auxiliary/strokes",
        "measures": "auxiliary/measures",
    }
    assert meta["configs"] == [
        {"config_name": name, "data_files": [{"split": sp, "path": f"{folder}/{sp}-*.parquet"} for sp in SPLITS]}
        for name, folder in folders.items()
    ]
    infos = {i["config_name"]: i for i in meta["dataset_info"]}
    assert list(infos) == list(folders)
    for name, folder in folders.items():
        splits = {x["name"]: x["num_examples"] for x in infos[name]["splits"]}
        assert splits == {sp: _rows_and_sizes(sorted(s.glob(f"{folder}/{sp}-*.parquet")))[0] for sp in SPLITS}
        assert infos[name]["download_size"] == _rows_and_sizes(sorted(s.glob(f"{folder}/*.parquet")))[1]
    assert {x["name"]: x["num_examples"] for x in infos["default"]["splits"]} == dict.fromkeys(SPLITS, 6)
    assert {x["name"]: x["num_examples"] for x in infos["flam"]["splits"]} == dict.fromkeys(SPLITS, 2)
    features = {f["name"]: f for f in infos["default"]["features"]}
    assert features["audio"] == {"name": "audio", "dtype": "audio"}
    assert features["midi"] == {
        "name": "midi",
        "struct": [{"name": "bytes", "dtype": "binary"}, {"name": "path", "dtype": "string"}],
    }
    assert features["overall_score"]["dtype"] == "float64"
    assert {f["name"] for f in infos["strokes"]["features"]} == set(
        pq.read_schema(s / "auxiliary/strokes/train-00000-of-00001.parquet").names
    )


def test_embedded_card_declares_the_audio_feature(staged_embedded) -> None:
    text = (staged_embedded.staging / "README.md").read_text()
    meta = parse_front_matter(text)
    infos = {i["config_name"]: i for i in meta["dataset_info"]}
    assert {f["name"]: f for f in infos["flam"]["features"]}["audio"] == {"name": "audio", "dtype": "audio"}
    assert {x["name"]: x["num_examples"] for x in infos["default"]["splits"]} == dict.fromkeys(SPLITS, 6)
    assert "The parquet files are the whole dataset" in text and "audio/<rudiment>" not in text


def test_body_documents_columns_rudiments_tiers_formulas_and_plots(staged_files) -> None:
    text = (staged_files.staging / "README.md").read_text()
    assert staged_files.card.undocumented == []
    for folder in ("data/flam", "auxiliary/strokes", "auxiliary/measures"):
        for column in pq.read_schema(staged_files.staging / folder / "train-00000-of-00001.parquet").names:
            assert f"| `{column}` |" in text, column
    assert "| `audio` | Audio (struct<bytes, path>) |" in text
    # the subsets, with their rows per split counted from the files
    assert "| `flam` | the flam rudiments only | 2 | 2 | 2 | `data/flam/train-*.parquet`" in text
    assert "| `default` | every rudiment, one row per performance | 6 | 6 | 6 |" in text
    assert "| `strokes` | one row per stroke (join on sample_id) | 36 | 36 | 36 |" in text
    assert "also browsable as files, `audio/<rudiment>/<sample_id>.flac`" in text
    # the 40 rudiments, each with its sample count
    for slug in RUDIMENT_SLUGS:
        assert f"`{slug}`" in text
    assert "| 20 | Flam | `flam` | flam | quarter | 60–200 | `lR rL` | 6 |" in text
    # tier traits and score formulas straight from the generator's code
    t = profiles.TRAITS[0]
    assert f"| `{t.name}` | {t.description} |" in text
    formula = next(line for line in inspect.getdoc(scores).splitlines() if line.startswith("- timing_accuracy"))
    assert formula in text
    assert f"![Exercise scores by skill tier]({layout.SCORE_PLOT})" in text
    assert f"![Samples per rudiment]({layout.RUDIMENT_PLOT})" in text
    assert (staged_files.staging / layout.SCORE_PLOT).read_bytes().startswith(b"\x89PNG")
    for section in ("## Usage", "## Limitations", "## Citation", "## Generation settings", "TimGM6mb.sf2"):
        assert section in text
    # the usage example is valid Python; no repository was configured for this card
    assert 'load_dataset("<owner>/<dataset>")' in text and 'load_dataset("<owner>/<dataset>", "strokes")' in text
    assert "howpublished" not in text
    usage = text.split("## Usage", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    compile(usage, "usage", "exec")
    yaml.safe_load(text.split("---\n")[1])


def test_background_bed_section_names_every_source_and_its_license() -> None:
    import pandas as pd

    from music_assets.publish.card import _bed_section, bed_source_id

    df = pd.DataFrame(
        {
            "aug_bed_source": [
                "textures/aaa/hiss/hiss_00.flac",
                "textures/aaa/clouds/cloud_01.flac",
                "textures/aaa/hiss/hiss_00.flac",
                "bbb",  # a bed cut from the prepared source itself
                "",  # no bed
            ]
        }
    )
    provenance = {"aaa": {"license": "CC0-1.0", "provider": "field kit", "author": "A. N.", "url": "https://x.test/a"}}
    text = _bed_section(df, provenance)
    lines = [line for line in text.splitlines() if line.startswith("| `")]
    assert lines == [
        "| `aaa` | CC0-1.0 | field kit | A. N. | https://x.test/a | clouds (1), hiss (2) | 3 |",
        "| `bbb` | unknown |  |  |  | prepared source (1) | 1 |",
    ]
    assert bed_source_id("textures/aaa/hiss/hiss_00.flac") == "aaa" and bed_source_id("bbb") == "bbb"
    assert "no recorded material" in _bed_section(pd.DataFrame({"aug_bed_source": ["", ""]}), {})


def test_generation_settings_say_what_each_augmentation_preset_simulates(staged_files) -> None:
    text = (staged_files.staging / "README.md").read_text()
    # all 18 samples of the fixture use clean_studio; its row carries the preset's own description
    description = PRESETS["clean_studio"].description
    assert description
    assert f"| `clean_studio` | {description} | 18 |" in text


def _generation_frame() -> pd.DataFrame:
    """Every registered soundfont and one outside the registry; every preset and one retired."""
    fonts = ["TimGM6mb.sf2"] * 3 + ["FluidR3_GM.sf2"] * 2 + ["MyKit.sf2"]
    presets = [*PRESET_NAMES, "retired_preset"]
    n = max(len(fonts), len(presets))
    return pd.DataFrame(
        {
            "soundfont": (fonts * n)[:n],
            "aug_preset": (presets * n)[:n],
            "profile_id": [f"p{i % 3}" for i in range(n)],
        }
    )


def test_generation_settings_text_is_what_it_was_before_the_soundfont_registry() -> None:
    """golden/generation_settings.md was written by the card code before the soundfonts moved to
    their registry (everything above the package versions, which depend on the environment)."""
    text = _generation_section(_generation_frame()).split("Package versions:")[0]
    assert text == GOLDEN_GENERATION.read_text()


def test_every_preset_used_says_what_it_simulates(staged_files) -> None:
    def preset_rows(text: str) -> dict[str, str]:
        table = text.split("| preset | what it simulates | samples |", 1)[1].split("\n\n", 1)[0]
        cells = [line.split(" | ") for line in table.splitlines() if line.startswith("| `")]
        return {c[0].strip("| `"): c[1] for c in cells}

    rows = preset_rows(_generation_section(_generation_frame()))
    assert rows == {
        **{p: PRESETS[p].description for p in PRESET_NAMES},
        "retired_preset": "(not a preset of this version)",
    }
    assert all(PRESETS[p].description.strip() for p in PRESET_NAMES)
    # the staged card: every preset its data uses has its description
    staged = preset_rows((staged_files.staging / "README.md").read_text())
    assert staged and all(staged[p] == PRESETS[p].description for p in staged)
