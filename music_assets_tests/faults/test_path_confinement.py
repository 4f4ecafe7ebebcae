"""Issue 22, item 7: every path derived from a key, a config value, a sidecar or a link stays confined.

Before: texture_beds for a dynamic partition key like `../../../../outside/evil` wrote FLACs, a
parquet and a PNG outside MUSIC_ASSETS_DATA_DIR, and a provenance sidecar symlinked outside the
catalog roots was read. Now one function (`music_assets.integrity.confine`) resolves every such path
and refuses it unless it lies inside the data dir (or the configured roots), naming where it came from.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from music_assets.defs.partitions import prepared_source_partitions
from music_assets.defs.sources import assets as sources
from music_assets.defs.sources.textures import texture_beds
from music_assets_tests.faults.conftest import digest_tree, failure_text

KEY = "../../../../outside/evil"


def _flac(path: Path, seconds: float, rate: int = 48000, channels: int = 2) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.repeat(x[:, None], channels, axis=1).astype("float32"), rate, subtype="PCM_24")


@pytest.fixture
def deep_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data dir two folders below tmp_path, so that KEY from sources/prepared lands in tmp_path/outside."""
    data = tmp_path / "a" / "b" / "data"
    for sub in ("prepared", "textures"):  # as in any data dir that has prepared a source
        (data / "sources" / sub).mkdir(parents=True)
    monkeypatch.setenv("MUSIC_ASSETS_DATA_DIR", str(data))
    return data


