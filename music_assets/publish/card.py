"""The dataset card (`README.md` with YAML front matter) and its plots.

Everything in the card is computed from the staged data or read from the code
that generated it: split sizes and features from the parquet files, rudiment
definitions from `music_assets.rudiments.library`, tier traits from
`music_assets.rudiments.profiles`, score formulas from the docstring of
`music_assets.rudiments.scores`, augmentation presets from
`music_assets.audio.presets`, package versions from the installed
distributions. The text is deterministic: the same data gives the same bytes.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from music_assets.audio import soundfonts
from music_assets.publish import columns as column_docs
from music_assets.publish import layout, plots
from music_assets.publish.markdown import md_table
from music_assets.publish.staging import MEDIA_COLUMNS, StagedData, plan_info, write_bytes_if_changed
from music_assets.rudiments.constants import RUDIMENT_SLUGS, SKILL_TIERS, SPLITS

# The data records a soundfont by its file name; the registry holds each one's licence.
SOUNDFONT_LICENSES = {sf.file_name: sf.license for sf in soundfonts.SOUNDFONTS.values()}
VERSIONED_PACKAGES = (
    "music_assets",
    "numpy",
    "pandas",
    "pyarrow",
    "pretty_midi",
    "mido",
    "pyfluidsynth",
    "soundfile",
    "soxr",
    "librosa",
    "scipy",
    "pyloudnorm",
    "datasets",
    "huggingface_hub",
    "dagster",
)


# Shown in the usage example while no repository is configured.
UNSET_REPO = "<owner>/<dataset>"


@dataclass(frozen=True)
class CardSettings:
    repo_id: str = ""  # the Hub repository the card is written for; "" = not configured yet
    pretty_name: str = "Drum Rudiments: synthetic snare performances with skill labels"
    license: str = "cc-by-4.0"
    task_categories: tuple[str, ...] = ("audio-classification", "tabular-regression")
    tags: tuple[str, ...] = ("music", "drums", "rudiments", "midi", "synthetic", "music-education")
    # source id -> provenance (license, provider, author, url, ...) of the recordings the
    # background beds were cut from; sources missing here are listed with license "unknown".
    bed_sources: dict[str, dict] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class CardResult:
    files: list[str] = field(default_factory=list)  # paths relative to staging
    written: list[str] = field(default_factory=list)
    undocumented: list[str] = field(default_factory=list)  # "table.column"


# ---------------------------------------------------------------- front matter


@dataclass(frozen=True)
class Config:
    """One subset of the dataset as the card's `configs:` name it."""

    name: str
    about: str
    files: dict[str, list[str]]  # split -> parquet paths relative to staging
    schema: pa.Schema


def configs(staged: StagedData) -> list[Config]:
    """`default` (every family), one config per rudiment family present, one per auxiliary table."""
    out = [
        Config(
            layout.DEFAULT_CONFIG, "every rudiment, one row per performance", staged.split_shards(), staged.data_schema
        )
    ]
    for family in layout.FAMILIES:
        if family in staged.shards:
            out.append(Config(family, f"the {family} rudiments only", staged.shards[family], staged.data_schema))
    about = {"strokes": "one row per stroke", "measures": "one row per cycle of the rudiment"}
    for name, by_split in staged.aux_shards.items():
        out.append(Config(name, f"{about.get(name, name)} (join on sample_id)", by_split, staged.aux_schemas[name]))
    return out


def _file_stats(staging, rels: list[str]) -> tuple[int, int, int]:
    """(rows, uncompressed bytes, bytes on disk) of parquet files, read from their footers."""
    rows = raw = size = 0
    for rel in rels:
        path = layout.shard_file(staging, rel)
        meta = pq.ParquetFile(path).metadata
        rows += meta.num_rows
        planned = plan_info(path)
        if planned:  # a deferred shard, built at upload: its size is the media's plus the table's
            raw += planned["estimated_bytes"]
            size += planned["estimated_bytes"]
            continue
        raw += sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
        size += path.stat().st_size
    return rows, raw, size


