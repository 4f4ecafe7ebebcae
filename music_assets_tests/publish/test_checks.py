"""Each staging gate passes on a good folder and fails on a deliberately corrupted copy."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from music_assets.publish import checks, layout


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


def test_paths_exist_fails_on_a_path_leaving_staging(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    shard = s / "data/test-00000-of-00001.parquet"
    t = pq.read_table(shard)
    midi = t["midi"].to_pylist()
    midi[0] = "../" + midi[0]
    _rewrite(shard, t.set_column(t.column_names.index("midi"), "midi", pa.array(midi, pa.string())))
    assert not checks.paths_exist(s).passed


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
    assert "split validation: card says 7, parquet files hold 6" in outcome.description


def test_split_sizes_fail_when_a_shard_is_missing(staged_embedded, copy_staging) -> None:
    s = copy_staging(staged_embedded)
    layout.split_shards(s)["test"][-1].unlink()
    outcome = checks.card_split_sizes(s)
    assert not outcome.passed and "not a complete" in outcome.metadata["problems"]


def test_profiles_disjoint_fails_when_a_player_is_in_two_splits(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    train_profile = pq.read_table(s / "data/train-00000-of-00001.parquet")["profile_id"][0].as_py()
    shard = s / "data/test-00000-of-00001.parquet"
    t = pq.read_table(shard)
    ids = t["profile_id"].to_pylist()
    ids[0] = train_profile
    _rewrite(shard, t.set_column(t.column_names.index("profile_id"), "profile_id", pa.array(ids, pa.string())))
    outcome = checks.profiles_disjoint(s)
    assert not outcome.passed
    assert f"profile {train_profile} is in test, train" in outcome.description


def test_front_matter_fails_when_yaml_is_broken(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    card = s / "README.md"
    card.write_text(card.read_text().replace("license: cc-by-4.0", "license: [cc-by-4.0", 1))
    outcome = checks.front_matter_valid(s)
    assert not outcome.passed and "does not parse" in outcome.description


def test_front_matter_fails_when_data_files_match_nothing(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    card = s / "README.md"
    card.write_text(card.read_text().replace("path: data/test-*.parquet", "path: data/testing-*.parquet"))
    outcome = checks.front_matter_valid(s)
    assert not outcome.passed
    assert "'data/testing-*.parquet' matches no data file" in outcome.description
    assert "data files in no config: data/test-00000-of-00001.parquet" in outcome.metadata["problems"]


def test_datasets_check_fails_when_an_audio_file_does_not_decode(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    first = pq.read_table(s / "data/validation-00000-of-00001.parquet")["audio"][0].as_py()
    (s / first).write_bytes(b"fLaC" + b"\0" * 64)  # the file exists, so only decoding can tell
    assert checks.paths_exist(s).passed
    outcome = checks.loads_with_datasets(s)
    assert not outcome.passed
    assert "validation: decoding the first audio failed" in outcome.description


def test_datasets_check_fails_on_an_unreadable_shard(staged_files, copy_staging) -> None:
    s = copy_staging(staged_files)
    (s / "data/train-00000-of-00001.parquet").write_bytes(b"PAR1 not really")
    outcome = checks.loads_with_datasets(s)
    assert not outcome.passed
