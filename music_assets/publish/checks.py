"""Quality gates on a staging folder, computed from the files alone.

Each check returns a `CheckResult` (passed, a one-line description, metadata)
and never raises for a bad folder: a corrupted staging folder is a failed
check, not a crash.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from music_assets.checks import CheckResult, listing
from music_assets.publish import layout
from music_assets.publish.card import parse_front_matter
from music_assets.publish.staging import MEDIA_COLUMNS, MEDIA_DIRS, PLAN_COLUMNS, build_deferred_shard, plan_info

REQUIRED_FRONT_MATTER = ("license", "task_categories", "size_categories", "configs", "dataset_info")
SHOWN = 10  # examples of problems listed in metadata


def _parquet_files(staging: Path) -> list[Path]:
    """Every parquet file of the dataset, deferred sample shards included (read them through `_file`)."""
    found = {p for d in (layout.DATA, layout.AUXILIARY) for p in (staging / d).rglob("*.parquet")}
    found |= {staging / rel for rel in layout.deferred_shards(staging)}
    return sorted(found)


def _file(staging: Path, p: Path) -> Path:
    """The file to read for the dataset file `p`: the plan of a deferred shard, else `p`."""
    return layout.shard_file(staging, _rel(staging, p))


def _rel(staging: Path, p: Path) -> str:
    return p.relative_to(staging).as_posix()


def _inside(staging: Path, rel: str) -> bool:
    p = PurePosixPath(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts and (staging / rel).is_file()


def paths_exist(staging: Path) -> CheckResult:
    """Every embedded media cell has bytes; with browsable media files (files layout), each row's file exists
    under `audio|midi/<rudiment>/<name>` with exactly those bytes' length; any `*_path` column resolves."""
    files = _parquet_files(staging)
    if not files:
        return CheckResult(False, f"no parquet files under {staging}", {})
    browsable = [c for c in MEDIA_COLUMNS if (staging / MEDIA_DIRS[c]).is_dir()]
    checked = embedded = planned = 0
    problems: list[str] = []
    for path in files:
        rel_file = _rel(staging, path)
        if plan_info(_file(staging, path)) is not None:
            n_planned, n_checked = _plan_problems(staging, path, browsable, problems)
            planned += n_planned
            checked += n_checked
            continue
        try:
            schema = pq.read_schema(path)
            media = [n for n in schema.names if n in MEDIA_COLUMNS]
            paths = [n for n in schema.names if n.endswith("_path")]
            cols = media + paths + (["rudiment_slug"] if media and "rudiment_slug" in schema.names else [])
            table = pq.read_table(path, columns=cols) if cols else None
        except Exception as exc:  # noqa: BLE001 - an unreadable file is a failed check
            problems.append(f"{rel_file}: unreadable ({exc})")
            continue
        for col in media:
            arr = table[col].combine_chunks()
            if not pa.types.is_struct(arr.type):
                problems.append(f"{rel_file}: `{col}` is {arr.type}, not the embedded struct<bytes, path>")
                continue
            lengths = pc.binary_length(arr.field("bytes")).to_pylist()
            names = arr.field("path").to_pylist()
            slugs = table["rudiment_slug"].to_pylist() if "rudiment_slug" in table.column_names else [None] * len(names)
            for i, (n, name, slug) in enumerate(zip(lengths, names, slugs, strict=True)):
                embedded += 1
                if not n:
                    problems.append(f"{rel_file}: row {i} `{col}` has no bytes")
                if col not in browsable:
                    continue
                checked += 1
                rel = f"{MEDIA_DIRS[col]}/{slug}/{name}"
                if not name or "/" in name or not _inside(staging, rel):
                    problems.append(f"{rel_file}: row {i} `{col}`: {rel!r} is not a file in staging")
                elif n and (staging / rel).stat().st_size != n:
                    problems.append(f"{rel_file}: row {i} `{col}`: {rel} is not the embedded file ({n} bytes)")
        for col in paths:
            for i, rel in enumerate(table[col].to_pylist()):
                checked += 1
                if rel is None or not _inside(staging, rel):
                    problems.append(f"{rel_file}: row {i} `{col}` = {rel!r} is not a file in staging")
    meta = {
        "parquet_files": len(files),
        "paths_checked": checked,
        "embedded_media_checked": embedded,
        "planned_media_checked": planned,
        "problems": len(problems),
    }
    if problems:
        meta["first_problems"] = listing(problems[:SHOWN])
        return CheckResult(False, f"{len(problems)} problem(s) with the media in the parquet files", meta)
    what = f"all {embedded} embedded media have bytes" if embedded else ""
    if planned:
        what += ("; " if what else "") + f"all {planned} media of deferred shards are the files staging planned"
    return CheckResult(True, f"{what}; {checked} browsable files match", meta)