def front_matter(staged: StagedData, settings: CardSettings) -> dict:
    """The YAML metadata: license, tasks, size, configs with data files, and per config the features and
    split sizes, all computed from the parquet files written."""
    import datasets  # noqa: PLC0415 - slow import, only when staging

    entries, infos, total_rows = [], [], 0
    for cfg in configs(staged):
        splits = [s for s in SPLITS if s in cfg.files]
        stats = {s: _file_stats(staged.staging, cfg.files[s]) for s in splits}
        if cfg.name == layout.DEFAULT_CONFIG:
            total_rows = sum(st[0] for st in stats.values())
        entries.append(
            {
                "config_name": cfg.name,
                "data_files": [{"split": s, "path": layout.config_data_files(cfg.name, s)} for s in splits],
            }
        )
        infos.append(
            {
                "config_name": cfg.name,
                # datasets' own YAML form of the features (pinned datasets==5.2.0)
                "features": datasets.Features.from_arrow_schema(cfg.schema)._to_yaml_list(),
                "splits": [{"name": s, "num_bytes": stats[s][1], "num_examples": stats[s][0]} for s in splits],
                "download_size": sum(st[2] for st in stats.values()),
                "dataset_size": sum(st[1] for st in stats.values()),
            }
        )
    return {
        "pretty_name": settings.pretty_name,
        "license": settings.license,
        "task_categories": list(settings.task_categories),
        "tags": list(settings.tags),
        "size_categories": [layout.size_category(total_rows)],
        "configs": entries,
        "dataset_info": infos,
    }


def written_for(card_text: str, repo_id: str) -> bool:
    """Whether a card was rendered for `repo_id` (its usage example names the repository)."""
    return f'"{repo_id}"' in card_text


def parse_front_matter(text: str) -> dict:
    """The YAML between the leading `---` lines of a card; ValueError when absent or not a mapping."""
    if not text.startswith("---\n"):
        raise ValueError("the card does not start with a '---' front matter line")
    end = text.find("\n---\n", 4)
    if end < 0:
        raise ValueError("the card's front matter is not closed by a '---' line")
    meta = yaml.safe_load(text[4:end])
    if not isinstance(meta, dict):
        raise ValueError("the card's front matter is not a YAML mapping")
    return meta


# ---------------------------------------------------------------- text helpers


def _num(x: float, digits: int = 1) -> str:
    return "–" if pd.isna(x) else f"{x:.{digits}f}"


def _type_name(t: pa.DataType, column: str, key: str) -> str:
    if key == "data" and column == "audio":
        return "Audio (struct<bytes, path>)"
    return str(t)


def _columns_section(staged: StagedData, result: CardResult) -> str:
    out = []
    tables = [("data", f"`{layout.DATA}/<family>/*.parquet` (one row per sample)", staged.data_schema)]
    tables += [
        (name, f"`{layout.auxiliary_dir(name)}/*.parquet` (config `{name}`)", schema)
        for name, schema in staged.aux_schemas.items()
    ]
    for key, title, schema in tables:
        rows = []
        for f in schema:
            meaning = column_docs.describe(key, f.name)
            if meaning is None:
                result.undocumented.append(f"{key}.{f.name}")
                meaning = "(undocumented)"
            rows.append([f"`{f.name}`", _type_name(f.type, f.name, key), meaning])
        out.append(f"### {title}\n\n" + md_table(["column", "type", "meaning"], rows))
    return "\n\n".join(out)


def _rudiment_section(df: pd.DataFrame) -> str:
    from music_assets.rudiments.library import load_library  # noqa: PLC0415

    lib = load_library()
    counts = df["rudiment_slug"].value_counts()
    rows = []
    for slug in RUDIMENT_SLUGS:
        r = lib[slug]
        rows.append(
            [
                r.pas_number,
                r.name,
                f"`{slug}`",
                r.category,
                r.subdivision,
                f"{r.tempo_min_bpm:g}–{r.tempo_max_bpm:g}",
                f"`{r.sticking}`",
                int(counts.get(slug, 0)),
            ]
        )
    return md_table(["#", "rudiment", "slug", "family", "grid", "tempo (bpm)", "sticking (one cycle)", "samples"], rows)


def _tier_section(df: pd.DataFrame) -> str:
    from music_assets.rudiments import profiles  # noqa: PLC0415

    rows = []
    for tier in SKILL_TIERS:
        d = df[df["skill_tier"] == tier]
        binary = profiles.BINARY_TIER.get(tier, "")
        rows.append(
            [
                tier,
                binary,
                f"{profiles.TIER_MIX.get(tier, 0):.0%}",
                d["profile_id"].nunique(),
                len(d),
                _num(d["overall_score"].mean()) if "overall_score" in d else "–",
                _num(d["timing_error_sd_ms"].mean()) if "timing_error_sd_ms" in d else "–",
            ]
        )
    data_table = md_table(
        [
            "tier",
            "binary class",
            "target share of players",
            "players",
            "samples",
            "mean overall_score",
            "mean timing-error SD (ms)",
        ],
        rows,
    )
    trait_rows = []
    for t in profiles.TRAITS:
        cells = [f"{m:g} ± {s:g} [{lo:g}, {hi:g}]" for m, s, lo, hi in t.tiers]
        trait_rows.append([f"`{t.name}`", t.description, *cells])
    traits = md_table(["trait", "meaning", *SKILL_TIERS], trait_rows)
    left = getattr(profiles, "LEFT_HANDED_SHARE", None)
    return (
        "Players are simulated. Each belongs to one tier; its traits are drawn from a correlated normal "
        "distribution with the tier's mean and standard deviation and clamped to the tier's bounds "
        "(`music_assets.rudiments.profiles`)"
        + (f"; {left:.0%} of players are left-handed and mirror every sticking" if left is not None else "")
        + ". Splits are by player, stratified by tier.\n\n"
        + data_table
        + "\n\nTrait definitions per tier (mean ± SD [lower, upper bound]):\n\n"
        + traits
    )


