"""Quality gates on a staging folder, computed from the files alone.

Each check returns a `CheckOutcome` (passed, a one-line description, metadata)
and never raises for a bad folder: a corrupted staging folder is a failed
check, not a crash.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.parquet as pq

from music_assets.publish import layout
from music_assets.publish.card import parse_front_matter
from music_assets.publish.staging import MEDIA_COLUMNS

REQUIRED_FRONT_MATTER = ("license", "task_categories", "size_categories", "configs", "dataset_info")
SHOWN = 10  # examples of problems listed in metadata


@dataclass
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict[str, object] = field(default_factory=dict)


def _parquet_files(staging: Path) -> list[Path]:
    return sorted(p for d in (layout.DATA, layout.AUXILIARY) for p in (staging / d).glob("*.parquet"))


def _path_columns(schema: pa.Schema) -> list[str]:
    return [f.name for f in schema if f.name in MEDIA_COLUMNS or f.name.endswith("_path")]


def _inside(staging: Path, rel: str) -> bool:
    p = PurePosixPath(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts and (staging / rel).is_file()


def paths_exist(staging: Path) -> CheckOutcome:
    """Every path in every parquet file names a file inside staging; embedded media have bytes."""
    files = _parquet_files(staging)
    if not files:
        return CheckOutcome(False, f"no parquet files under {staging}", {})
    checked = embedded = 0
    problems: list[str] = []
    for path in files:
        rel_file = path.relative_to(staging).as_posix()
        try:
            schema = pq.read_schema(path)
            cols = _path_columns(schema)
            table = pq.read_table(path, columns=cols) if cols else None
        except Exception as exc:  # noqa: BLE001 - an unreadable file is a failed check
            problems.append(f"{rel_file}: unreadable ({exc})")
            continue
        for col in cols:
            arr = table[col].combine_chunks()
            if pa.types.is_struct(arr.type):
                data = arr.field("bytes")
                for i, b in enumerate(data.to_pylist()):
                    embedded += 1
                    if not b:
                        problems.append(f"{rel_file}: row {i} `{col}` has no bytes")
                continue
            for i, rel in enumerate(arr.to_pylist()):
                checked += 1
                if rel is None or not _inside(staging, rel):
                    problems.append(f"{rel_file}: row {i} `{col}` = {rel!r} is not a file in staging")
    meta = {
        "parquet_files": len(files),
        "paths_checked": checked,
        "embedded_media_checked": embedded,
        "problems": len(problems),
    }
    if problems:
        meta["first_problems"] = "\n".join(problems[:SHOWN])
        return CheckOutcome(False, f"{len(problems)} path(s) in the parquet files do not resolve in staging", meta)
    return CheckOutcome(True, f"all {checked} paths resolve ({embedded} embedded media have bytes)", meta)


def _shard_rows(staging: Path) -> tuple[dict[str, int], list[str]]:
    """Rows per split from the parquet footers, and problems with the shard names."""
    rows: dict[str, int] = {}
    problems = []
    for split, shards in layout.split_shards(staging).items():
        counts = set()
        indices = []
        for p in shards:
            _, index, count = layout.parse_shard_name(p.name)
            counts.add(count)
            indices.append(index)
            try:
                rows[split] = rows.get(split, 0) + pq.ParquetFile(p).metadata.num_rows
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{p.name}: unreadable ({exc})")
        if len(counts) != 1 or sorted(indices) != list(range(next(iter(counts)))):
            problems.append(
                f"split {split}: shard names {sorted(p.name for p in shards)} are not a complete NNNNN-of-NNNNN series"
            )
    return rows, problems


def _read_card(staging: Path) -> dict:
    return parse_front_matter((staging / layout.CARD).read_text(encoding="utf-8"))


def card_split_sizes(staging: Path) -> CheckOutcome:
    """The split sizes in the card's dataset_info equal the parquet row counts."""
    rows, problems = _shard_rows(staging)
    try:
        meta = _read_card(staging)
        card = {s["name"]: int(s["num_examples"]) for s in meta["dataset_info"]["splits"]}
    except Exception as exc:  # noqa: BLE001 - a missing or malformed card fails this check too
        return CheckOutcome(False, f"cannot read split sizes from the card: {exc}", {"parquet_rows": str(rows)})
    for split in sorted(set(card) | set(rows)):
        if card.get(split) != rows.get(split):
            problems.append(f"split {split}: card says {card.get(split)}, parquet files hold {rows.get(split)}")
    md = {"card_splits": str(dict(sorted(card.items()))), "parquet_rows": str(dict(sorted(rows.items())))}
    if problems:
        md["problems"] = "\n".join(problems[:SHOWN])
        return CheckOutcome(False, "; ".join(problems[:3]), md)
    return CheckOutcome(True, f"card and parquet agree: {dict(sorted(rows.items()))}", md)