def _plan_problems(staging: Path, path: Path, browsable: list[str], problems: list[str]) -> tuple[int, int]:
    """A deferred shard's plan: every source file it will embed exists with the size and modification time
    staging recorded, and (files layout) each browsable copy has that size; returns (media, browsable) checked."""
    rel_file = _rel(staging, path)
    plan_path = _file(staging, path)
    try:
        info = plan_info(plan_path)
        table = pq.read_table(plan_path)
    except Exception as exc:  # noqa: BLE001 - an unreadable plan is a failed check
        problems.append(f"{rel_file}: unreadable plan {_rel(staging, plan_path)} ({exc})")
        return 0, 0
    data_root = Path(os.path.normpath(staging / info["data_root"]))
    media = checked = 0
    slugs = table["rudiment_slug"].to_pylist()
    for col, (c_src, c_size, c_mtime) in PLAN_COLUMNS.items():
        names = table[col].to_pylist()
        sources, sizes, mtimes = (table[c].to_pylist() for c in (c_src, c_size, c_mtime))
        for i, (name, src, size, mtime, slug) in enumerate(zip(names, sources, sizes, mtimes, slugs, strict=True)):
            media += 1
            try:
                st = (data_root / src).stat()
            except (FileNotFoundError, TypeError):
                problems.append(f"{rel_file}: row {i} `{col}`: source {data_root / str(src)} is missing")
                continue
            if (st.st_size, st.st_mtime_ns) != (size, mtime):
                problems.append(f"{rel_file}: row {i} `{col}`: {data_root / src} changed since staging")
            if col in browsable:
                checked += 1
                rel = f"{MEDIA_DIRS[col]}/{slug}/{name}"
                if not name or "/" in name or not _inside(staging, rel):
                    problems.append(f"{rel_file}: row {i} `{col}`: {rel!r} is not a file in staging")
                elif (staging / rel).stat().st_size != size:
                    problems.append(f"{rel_file}: row {i} `{col}`: {rel} is not the planned file ({size} bytes)")
    return media, checked


def _series_problems(staging: Path) -> list[str]:
    """Shard names in every folder form complete NNNNN-of-NNNNN series per split."""
    problems = []
    folders = sorted({p.parent for p in _parquet_files(staging)})
    for folder in folders:
        for split, shards in layout.folder_shards(staging, _rel(staging, folder)).items():
            parsed = [layout.parse_shard_name(p.name) for p in shards]
            counts = {c for _, _, c in parsed}
            if len(counts) != 1 or sorted(i for _, i, _ in parsed) != list(range(next(iter(counts)))):
                problems.append(
                    f"{_rel(staging, folder)} split {split}: shard names {sorted(p.name for p in shards)} "
                    "are not a complete NNNNN-of-NNNNN series"
                )
    return problems


def _read_card(staging: Path) -> dict:
    return parse_front_matter((staging / layout.CARD).read_text(encoding="utf-8"))


