"""Where every artifact lives under the data dir: the one module that knows the paths.

Every function takes the data-dir root explicitly (`root`) and reads no
environment: the Dagster definitions resolve the root once
(`music_assets.paths.data_dir`, from `MUSIC_ASSETS_DATA_DIR`) and pass it
down. The tree is described in docs/design.md; the Hugging Face staging
folder's inner layout is `music_assets.publish.layout`.
"""

from __future__ import annotations

from pathlib import Path

# folders under the data dir that hold outputs (never scanned as inputs)
OUTPUT_DIRS: tuple[str, ...] = (
    "catalog",
    "sources",
    "rudiments",
    "hf_staging",
    "hf_model_staging",
    "models",
    "training_sets",
)
PARTITION_TABLES: tuple[str, ...] = ("samples", "strokes", "measures", "exercises")
AUDIO_TABLE = "audio"
# the texture kinds rudiment audio mixes in as background beds
TEXTURE_BED_KINDS: tuple[str, ...] = ("hiss", "clouds")


def raw_audio_dir(root: Path) -> Path:
    return Path(root) / "raw_audio"


def catalog_dir(root: Path) -> Path:
    return Path(root) / "catalog"


def audio_catalog_path(root: Path) -> Path:
    return catalog_dir(root) / "audio_catalog.parquet"


def selected_sources_path(root: Path) -> Path:
    return catalog_dir(root) / "selected_sources.parquet"


def sources_dir(root: Path) -> Path:
    return Path(root) / "sources"


def prepared_dir(sources: Path) -> Path:
    """The prepared sources (`<source_id>.flac`) under `sources` (= `sources_dir(root)`)."""
    return Path(sources) / "prepared"


def textures_dir(sources: Path) -> Path:
    """texture_beds' folders (`<source_id>/<kind>/*.flac`) under `sources` (= `sources_dir(root)`)."""
    return Path(sources) / "textures"


def texture_bed_files(sources: Path) -> list[Path]:
    """The hiss and clouds files of every texture_beds partition whose source is still prepared,
    sorted by their path relative to `sources` (= `sources_dir(root)`)."""
    folder = textures_dir(sources)
    files = (p for kind in TEXTURE_BED_KINDS for p in folder.glob(f"*/{kind}/*.flac"))
    live = [p for p in files if (prepared_dir(sources) / f"{p.parent.parent.name}.flac").is_file()]
    return sorted(live, key=lambda p: p.relative_to(sources).as_posix())


def rudiments_dir(root: Path) -> Path:
    return Path(root) / "rudiments"


def profiles_path(root: Path) -> Path:
    return rudiments_dir(root) / "profiles.parquet"


def splits_path(root: Path) -> Path:
    return rudiments_dir(root) / "splits.json"


def library_path(root: Path) -> Path:
    return rudiments_dir(root) / "library.parquet"


def midi_dir(slug: str, root: Path) -> Path:
    return rudiments_dir(root) / "midi" / slug


def midi_relpath(slug: str, sample_id: str) -> str:
    """The `midi_path` column: POSIX, relative to the data dir."""
    return f"rudiments/midi/{slug}/{sample_id}.mid"


def performance_dir(slug: str, root: Path) -> Path:
    """One rudiment's performance tables (`PARTITION_TABLES` and `AUDIO_TABLE`, parquet)."""
    return rudiments_dir(root) / "performances" / slug


def audio_dir(slug: str, root: Path) -> Path:
    """One rudiment's rendered FLAC files."""
    return rudiments_dir(root) / "audio" / slug


def audio_relpath(slug: str, sample_id: str) -> str:
    """The `audio_path` column: POSIX, relative to the data dir."""
    return f"rudiments/audio/{slug}/{sample_id}.flac"


def labels_dir(root: Path) -> Path:
    return rudiments_dir(root) / "labels"


def hf_staging_dir(root: Path) -> Path:
    return Path(root) / "hf_staging"


def models_dir(root: Path) -> Path:
    return Path(root) / "models"


def hf_model_staging_dir(root: Path) -> Path:
    """The model repository as it will be pushed to the Hub (`hf_model`)."""
    return Path(root) / "hf_model_staging"


def training_sets_dir(root: Path) -> Path:
    """annotations/, captions/, style_presets.parquet and one folder per set."""
    return Path(root) / "training_sets"


def manifests_dir(root: Path) -> Path:
    """Per-partition manifests (file hashes, config fingerprint): `music_assets.integrity`."""
    return Path(root) / "manifests"


def locks_dir(root: Path) -> Path:
    """Lock files of partitions being written: `music_assets.locks`."""
    return Path(root) / ".locks"


def generated_dirs(root: Path) -> list[Path]:
    """Folders under the data dir that hold outputs (never scanned as inputs)."""
    return [Path(root) / n for n in (*OUTPUT_DIRS, "manifests", ".locks", "dagster_home")]