def _score_section() -> str:
    """The formulas exactly as documented in the scoring code."""
    from music_assets.rudiments import scores  # noqa: PLC0415

    doc = inspect.cleandoc(scores.__doc__ or "").strip()
    body = doc.split("\n", 1)[1].strip() if "\n" in doc else doc
    weights = getattr(scores, "OVERALL_WEIGHTS", {})
    text = (
        "Computed by `music_assets.rudiments.scores` from the labelled strokes; reproduced from its "
        "documentation:\n\n```text\n" + body + "\n```"
    )
    if weights:
        text += "\n\nWeights of `overall_score` (renormalized over the scores that apply):\n\n" + md_table(
            ["score", "weight"], [[f"`{k}`", f"{v:g}"] for k, v in weights.items()]
        )
    return text


def _versions() -> list[list[str]]:
    rows = []
    for dist in VERSIONED_PACKAGES:
        try:
            rows.append([dist, importlib.metadata.version(dist)])
        except importlib.metadata.PackageNotFoundError:
            continue
    try:
        import soundfile  # noqa: PLC0415

        rows.append(["libsndfile", soundfile.__libsndfile_version__])
    except (ImportError, OSError):
        pass
    return rows


def _generation_section(df: pd.DataFrame) -> str:
    from music_assets.audio.presets import PRESETS  # noqa: PLC0415

    parts = []
    if "soundfont" in df:
        rows = [
            [f"`{k}`", SOUNDFONT_LICENSES.get(k, "see the soundfont's distribution"), v]
            for k, v in df["soundfont"].value_counts().sort_index().items()
        ]
        parts.append(
            "Soundfonts (General MIDI, rendered offline with FluidSynth):\n\n"
            + md_table(["soundfont", "soundfont licence", "samples"], rows)
        )
    if "aug_preset" in df:
        rows = [
            [f"`{k}`", PRESETS[k].description if k in PRESETS else "(not a preset of this version)", v]
            for k, v in df["aug_preset"].value_counts().sort_index().items()
        ]
        parts.append(
            "Augmentation presets (recording situations; every parameter drawn per sample is in an "
            "`aug_*` column):\n\n" + md_table(["preset", "what it simulates", "samples"], rows)
        )
    facts = [["samples", len(df)], ["players", df["profile_id"].nunique()]]
    if "tempo_bpm" in df:
        facts.append(["tempo range (bpm)", f"{df['tempo_bpm'].min():.1f}–{df['tempo_bpm'].max():.1f}"])
    if "audio_sample_rate" in df:
        facts.append(
            ["audio sample rates (Hz)", ", ".join(str(int(v)) for v in sorted(df["audio_sample_rate"].unique()))]
        )
    if "audio_duration_sec" in df:
        facts.append(["audio hours", f"{df['audio_duration_sec'].sum() / 3600:.2f}"])
    if "seed" in df:
        facts.append(
            [
                "per-sample seeds",
                f"{df['seed'].nunique()} distinct, derived by stable hashing from the "
                "dataset seed and the sample identity (`music_assets.seeding`)",
            ]
        )
    parts.append(md_table(["setting", "value"], facts))
    parts.append("Package versions:\n\n" + md_table(["package", "version"], _versions()))
    return "\n\n".join(parts)


def bed_source_id(bed: str) -> str:
    """The source id an `aug_bed_source` value was cut from: `textures/<source_id>/<kind>/<file>`
    for a texture bed, the prepared source's id itself otherwise."""
    parts = bed.split("/")
    return parts[1] if len(parts) >= 3 and parts[0] == "textures" else bed