def _config_files(staging: Path, config: dict) -> dict[str, list[str]]:
    """split -> the parquet files (relative to staging) a card config's data_files select."""
    every = [_rel(staging, p) for p in _parquet_files(staging)]
    out: dict[str, list[str]] = {}
    for entry in config["data_files"]:
        patterns = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
        out[entry["split"]] = sorted(f for f in every if any(fnmatch.fnmatchcase(f, pat) for pat in patterns))
    return out


def _footer_rows(staging: Path, rels: list[str]) -> int:
    return sum(pq.ParquetFile(layout.shard_file(staging, r)).metadata.num_rows for r in rels)


def card_split_sizes(staging: Path) -> CheckResult:
    """For every config, the split sizes in the card's dataset_info equal the rows of the files it selects."""
    problems = _series_problems(staging)
    try:
        meta = _read_card(staging)
        infos = meta["dataset_info"]
        infos = infos if isinstance(infos, list) else [infos]
        card = {
            (i.get("config_name", layout.DEFAULT_CONFIG), s["name"]): int(s["num_examples"])
            for i in infos
            for s in i["splits"]
        }
        rows = {
            (cfg["config_name"], split): _footer_rows(staging, rels)
            for cfg in meta["configs"]
            for split, rels in _config_files(staging, cfg).items()
        }
    except Exception as exc:  # noqa: BLE001 - a missing or malformed card or shard fails this check too
        return CheckResult(False, f"cannot compare the card's split sizes with the parquet files: {exc}", {})
    for key in sorted(set(card) | set(rows)):
        if card.get(key) != rows.get(key):
            problems.append(f"{key[0]} split {key[1]}: card says {card.get(key)}, parquet files hold {rows.get(key)}")
    md = {
        "card_splits": listing([f"{c}/{s}: {n}" for (c, s), n in sorted(card.items())]),
        "parquet_rows": listing([f"{c}/{s}: {n}" for (c, s), n in sorted(rows.items())]),
    }
    if problems:
        md["problems"] = listing(problems[:SHOWN])
        return CheckResult(False, "; ".join(problems[:3]), md)
    default = {s: n for (c, s), n in rows.items() if c == layout.DEFAULT_CONFIG}
    return CheckResult(True, f"card and parquet agree for {len(meta['configs'])} configs: default {default}", md)


def profiles_disjoint(staging: Path) -> CheckResult:
    """No profile_id appears in two splits; every row is in the files of its split and rudiment family."""
    from music_assets.rudiments.library import load_library  # noqa: PLC0415

    library = load_library()
    seen: dict[str, set[str]] = {}
    problems = []
    for family, by_split in layout.family_shards(staging).items():
        for split, shards in by_split.items():
            for p in shards:
                try:
                    t = pq.read_table(_file(staging, p), columns=["profile_id", "split", "rudiment_slug"])
                except Exception as exc:  # noqa: BLE001
                    problems.append(f"{_rel(staging, p)}: cannot read profile_id/split/rudiment_slug ({exc})")
                    continue
                wrong = {s for s in t["split"].to_pylist() if s != split}
                if wrong:
                    problems.append(f"{_rel(staging, p)}: rows labelled split {sorted(wrong, key=str)}")
                strays = sorted(
                    {r for r in t["rudiment_slug"].to_pylist() if getattr(library.get(r), "category", None) != family},
                    key=str,
                )
                if strays:
                    problems.append(f"{_rel(staging, p)}: rudiment(s) {', '.join(map(str, strays))} are not {family}s")
                for pid in set(t["profile_id"].to_pylist()):
                    seen.setdefault(pid, set()).add(split)
    if not seen and not problems:
        return CheckResult(False, "no data shards to check", {})
    shared = {pid: sorted(s) for pid, s in seen.items() if len(s) > 1}
    problems += [f"profile {pid} is in {', '.join(s)}" for pid, s in sorted(shared.items())]
    md = {"profiles": len(seen), "profiles_in_several_splits": len(shared)}
    if problems:
        md["problems"] = listing(problems[:SHOWN])
        return CheckResult(False, f"{len(problems)} problem(s): {problems[0]}", md)
    return CheckResult(True, f"{len(seen)} profiles, each in one split; every row in its family's files", md)