def profiles_disjoint(staging: Path) -> CheckOutcome:
    """No profile_id appears in two splits (the split is the data file's)."""
    seen: dict[str, set[str]] = {}
    problems = []
    for split, shards in layout.split_shards(staging).items():
        for p in shards:
            try:
                t = pq.read_table(p, columns=["profile_id", "split"])
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{p.name}: cannot read profile_id/split ({exc})")
                continue
            wrong = {s for s in t["split"].to_pylist() if s != split}
            if wrong:
                problems.append(f"{p.name}: rows labelled split {sorted(wrong, key=str)}")
            for pid in set(t["profile_id"].to_pylist()):
                seen.setdefault(pid, set()).add(split)
    if not seen and not problems:
        return CheckOutcome(False, "no data shards to check", {})
    shared = {pid: sorted(s) for pid, s in seen.items() if len(s) > 1}
    problems += [f"profile {pid} is in {', '.join(s)}" for pid, s in sorted(shared.items())]
    md = {"profiles": len(seen), "profiles_in_several_splits": len(shared)}
    if problems:
        md["problems"] = "\n".join(problems[:SHOWN])
        return CheckOutcome(False, f"{len(problems)} problem(s): {problems[0]}", md)
    return CheckOutcome(True, f"{len(seen)} profiles, each in one split", md)


def front_matter_valid(staging: Path) -> CheckOutcome:
    """The card's front matter parses, has the required keys, and its data_files match the shards."""
    try:
        meta = _read_card(staging)
    except FileNotFoundError:
        return CheckOutcome(False, f"{layout.CARD} is missing", {})
    except Exception as exc:  # noqa: BLE001 - yaml errors and a missing front matter
        return CheckOutcome(False, f"the front matter does not parse: {exc}", {})
    problems = [f"missing key {k!r}" for k in REQUIRED_FRONT_MATTER if k not in meta]
    shards = {s: [p.relative_to(staging).as_posix() for p in ps] for s, ps in layout.split_shards(staging).items()}
    covered: set[str] = set()
    try:
        for cfg in meta.get("configs") or []:
            for entry in cfg["data_files"]:
                matched = [f for fs in shards.values() for f in fs if fnmatch.fnmatchcase(f, entry["path"])]
                if not matched:
                    problems.append(
                        f"config {cfg['config_name']!r} split {entry['split']!r}: "
                        f"{entry['path']!r} matches no data file"
                    )
                if any(f not in shards.get(entry["split"], []) for f in matched):
                    problems.append(f"{entry['path']!r} matches files of another split")
                covered.update(matched)
    except (KeyError, TypeError) as exc:
        problems.append(f"malformed configs entry: {exc!r}")
    uncovered = sorted(f for fs in shards.values() for f in fs if f not in covered)
    if uncovered:
        problems.append(f"data files in no config: {', '.join(uncovered[:SHOWN])}")
    md = {"keys": ", ".join(meta)}
    if problems:
        md["problems"] = "\n".join(problems[:SHOWN])
        return CheckOutcome(False, "; ".join(problems[:3]), md)
    return CheckOutcome(True, f"front matter parses; {len(covered)} data files in its configs", md)


