"""rudiment_library and player_profiles: the rudiments as data and the simulated players, with their gates."""

import dagster as dg

from music_assets import layout
from music_assets.checks import CheckResult
from music_assets.defs import owners
from music_assets.defs.check_results import asset_check_result
from music_assets.defs.rudiments.common import GROUP, RudimentDataset, md_rows
from music_assets.defs.table_metadata import parquet_columns
from music_assets.paths import data_dir
from music_assets.rudiments.constants import RUDIMENT_SLUGS, SKILL_TIERS, SPLITS


# ---------------------------------------------------------------- rudiment_library
@dg.asset(owners=owners.RUDIMENTS, code_version="1", group_name=GROUP, kinds={"python"})
def rudiment_library() -> dg.MaterializeResult:
    """The 40 PAS rudiments as validated data (sticking, accents, grace notes, diddles, buzzes,
    subdivision, cycle length, tempo range), summarized in `rudiments/library.parquet`."""
    import pandas as pd  # noqa: PLC0415

    from music_assets.io import write_parquet  # noqa: PLC0415
    from music_assets.rudiments.dataset import frame_to_table  # noqa: PLC0415
    from music_assets.rudiments.library import load_library  # noqa: PLC0415

    records = [r.to_record() for r in load_library().values()]
    path = write_parquet(layout.library_path(data_dir()), frame_to_table(pd.DataFrame(records)))
    cols = (
        "pas_number",
        "slug",
        "category",
        "subdivision",
        "cycle_beats",
        "tempo_min_bpm",
        "tempo_max_bpm",
        "sticking",
    )
    return dg.MaterializeResult(
        metadata={
            "rudiments": len(records),
            "triplet rudiments": sum(r["is_triplet"] for r in records),
            "path": dg.MetadataValue.path(str(path)),
            **parquet_columns({"library": path}, main="library"),
            "library": md_rows([{c: r[c] for c in cols} for r in records]),
        }
    )


@dg.asset_check(asset=rudiment_library, blocking=True)
def library_complete() -> dg.AssetCheckResult:
    """library.parquet holds the 40 PAS rudiments once each, in PAS order, with valid tempo ranges."""
    import pandas as pd  # noqa: PLC0415

    df = pd.read_parquet(layout.library_path(data_dir()))
    problems = []
    if df["slug"].tolist() != list(RUDIMENT_SLUGS):
        problems.append(f"slugs differ from the 40 PAS slugs: {sorted(set(df['slug']) ^ set(RUDIMENT_SLUGS))}")
    if df["pas_number"].tolist() != list(range(1, len(RUDIMENT_SLUGS) + 1)):
        problems.append("PAS numbers are not 1..40 in order")
    if not (df["tempo_min_bpm"] < df["tempo_max_bpm"]).all():
        problems.append("a tempo range is empty")
    return asset_check_result(
        CheckResult(
            passed=not problems,
            description="; ".join(problems) or "40 unique PAS rudiments",
            metadata={"rows": len(df), "unique slugs": int(df["slug"].nunique())},
        )
    )


# ---------------------------------------------------------------- player_profiles
@dg.asset(owners=owners.RUDIMENTS, code_version="1", group_name=GROUP, kinds={"pandas"})
def player_profiles(rudiment_dataset: RudimentDataset) -> dg.MaterializeResult:
    """Simulated players in four skill tiers with correlated traits, split train/validation/test
    by player: `rudiments/profiles.parquet` and `rudiments/splits.json`."""
    from music_assets.io import write_json, write_parquet  # noqa: PLC0415
    from music_assets.rudiments.dataset import frame_to_table  # noqa: PLC0415
    from music_assets.rudiments.profiles import generate_profiles, splits_of  # noqa: PLC0415

    settings = rudiment_dataset.settings()
    profiles = generate_profiles(settings.num_profiles, settings.seed)
    write_parquet(layout.profiles_path(data_dir()), frame_to_table(profiles))
    write_json(layout.splits_path(data_dir()), splits_of(profiles))
    counts = profiles.groupby(["skill_tier", "split"]).size()
    rows = [{"tier": t, **{s: int(counts.get((t, s), 0)) for s in SPLITS}} for t in SKILL_TIERS]
    return dg.MaterializeResult(
        metadata={
            "preset": settings.preset,
            "profiles": len(profiles),
            "left-handed": int((profiles["dominant_hand"] == "left").sum()),
            "players per tier and split": md_rows(rows),
            "path": dg.MetadataValue.path(str(layout.profiles_path(data_dir()))),
            **parquet_columns({"profiles": layout.profiles_path(data_dir())}, main="profiles"),
            "splits": dg.MetadataValue.path(str(layout.splits_path(data_dir()))),
        }
    )


@dg.asset_check(asset=player_profiles, blocking=True)
def profiles_split_by_player() -> dg.AssetCheckResult:
    """No player is in two splits, splits.json matches profiles.parquet, and when there are at
    least 12 players every tier has a player in every split."""
    import pandas as pd  # noqa: PLC0415

    from music_assets.io import read_json  # noqa: PLC0415
    from music_assets.rudiments.profiles import MIN_PER_TIER_FOR_ALL_SPLITS  # noqa: PLC0415

    profiles = pd.read_parquet(layout.profiles_path(data_dir()))
    splits = read_json(layout.splits_path(data_dir()))
    problems = []
    seen: dict[str, str] = {}
    for name in SPLITS:
        for pid in splits.get(name, []):
            if pid in seen:
                problems.append(f"{pid} is in {seen[pid]} and {name}")
            seen[pid] = name
    if set(seen) != set(profiles["profile_id"]):
        problems.append("splits.json and profiles.parquet list different players")
    wrong = [p for p, s in zip(profiles["profile_id"], profiles["split"], strict=True) if seen.get(p) != s]
    if wrong:
        problems.append(f"{len(wrong)} players' split column disagrees with splits.json")
    if len(profiles) >= MIN_PER_TIER_FOR_ALL_SPLITS * len(SKILL_TIERS):
        have = set(zip(profiles["skill_tier"], profiles["split"], strict=True))
        missing = [f"{t}/{s}" for t in SKILL_TIERS for s in SPLITS if (t, s) not in have]
        if missing:
            problems.append(f"tiers missing from a split: {missing}")
    return asset_check_result(
        CheckResult(
            passed=not problems,
            description="; ".join(problems) or "split by player, every tier in every split",
            metadata={"players": len(profiles), **{s: len(splits.get(s, [])) for s in SPLITS}},
        )
    )