def front_matter_valid(staging: Path) -> CheckResult:
    """The card's front matter parses and has the required keys; its configs are `default` (every sample
    shard), one per family folder and one per auxiliary table, each selecting only files of the right split,
    with a dataset_info entry each."""
    try:
        meta = _read_card(staging)
    except FileNotFoundError:
        return CheckResult(False, f"{layout.CARD} is missing", {})
    except Exception as exc:  # noqa: BLE001 - yaml errors and a missing front matter
        return CheckResult(False, f"the front matter does not parse: {exc}", {})
    problems = [f"missing key {k!r}" for k in REQUIRED_FRONT_MATTER if k not in meta]
    every = {_rel(staging, p) for p in _parquet_files(staging)}
    samples = {_rel(staging, p) for ps in layout.split_shards(staging).values() for p in ps}
    wanted = [layout.DEFAULT_CONFIG, *layout.family_shards(staging)]
    wanted += [t for t in layout.AUXILIARY_TABLES if (staging / layout.auxiliary_dir(t)).is_dir()]
    covered: set[str] = set()
    names: list[str] = []
    try:
        for cfg in meta.get("configs") or []:
            names.append(cfg["config_name"])
            for split, matched in _config_files(staging, cfg).items():
                where = f"config {cfg['config_name']!r} split {split!r}"
                if not matched:
                    problems.append(f"{where}: data_files match no parquet file")
                off = [f for f in matched if layout.parse_shard_name(f.rsplit("/", 1)[-1])[:1] != (split,)]
                if off:
                    problems.append(f"{where}: selects files of another split ({', '.join(off[:3])})")
                if cfg["config_name"] == layout.DEFAULT_CONFIG and any(f not in samples for f in matched):
                    problems.append(f"{where}: selects files that are not sample shards")
                covered.update(matched)
        if layout.DEFAULT_CONFIG in names:
            default = next(c for c in meta["configs"] if c["config_name"] == layout.DEFAULT_CONFIG)
            in_default = {f for fs in _config_files(staging, default).values() for f in fs}
            if samples - in_default:
                problems.append(
                    f"sample shards not in the default config: {', '.join(sorted(samples - in_default)[:3])}"
                )
        infos = meta.get("dataset_info") or []
        info_names = [
            i.get("config_name", layout.DEFAULT_CONFIG) for i in (infos if isinstance(infos, list) else [infos])
        ]
    except (KeyError, TypeError, AttributeError) as exc:
        problems.append(f"malformed configs or dataset_info entry: {exc!r}")
        info_names = names
    missing = [n for n in wanted if n not in names]
    if missing:
        problems.append(f"no config for {', '.join(missing)}")
    if sorted(info_names) != sorted(names):
        problems.append(f"dataset_info covers configs {sorted(info_names)}, configs are {sorted(names)}")
    uncovered = sorted(every - covered)
    if uncovered:
        problems.append(f"parquet files in no config: {', '.join(uncovered[:SHOWN])}")
    md = {"keys": ", ".join(meta), "configs": ", ".join(names)}
    if problems:
        md["problems"] = listing(problems[:SHOWN])
        return CheckResult(False, "; ".join(problems[:3]), md)
    return CheckResult(True, f"front matter parses; configs {', '.join(names)} cover {len(covered)} files", md)


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