def test_an_escaping_partition_key_writes_nothing_outside_the_data_dir(deep_data_dir: Path, tmp_path: Path) -> None:
    # what the key points at, outside the data dir: a valid prepared source, so only confinement can stop it
    planted = deep_data_dir / "sources" / "prepared" / f"{KEY}.flac"
    _flac(Path(os.path.normpath(planted)), 32.0)
    assert not Path(os.path.realpath(planted)).is_relative_to(deep_data_dir)
    outside = {k: v for k, v in digest_tree(tmp_path).items() if not k.startswith("a/b/data/")}
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(prepared_source_partitions.name, [KEY])
        result = dg.materialize([texture_beds], instance=instance, partition_key=KEY, raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    assert "texture_beds partition key" in text or "prepared_sources partition key" in text, text
    assert "outside" in text and "refused" in text
    after = {k: v for k, v in digest_tree(tmp_path).items() if not k.startswith("a/b/data/")}
    assert after == outside  # not one file written outside the data dir


def test_a_sidecar_or_provenance_csv_linked_outside_the_roots_is_not_read(data_dir: Path, tmp_path: Path) -> None:
    raw = data_dir / "raw_audio"
    _flac(raw / "song.flac", 2.0, 16000, 1)
    secret = tmp_path / "outside" / "secret.json"
    secret.parent.mkdir()
    secret.write_text(json.dumps({"license": "STOLEN-1.0", "author": "someone else"}))
    (raw / "song.flac.json").symlink_to(secret)
    (tmp_path / "outside" / "provenance.csv").write_text("path,license,provider\nsong.flac,LEAKED-1.0,elsewhere\n")
    (raw / "provenance.csv").symlink_to(tmp_path / "outside" / "provenance.csv")
    with dg.DagsterInstance.ephemeral() as instance:
        assert dg.materialize(
            [sources.audio_catalog], instance=instance, resources={"audio_roots": sources.AudioRoots()}
        ).success
    (row,) = pq.read_table(data_dir / "catalog" / "audio_catalog.parquet").to_pylist()
    assert row["status"] == "ok"
    assert row["license"] == "unknown" and row["author"] is None and row["provider"] is None  # nothing read
    assert "song.flac.json: is a link that resolves outside the catalog roots" in row["provenance_error"]
    assert "provenance.csv: is a link that resolves outside the catalog roots" in row["provenance_error"]


def test_confine_resolves_links_and_dot_dots(data_dir: Path, tmp_path: Path) -> None:
    from music_assets.integrity import PathEscapeError, confine, confined_child

    (tmp_path / "elsewhere").mkdir()
    (data_dir / "models").mkdir()
    (data_dir / "models" / "link").symlink_to(tmp_path / "elsewhere")
    assert confine(data_dir / "models" / "new" / "file.bin") == data_dir / "models" / "new" / "file.bin"
    assert confine("models/x.json") == data_dir / "models" / "x.json"  # relative: from the data dir
    for bad in (data_dir / "models" / "link" / "x", data_dir / ".." / "x", "/etc/passwd", "models/../../x"):
        with pytest.raises(PathEscapeError, match="outside"):
            confine(bad, what="test path")
    for key in ("../evil", "a/b", "..", "", "new\nline"):
        with pytest.raises(PathEscapeError, match="refused"):
            confined_child(data_dir / "sources", key, what="partition key")


def test_a_table_path_that_leaves_the_data_dir_is_refused_by_staging(tmp_path: Path) -> None:
    import shutil

    import pyarrow as pa

    from music_assets.publish.staging import StagingError, stage
    from music_assets_tests.publish.labelled_dataset import build

    data = build(tmp_path / "data").root
    samples = data / "rudiments" / "labels" / "samples.parquet"
    table = pq.read_table(samples)
    paths = table.column("audio_path").to_pylist()
    shutil.copy(data / paths[0], tmp_path / "secret.flac")  # a readable file outside the data dir
    paths[0] = "../secret.flac"
    pq.write_table(table.set_column(table.schema.get_field_index("audio_path"), "audio_path", pa.array(paths)), samples)
    with pytest.raises(StagingError, match="outside"):
        stage(data, data / "hf_staging")
    assert not list((data / "hf_staging").rglob("*.parquet"))  # nothing staged


def test_an_escaping_key_writes_no_annotation_or_caption_outside_the_data_dir(
    deep_data_dir: Path, tmp_path: Path
) -> None:
    from music_assets.defs.training_sets.assets import track_annotations, track_captions

    planted = deep_data_dir / "sources" / "prepared" / f"{KEY}.flac"
    _flac(Path(os.path.normpath(planted)), 32.0)
    outside = {k: v for k, v in digest_tree(tmp_path).items() if not k.startswith("a/b/data/")}
    for asset in (track_annotations, track_captions):
        with dg.DagsterInstance.ephemeral() as instance:
            instance.add_dynamic_partitions(prepared_source_partitions.name, [KEY])
            result = dg.materialize([asset], instance=instance, partition_key=KEY, raise_on_error=False)
        assert not result.success
        text = failure_text(result)
        assert "partition key" in text and "refused" in text, text
    after = {k: v for k, v in digest_tree(tmp_path).items() if not k.startswith("a/b/data/")}
    assert after == outside


@pytest.mark.parametrize(("asset", "partition"), [("base_model", None), ("lora_adapters", "beginner")])
def test_a_checkpoint_path_outside_the_data_dir_is_refused_before_anything_is_written(
    data_dir: Path, instance: dg.DagsterInstance, asset: str, partition: str | None
) -> None:
    from music_assets.defs.models import training

    elsewhere = data_dir.parent / "elsewhere" / "step-00000100"
    elsewhere.mkdir(parents=True)
    (data_dir / "models").mkdir()
    before = digest_tree(data_dir)
    result = dg.materialize(
        [getattr(training, asset)],
        instance=instance,
        partition_key=partition,
        run_config={"ops": {asset: {"config": {"ckpt_path": "../elsewhere/step-00000100"}}}},
        raise_on_error=False,
    )
    assert not result.success
    assert "ckpt_path: '../elsewhere/step-00000100' resolves to" in failure_text(result)
    assert digest_tree(data_dir) == before and not any((data_dir / "models").iterdir())