def _bed_section(df: pd.DataFrame, provenance: dict[str, dict]) -> str:
    """Every recording a background bed came from, with its license: what the audio contains of
    other people's work."""
    if "aug_bed_source" not in df:
        return ""
    beds = df["aug_bed_source"].dropna().astype(str)
    beds = beds[~beds.isin(["", "none"])]
    if beds.empty:
        return "No sample has a background bed: the audio contains no recorded material.\n"
    by_source: dict[str, dict[str, int]] = {}
    for bed, n in beds.value_counts().sort_index().items():
        kind = bed.split("/")[2] if bed.startswith("textures/") and bed.count("/") >= 3 else "prepared source"
        counts = by_source.setdefault(bed_source_id(bed), {})
        counts[kind] = counts.get(kind, 0) + int(n)
    rows = []
    for sid in sorted(by_source):
        p = provenance.get(sid, {})
        kinds = ", ".join(f"{k} ({v})" for k, v in sorted(by_source[sid].items()))
        rows.append(
            [
                f"`{sid}`",
                p.get("license") or "unknown",
                p.get("provider") or "",
                p.get("author") or "",
                p.get("url") or "",
                kinds,
                sum(by_source[sid].values()),
            ]
        )
    return (
        "Background beds (room tone, hiss, textures mixed under the drums at a low level; the "
        "`aug_bed_source` column names each sample's bed) were cut from these recordings, under "
        "these licenses:\n\n"
        + md_table(["source", "license", "provider", "author", "url", "bed kinds (samples)", "samples"], rows)
        + "\n"
    )


def _usage(settings: CardSettings, families: list[str]) -> str:
    repo = settings.repo_id or UNSET_REPO
    family = "flam" if "flam" in families else families[0]
    return f"""Audio and MIDI are in the parquet files: `audio` decodes with the `datasets` Audio feature (torchcodec),
`midi` holds the Standard MIDI File's bytes. Nothing else needs downloading.

```python
from datasets import load_dataset

# every family; name a subset for one: load_dataset("{repo}", "{family}")
ds = load_dataset("{repo}")
row = ds["train"][0]
samples = row["audio"].get_all_samples()  # torchcodec AudioSamples: .data, .sample_rate (44100)
midi_bytes = row["midi"]["bytes"]  # a Standard MIDI File
print(row["rudiment_slug"], row["skill_tier"], row["overall_score"])

# one row per stroke (or per cycle: "measures"); join on sample_id
strokes = load_dataset("{repo}", "strokes")

# streaming reads the parquet files as it goes
for row in load_dataset("{repo}", "{family}", split="test", streaming=True):
    print(row["sample_id"], row["audio"]["sampling_rate"])
    break
```"""


LIMITATIONS = """- Every performance is synthetic: players are simulated from published ranges of timing and velocity
  variability, not recorded. Models trained here learn the simulator's idea of skill; validate on real recordings.
- One instrument (a General MIDI snare, pitch 38) rendered from a small set of soundfonts; real drums, sticks,
  heads and rooms vary far more. The augmentation presets only approximate recording situations.
- Skill tiers are defined by the simulator's trait distributions (above), not by human judges; the exercise scores
  are formulas over the labelled strokes, not expert ratings.
- Stroke times are the MIDI note times. Onsets in the audio follow them up to the soundfont's attack; the median
  distance measured in each dry render is `align_median_error_ms`. Reverb, compression and noise beds then blur
  the onsets further.
- The audio is rendered from soundfonts with their own licences (listed under generation settings); check that
  they suit your use of the audio."""