def _decode_first(where: str, key: str | None, row: dict, problems: list[str], md: dict) -> None:
    """Decode the row's audio as a user would (`row["audio"].get_all_samples()`) and look at its MIDI bytes;
    what decoded goes into `md[key]` (when given)."""
    try:
        samples = row["audio"].get_all_samples()
        channels, frames = samples.data.shape
        if key:
            md[key] = f"{row['sample_id']}: {channels} ch, {frames} frames at {samples.sample_rate} Hz"
        if frames == 0:
            problems.append(f"{where}: {row['sample_id']} decoded to no audio")
        if "audio_sample_rate" in row and row["audio_sample_rate"] != samples.sample_rate:
            problems.append(
                f"{where}: {row['sample_id']} decodes at {samples.sample_rate} Hz, "
                f"audio_sample_rate says {row['audio_sample_rate']}"
            )
    except Exception as exc:  # noqa: BLE001
        problems.append(f"{where}: decoding the first audio failed: {type(exc).__name__}: {exc}")
    midi = row.get("midi")
    if not (isinstance(midi, dict) and isinstance(midi.get("bytes"), bytes) and midi["bytes"].startswith(b"MThd")):
        problems.append(f"{where}: `midi` of {row['sample_id']} is not a Standard MIDI File's bytes")


# A non-streaming load converts the whole default config into datasets' Arrow cache (about the
# parquet's size again, in a temporary folder): above this many bytes of parquet the gate
# streams the default config instead, so a 100K-sample staging does not need its size twice in /tmp.
FULL_LOAD_MAX_BYTES = 4 * 1024**3


# Rows of each family and split's first deferred shard that the load gate builds and loads.
PREVIEW_ROWS = 4


def loads_with_datasets(staging: Path, full_load_max_bytes: int = FULL_LOAD_MAX_BYTES) -> CheckResult:
    """`_load_check` of the staging folder; with deferred shards, of a preview of it in a temporary folder:
    the card, plots and auxiliary tables linked, and the first PREVIEW_ROWS rows of the first shard of each
    family and split built from its plan as the upload builds it (every config then streamed but the
    auxiliary tables, which are whole)."""
    deferred = layout.deferred_shards(staging)
    if not deferred:
        return _load_check(staging, full_load_max_bytes)
    with tempfile.TemporaryDirectory(prefix="hf-load-preview-") as tmp:
        preview = Path(tmp) / "staging"
        try:
            for rel in layout.list_files(staging):
                if rel.split("/", 1)[0] in (layout.AUDIO, layout.MIDI):
                    continue  # browsable copies: not what datasets reads
                dest = preview / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(staging / rel, dest)
                except OSError:
                    shutil.copy2(staging / rel, dest)
            firsts = [ps[0] for by_split in layout.family_shards(staging).values() for ps in by_split.values()]
            for p in firsts:
                build_deferred_shard(staging, _rel(staging, p), dest=preview / _rel(staging, p), limit=PREVIEW_ROWS)
        except Exception as exc:  # noqa: BLE001 - a plan that cannot be built fails the gate
            return CheckResult(False, f"building a preview of the deferred shards failed: {exc}", {})
        outcome = _load_check(preview, full_load_max_bytes=-1)
    return replace(
        outcome,
        description=f"deferred shards, preview of {len(firsts)} built as at upload: {outcome.description}",
        metadata={
            **outcome.metadata,
            "deferred_shards": len(deferred),
            "preview": f"first {PREVIEW_ROWS} rows of {len(firsts)} shards built from their plans",
        },
    )


