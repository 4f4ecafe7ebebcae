"""The dataset card: front matter computed from the data, every column documented, formulas from the code."""

from __future__ import annotations

import inspect

import pyarrow.parquet as pq
import yaml

from music_assets.publish import layout
from music_assets.publish.card import parse_front_matter
from music_assets.rudiments import profiles, scores
from music_assets.rudiments.constants import RUDIMENT_SLUGS


def test_front_matter_is_computed_from_the_data(staged_files) -> None:
    text = (staged_files.staging / "README.md").read_text()
    meta = parse_front_matter(text)
    assert meta["license"] == "cc-by-4.0"
    assert meta["size_categories"] == ["n<1K"]
    assert meta["configs"] == [
        {
            "config_name": "default",
            "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in ("train", "validation", "test")],
        }
    ]
    splits = {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]}
    assert splits == {
        s: sum(pq.ParquetFile(p).metadata.num_rows for p in ps)
        for s, ps in layout.split_shards(staged_files.staging).items()
    }
    features = {f["name"]: f for f in meta["dataset_info"]["features"]}
    assert features["audio"]["dtype"] == "string" and features["overall_score"]["dtype"] == "float64"
    assert meta["dataset_info"]["download_size"] == sum(
        p.stat().st_size for p in (staged_files.staging / "data").glob("*.parquet")
    )


def test_embedded_card_declares_the_audio_feature(staged_embedded) -> None:
    meta = parse_front_matter((staged_embedded.staging / "README.md").read_text())
    features = {f["name"]: f for f in meta["dataset_info"]["features"]}
    assert features["audio"] == {"name": "audio", "dtype": "audio"}
    assert "Media are embedded" in (staged_embedded.staging / "README.md").read_text()


def test_body_documents_columns_rudiments_tiers_formulas_and_plots(staged_files) -> None:
    text = (staged_files.staging / "README.md").read_text()
    assert staged_files.card.undocumented == []
    for table in ("data", "auxiliary/strokes", "auxiliary/measures"):
        path = staged_files.staging / (f"{table}.parquet" if "/" in table else "data/train-00000-of-00001.parquet")
        for column in pq.read_schema(path).names:
            assert f"| `{column}` |" in text, column
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
    assert 'load_dataset("parquet"' in text and '"<owner>/<dataset>"' in text and "howpublished" not in text
    usage = text.split("## Usage", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    compile(usage, "usage", "exec")
    yaml.safe_load(text.split("---\n")[1])