def render_card(staged: StagedData, settings: CardSettings, result: CardResult) -> str:
    df = staged.table.drop_columns([c for c in MEDIA_COLUMNS if c in staged.table.column_names]).to_pandas()
    meta = front_matter(staged, settings)
    n = len(df)
    hours = df["audio_duration_sec"].sum() / 3600 if "audio_duration_sec" in df else None
    by_split = staged.split_shards()
    split_rows = [
        [s, staged.split_rows[s], df.loc[df["split"] == s, "profile_id"].nunique(), len(by_split[s])]
        for s in SPLITS
        if s in by_split
    ]
    media_text = (
        "The parquet files are the whole dataset (as separate files, the media would have exceeded the "
        "staging file budget)."
        if staged.mode == "embedded"
        else f"The same media are also browsable as files, `{layout.AUDIO}/<rudiment>/<sample_id>.flac` and "
        f"`{layout.MIDI}/<rudiment>/<sample_id>.mid` (the names in the `path` fields); the parquet files do not "
        "need them."
    )
    media_lines = (
        ""
        if staged.mode == "embedded"
        else f"{layout.AUDIO}/<rudiment>/<sample_id>.flac                  the same media as files, browsable\n"
        f"{layout.MIDI}/<rudiment>/<sample_id>.mid\n"
    )
    subset_rows = [
        [
            f"`{c.name}`",
            c.about,
            *(_file_stats(staged.staging, c.files[s])[0] if s in c.files else 0 for s in SPLITS),
            ", ".join(f"`{layout.config_data_files(c.name, s)}`" for s in SPLITS if s in c.files),
        ]
        for c in configs(staged)
    ]
    howpublished = (
        f"\n  howpublished = {{\\url{{https://huggingface.co/datasets/{settings.repo_id}}}}},"
        if settings.repo_id
        else ""
    )
    n_rudiments = df["rudiment_slug"].nunique()
    which = "all 40" if n_rudiments == len(RUDIMENT_SLUGS) else f"{n_rudiments} of the 40"
    body = f"""# {settings.pretty_name}

{n} synthetic snare-drum performances of {which} PAS International Drum Rudiments by
{df["profile_id"].nunique()} simulated players in four skill tiers. Every performance comes as General MIDI and as
rendered, augmented audio (FLAC{f", {hours:.2f} hours" if hours is not None else ""}), with labels at three levels:
every stroke (intended and played time and velocity, hand, grace notes, diddles), every cycle of the rudiment, and 14
exercise scores (0-100) per performance. Stroke times are positions in the audio (audio time 0 = MIDI time 0).

![Exercise scores by skill tier]({layout.SCORE_PLOT})

![Samples per rudiment]({layout.RUDIMENT_PLOT})

## Structure

```
README.md
{layout.DATA}/<family>/{{split}}-NNNNN-of-NNNNN.parquet        one row per performance, audio and MIDI embedded
{layout.AUXILIARY}/strokes/{{split}}-NNNNN-of-NNNNN.parquet   one row per stroke (join on sample_id)
{layout.AUXILIARY}/measures/{{split}}-NNNNN-of-NNNNN.parquet  one row per cycle (join on sample_id)
{media_lines}{layout.PLOTS}/*.png
```

Each row of `{layout.DATA}` carries its audio (`audio`: the FLAC file's bytes and name, `datasets` Audio
feature) and its MIDI (`midi`: the file's bytes and name), in row groups of at most 100 rows, one folder per
rudiment family. {media_text}

Splits are by player: no player appears in two splits.

{md_table(["split", "samples", "players", "parquet files"], split_rows)}

Subsets (`load_dataset(repo, "<config>")`; `default` when none is named):

{md_table(["config", "what", *(f"{s} rows" for s in SPLITS), "data files"], subset_rows)}

## Rudiments

{_rudiment_section(df)}

## Skill tiers

{_tier_section(df)}

## Columns

{_columns_section(staged, result)}

## Exercise score formulas

{_score_section()}

## Generation settings

{_generation_section(df)}

### Background beds and their licenses

{_bed_section(df, settings.bed_sources)}

## Usage

{_usage(settings, list(staged.shards))}

## Limitations

{LIMITATIONS}

## Citation

```bibtex
@misc{{drum_rudiments_synthetic,
  title        = {{{{{settings.pretty_name}}}}},{howpublished}
  note         = {{Generated with music\\_assets}}
}}
```
"""
    header = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=120)
    return f"---\n{header}---\n\n{body}"


def write_card(staged: StagedData, settings: CardSettings) -> CardResult:
    """Write the plots and README.md into staging (only files whose content changed)."""
    result = CardResult()
    present = staged.table.column_names
    df = staged.table.select(
        [c for c in ("rudiment_slug", "split", "skill_tier") if c in present]
        + [c for c in column_docs.SCORE_COLUMNS if c in present]
    ).to_pandas()
    scores, splits = list(column_docs.SCORE_COLUMNS), list(staged.split_rows)
    figures = {
        layout.SCORE_PLOT: (
            plots.data_fingerprint(df, scores, SKILL_TIERS),
            lambda fp: plots.score_distributions(df, scores, SKILL_TIERS, fp),
        ),
        layout.RUDIMENT_PLOT: (
            plots.data_fingerprint(df[["rudiment_slug", "split"]], RUDIMENT_SLUGS, splits),
            lambda fp: plots.samples_per_rudiment(df, RUDIMENT_SLUGS, splits, fp),
        ),
    }
    for rel, (fingerprint, draw) in figures.items():
        result.files.append(rel)
        if plots.render_if_changed(staged.staging / rel, fingerprint, draw, write_bytes_if_changed):
            result.written.append(rel)
    result.files.append(layout.CARD)
    if write_bytes_if_changed(staged.staging / layout.CARD, render_card(staged, settings, result).encode("utf-8")):
        result.written.append(layout.CARD)
    return result