def _load_check(staging: Path, full_load_max_bytes: int) -> CheckResult:
    """What a Hub user does, offline, with a throw-away cache: `datasets.load_dataset(str(staging))` with no
    data_files and no casting returns every split with the rows of the parquet files (datasets itself checks
    them against the card), `audio` is the Audio feature and the first sample of each split decodes; then each
    other config of the card: families streamed (`streaming=True`, first sample of each split decoded, of that
    family), auxiliary tables loaded whole; and the default config streamed too. A default config larger than
    `full_load_max_bytes` is only streamed (its row counts are then the parquet footers')."""
    from music_assets.rudiments.library import load_library  # noqa: PLC0415

    try:
        card_configs = _read_card(staging)["configs"]
        expected = {c["config_name"]: _config_files(staging, c) for c in card_configs}
        rows = {c: {s: _footer_rows(staging, fs) for s, fs in by_split.items()} for c, by_split in expected.items()}
    except Exception as exc:  # noqa: BLE001 - no card, no configs or unreadable shards: nothing a user could load
        return CheckResult(False, f"the card's configs cannot be read: {type(exc).__name__}: {exc}", {})
    if layout.DEFAULT_CONFIG not in expected:
        return CheckResult(False, "the card has no default config", {})
    library = load_library()
    problems: list[str] = []
    md: dict[str, object] = {}

    # (config, streaming): what a user types; None = no config name
    default_bytes = sum((staging / f).stat().st_size for fs in expected[layout.DEFAULT_CONFIG].values() for f in fs)
    md["default_parquet_bytes"] = default_bytes
    plan: list[tuple[str | None, bool]] = [(None, False)] if default_bytes <= full_load_max_bytes else []
    plan += [(c, c not in layout.AUXILIARY_TABLES) for c in expected if c != layout.DEFAULT_CONFIG]
    plan += [(None, True)]
    with offline_datasets(), tempfile.TemporaryDirectory(prefix="hf-load-check-") as tmp:
        import datasets  # noqa: PLC0415

        for k, (config, streaming) in enumerate(plan):
            name = config or layout.DEFAULT_CONFIG
            args = [str(staging)] + ([config] if config else [])
            how = f"load_dataset(staging{f', {config!r}' if config else ''}{', streaming=True' if streaming else ''})"
            key = f"{name}{'_streaming' if streaming else ''}"
            cache = Path(tmp) / str(k)  # removed after each load: at most one copy of the data at a time
            try:
                ds = datasets.load_dataset(*args, cache_dir=str(cache), streaming=streaming)
                if set(ds) != set(rows[name]):
                    problems.append(f"{how}: splits {sorted(ds)}, the card's files hold {sorted(rows[name])}")
                md[f"{key}_splits"] = str({s: "streamed" if streaming else d.num_rows for s, d in ds.items()})
                for split, d in ds.items():
                    where = f"{how}[{split!r}]"
                    if not streaming and d.num_rows != rows[name].get(split):
                        problems.append(f"{where}: {d.num_rows} rows, the parquet files hold {rows[name].get(split)}")
                    if name in layout.AUXILIARY_TABLES:
                        continue
                    if not isinstance(d.features.get("audio"), datasets.Audio):
                        problems.append(f"{where}: `audio` is {d.features.get('audio')!r}, not datasets.Audio")
                        continue
                    try:
                        first = next(iter(d), None)  # the Audio feature opens its decoder here
                    except Exception as exc:  # noqa: BLE001
                        problems.append(f"{where}: decoding the first audio failed: {type(exc).__name__}: {exc}")
                        continue
                    if first is None:
                        continue
                    shown = f"{split}_decoded" if config is None and not streaming else None
                    _decode_first(where, shown, first, problems, md)
                    family = getattr(library.get(first.get("rudiment_slug")), "category", None)
                    if name in layout.FAMILIES and family != name:
                        problems.append(f"{where}: the first row is a {family} rudiment")
            except Exception as exc:  # noqa: BLE001 - whatever datasets raises is the finding
                problems.append(f"{how} failed: {type(exc).__name__}: {exc}")
            finally:
                shutil.rmtree(cache, ignore_errors=True)
    md["loads"] = ", ".join(f"{c or '(no name)'}{' streaming' if st else ''}" for c, st in plan)
    if problems:
        md["problems"] = listing(problems[:SHOWN])
        return CheckResult(False, "; ".join(problems[:3]), md)
    return CheckResult(
        True,
        f"load_dataset(staging) loads {sorted(rows[layout.DEFAULT_CONFIG])} offline and decodes audio in each; "
        f"configs {', '.join(c for c in expected if c != layout.DEFAULT_CONFIG)} load too, and streaming works",
        md,
    )


ALL_CHECKS = {
    "staging_paths_exist": paths_exist,
    "card_split_sizes_match": card_split_sizes,
    "no_profile_in_two_splits": profiles_disjoint,
    "card_front_matter_valid": front_matter_valid,
    "datasets_loads_offline": loads_with_datasets,
}