@contextlib.contextmanager
def offline_datasets() -> Iterator[None]:
    """`datasets` and `huggingface_hub` in offline mode for the duration.

    The environment variables decide at import time; when the libraries are
    already imported in this process, their module-level flags are switched
    too (and restored afterwards).
    """
    saved_env = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    os.environ.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    import datasets.config  # noqa: PLC0415
    import huggingface_hub.constants  # noqa: PLC0415

    flags = [
        (datasets.config, "HF_HUB_OFFLINE"),
        (datasets.config, "HF_DATASETS_OFFLINE"),
        (huggingface_hub.constants, "HF_HUB_OFFLINE"),
    ]
    saved = [getattr(mod, name) for mod, name in flags]
    for mod, name in flags:
        setattr(mod, name, True)
    bars = datasets.utils.are_progress_bars_disabled()
    datasets.utils.disable_progress_bars()
    try:
        yield
    finally:
        for (mod, name), value in zip(flags, saved, strict=True):
            setattr(mod, name, value)
        if not bars:
            datasets.utils.enable_progress_bars()
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def loads_with_datasets(staging: Path) -> CheckOutcome:
    """`datasets.load_dataset("parquet", data_dir=staging)` loads every split offline, and the Audio
    feature decodes the first sample of each split (torchcodec)."""
    expected, problems = _shard_rows(staging)
    if not expected:
        return CheckOutcome(False, "no data shards to load", {})
    md: dict[str, object] = {}
    with offline_datasets(), tempfile.TemporaryDirectory(prefix="hf-load-check-") as cache:
        import datasets  # noqa: PLC0415

        try:
            ds = datasets.load_dataset("parquet", data_dir=str(staging), cache_dir=cache)
        except Exception as exc:  # noqa: BLE001 - whatever datasets raises is the finding
            return CheckOutcome(False, f"load_dataset failed: {type(exc).__name__}: {exc}", {})
        if set(ds) != set(expected):
            problems.append(f"datasets found splits {sorted(ds)}, staging has {sorted(expected)}")
        for split in sorted(set(ds) & set(expected)):
            part = ds[split]
            if part.num_rows != expected[split]:
                problems.append(
                    f"{split}: datasets loaded {part.num_rows} rows, the parquet files hold {expected[split]}"
                )
            if part.num_rows == 0:
                continue
            try:
                feature = part.features["audio"]
                row = part[0]
                if isinstance(feature, datasets.Audio):
                    decoder = row["audio"]
                else:  # file mode: a path relative to the staging root
                    decoder = datasets.Audio().decode_example({"path": str(staging / row["audio"]), "bytes": None})
                samples = decoder.get_all_samples()
                channels, frames = samples.data.shape
                md[f"{split}_decoded"] = (
                    f"{row['sample_id']}: {channels} ch, {frames} frames at {samples.sample_rate} Hz"
                )
                if frames == 0:
                    problems.append(f"{split}: {row['sample_id']} decoded to no audio")
                if "audio_sample_rate" in row and row["audio_sample_rate"] != samples.sample_rate:
                    problems.append(
                        f"{split}: {row['sample_id']} decodes at {samples.sample_rate} Hz, "
                        f"audio_sample_rate says {row['audio_sample_rate']}"
                    )
            except Exception as exc:  # noqa: BLE001
                problems.append(f"{split}: decoding the first audio failed: {type(exc).__name__}: {exc}")
        md["splits"] = str({s: ds[s].num_rows for s in ds})
    if problems:
        md["problems"] = "\n".join(problems[:SHOWN])
        return CheckOutcome(False, "; ".join(problems[:3]), md)
    return CheckOutcome(True, f"datasets loads {sorted(expected)} offline and decodes audio in each", md)


ALL_CHECKS = {
    "staging_paths_exist": paths_exist,
    "card_split_sizes_match": card_split_sizes,
    "no_profile_in_two_splits": profiles_disjoint,
    "card_front_matter_valid": front_matter_valid,
    "datasets_loads_offline": loads_with_datasets,
}
