"""Each staging gate passes on a good folder and fails on a deliberately corrupted copy."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from music_assets.publish import checks, layout
from music_assets.publish.card import parse_front_matter


@pytest.mark.parametrize("check", sorted(checks.ALL_CHECKS))
def test_every_check_passes_on_good_staging(staged_files, check: str) -> None:
    outcome = checks.ALL_CHECKS[check](staged_files.staging)
    assert outcome.passed, outcome


def test_checks_pass_on_embedded_staging(staged_embedded) -> None:
    for name, check in checks.ALL_CHECKS.items():
        outcome = check(staged_embedded.staging)
        assert outcome.passed, (name, outcome)
    decoded = checks.loads_with_datasets(staged_embedded.staging).metadata
    assert {k for k in decoded if k.endswith("_decoded")} == {"train_decoded", "validation_decoded", "test_decoded"}


def test_a_default_config_past_the_full_load_size_is_only_streamed(staged_embedded) -> None:
    whole = checks.loads_with_datasets(staged_embedded.staging)
    assert whole.metadata["loads"].startswith("(no name), ")  # the plain non-streaming load first
    big = checks.loads_with_datasets(staged_embedded.staging, full_load_max_bytes=0)
    assert big.passed, big
    assert "(no name), " not in big.metadata["loads"] and big.metadata["loads"].endswith("(no name) streaming")
    assert big.metadata["default_parquet_bytes"] > 0


def _rewrite(path: Path, table: pa.Table) -> None:
    path.unlink()
    pq.write_table(table, path)


def test_paths_exist_fails_when_a_media_file_is_gone(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    victim = next((s / "audio").rglob("*.flac"))
    victim.unlink()
    outcome = checks.paths_exist(s)
    assert not outcome.passed
    assert victim.relative_to(s).as_posix() in outcome.metadata["first_problems"]


def test_paths_exist_fails_on_a_name_leaving_staging(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    shard = s / "data/roll/test-00000-of-00001.parquet"
    t = pq.read_table(shard)
    midi = t["midi"].to_pylist()
    midi[0] = {"bytes": midi[0]["bytes"], "path": "../" + midi[0]["path"]}
    _rewrite(shard, t.set_column(t.column_names.index("midi"), "midi", pa.array(midi, t.schema.field("midi").type)))
    outcome = checks.paths_exist(s)
    assert not outcome.passed and "is not a file in staging" in outcome.metadata["first_problems"]


def test_paths_exist_fails_when_a_browsable_file_is_not_the_embedded_one(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    row = pq.read_table(s / "data/diddle/train-00000-of-00001.parquet").slice(0, 1).to_pylist()[0]
    victim = s / "audio" / row["rudiment_slug"] / row["audio"]["path"]
    victim.write_bytes(victim.read_bytes()[:-10])
    outcome = checks.paths_exist(s)
    assert not outcome.passed and "is not the embedded file" in outcome.metadata["first_problems"]


def test_paths_exist_fails_on_embedded_media_without_bytes(staged_embedded, copy_staging) -> None:
    s = copy_staging(staged_embedded)
    shard = layout.split_shards(s)["validation"][0]
    t = pq.read_table(shard)
    audio = t["audio"].to_pylist()
    audio[0] = {"bytes": None, "path": audio[0]["path"]}
    _rewrite(shard, t.set_column(t.column_names.index("audio"), "audio", pa.array(audio, t.schema.field("audio").type)))
    outcome = checks.paths_exist(s)
    assert not outcome.passed and "has no bytes" in outcome.metadata["first_problems"]


def test_split_sizes_fail_when_the_card_disagrees(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    card = s / "README.md"
    text = card.read_text()
    assert "  - name: validation\n    num_bytes:" in text
    head, rest = text.split("  - name: validation\n", 1)
    rest = rest.replace("num_examples: 6", "num_examples: 7", 1)
    card.write_text(head + "  - name: validation\n" + rest)
    outcome = checks.card_split_sizes(s)
    assert not outcome.passed
    assert "default split validation: card says 7, parquet files hold 6" in outcome.description
    # a user's load_dataset checks the card's split sizes too: the gate fails with it
    loaded = checks.loads_with_datasets(s)
    assert not loaded.passed and "NonMatchingSplitsSizesError" in loaded.description


def test_split_sizes_fail_when_a_family_config_disagrees(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    card = s / "README.md"
    head, rest = card.read_text().split("- config_name: flam\n  features:", 1)
    card.write_text(head + "- config_name: flam\n  features:" + rest.replace("num_examples: 2", "num_examples: 3", 1))
    outcome = checks.card_split_sizes(s)
    assert not outcome.passed and "flam split train: card says 3, parquet files hold 2" in outcome.description


def test_split_sizes_fail_when_a_shard_is_missing(staged_embedded, copy_staging) -> None:
    s = copy_staging(staged_embedded)
    layout.split_shards(s)["test"][-1].unlink()
    outcome = checks.card_split_sizes(s)
    assert not outcome.passed and "not a complete" in outcome.metadata["problems"]


def test_profiles_disjoint_fails_when_a_player_is_in_two_splits(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    train_profile = pq.read_table(s / "data/flam/train-00000-of-00001.parquet")["profile_id"][0].as_py()
    shard = s / "data/roll/test-00000-of-00001.parquet"
    t = pq.read_table(shard)
    ids = t["profile_id"].to_pylist()
    ids[0] = train_profile
    _rewrite(shard, t.set_column(t.column_names.index("profile_id"), "profile_id", pa.array(ids, pa.string())))
    outcome = checks.profiles_disjoint(s)
    assert not outcome.passed
    assert f"profile {train_profile} is in test, train" in outcome.description


def test_profiles_disjoint_fails_when_a_row_is_in_another_familys_files(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    shard = s / "data/flam/test-00000-of-00001.parquet"
    t = pq.read_table(shard)
    slugs = t["rudiment_slug"].to_pylist()
    slugs[1] = "single_stroke_roll"
    _rewrite(shard, t.set_column(t.column_names.index("rudiment_slug"), "rudiment_slug", pa.array(slugs, pa.string())))
    outcome = checks.profiles_disjoint(s)
    assert not outcome.passed
    assert "data/flam/test-00000-of-00001.parquet: rudiment(s) single_stroke_roll are not flams" in outcome.description


def test_front_matter_fails_when_yaml_is_broken(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    card = s / "README.md"
    card.write_text(card.read_text().replace("license: cc-by-4.0", "license: [cc-by-4.0", 1))
    outcome = checks.front_matter_valid(s)
    assert not outcome.passed and "does not parse" in outcome.description


def test_front_matter_fails_when_data_files_match_nothing(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    card = s / "README.md"
    card.write_text(card.read_text().replace("path: data/*/test-*.parquet", "path: data/*/testing-*.parquet"))
    outcome = checks.front_matter_valid(s)
    assert not outcome.passed
    assert "config 'default' split 'test': data_files match no parquet file" in outcome.description
    assert "sample shards not in the default config: data/diddle/test-00000-of-00001.parquet" in outcome.description


def test_front_matter_fails_without_a_familys_config(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    card = s / "README.md"
    text = card.read_text()
    meta = parse_front_matter(text)
    meta["configs"] = [c for c in meta["configs"] if c["config_name"] != "flam"]
    card.write_text("---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n" + text.split("\n---\n", 1)[1])
    outcome = checks.front_matter_valid(s)
    assert not outcome.passed
    assert "no config for flam" in outcome.description
    assert "dataset_info covers configs" in outcome.metadata["problems"]


def test_front_matter_fails_when_a_split_selects_another_splits_files(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    card = s / "README.md"
    card.write_text(
        card.read_text().replace("path: auxiliary/strokes/test-*.parquet", "path: auxiliary/strokes/t*.parquet")
    )
    outcome = checks.front_matter_valid(s)
    assert not outcome.passed
    assert "config 'strokes' split 'test': selects files of another split" in outcome.description


def test_datasets_check_fails_when_an_audio_file_does_not_decode(staged_embedded, copy_staging) -> None:
    s = copy_staging(staged_embedded)
    for shard in layout.split_shards(s)["validation"]:
        t = pq.read_table(shard)
        audio = [{"bytes": b"fLaC" + b"\0" * 64, "path": a["path"]} for a in t["audio"].to_pylist()]
        _rewrite(
            shard, t.set_column(t.column_names.index("audio"), "audio", pa.array(audio, t.schema.field("audio").type))
        )
    assert checks.paths_exist(s).passed  # bytes are there, so only decoding can tell
    outcome = checks.loads_with_datasets(s)
    assert not outcome.passed
    assert "load_dataset(staging)['validation']: decoding the first audio failed" in outcome.description
    assert "train_decoded" in outcome.metadata


def test_datasets_check_fails_when_the_card_does_not_declare_audio(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    card = s / "README.md"
    text = card.read_text()
    assert text.count("- name: audio\n    dtype: audio\n") == 4  # default and three families
    card.write_text(text.replace("- name: audio\n    dtype: audio\n", "- name: audio\n    dtype: string\n"))
    outcome = checks.loads_with_datasets(s)
    assert not outcome.passed and "load_dataset(staging) failed" in outcome.description


def test_datasets_check_fails_on_an_unreadable_shard(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    (s / "auxiliary/strokes/train-00000-of-00001.parquet").write_bytes(b"PAR1 not really")
    outcome = checks.loads_with_datasets(s)
    assert not outcome.passed
