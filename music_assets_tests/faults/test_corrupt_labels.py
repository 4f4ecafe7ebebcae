"""Issue 22, item 3: silent damage to a label table must not reach the corpus or the Hub staging.

Before: flipping bytes inside a data page of the merged strokes.parquet kept it readable, and
`token_corpus` and `hf_staging` succeeded with timing errors up to 1e156, every staging check green.
Now rudiment_labels records each table's sha256 in its manifest, and every reader verifies it first
(failing with the file's path and both hashes); and a blocking gate checks every label value's range,
so damage that a writer itself recorded (a generator bug) stops there too.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from music_assets_tests.faults.conftest import failure_text, flip_keeping_readable, labels_config, materialize


def _recorded(data: Path, rel: str) -> str:
    return json.loads((data / "manifests" / "rudiment_labels" / "_all.json").read_text())["files"][rel]


def test_a_flipped_byte_in_the_merged_strokes_stops_every_reader(rudiments: Path) -> None:
    strokes = rudiments / "rudiments" / "labels" / "strokes.parquet"
    recorded = _recorded(rudiments, "rudiments/labels/strokes.parquet")
    _offset, before, after = flip_keeping_readable(strokes, "timing_error_ms")
    assert before != after and pq.read_table(strokes).num_rows == len(before)  # still a readable table

    with dg.DagsterInstance.ephemeral() as instance:
        for reader in ("token_corpus", "hf_staging"):
            result = materialize(reader, instance)
            assert not result.success, reader
            text = failure_text(result)
            assert f"{strokes}: sha256 " in text and f"does not match {recorded}" in text, text
            assert result.get_asset_materialization_events() == []
        assert not (rudiments / "models" / "corpus").exists()
        assert not (rudiments / "hf_staging").exists()

        # recovery: merge the labels again from the partitions (which are intact), then the readers run
        assert materialize("rudiment_labels", instance, labels_config()).success
        assert pq.read_table(strokes).column("timing_error_ms").to_pylist() == before
        assert materialize("token_corpus", instance).success
        assert materialize("hf_staging", instance).success


def _record_as_written(data: Path) -> None:
    """Re-record the flam partition's manifests, as a writer that itself produced the bad values would."""
    from music_assets.defs.rudiments.assets import performance_files
    from music_assets.integrity import read_manifest, write_manifest

    write_manifest("rudiment_performances", "flam", performance_files("flam"), fingerprint="buggy generator")
    audio = read_manifest("rudiment_audio", "flam")  # the audio is still that of these performances
    perf = read_manifest("rudiment_performances", "flam")
    files = [data / rel for rel in audio.files]
    write_manifest("rudiment_audio", "flam", files, fingerprint=audio.fingerprint, inputs={perf.label: perf.digest})


def test_label_values_out_of_range_are_a_blocking_gate(rudiments: Path) -> None:
    import pyarrow as pa

    # a generator bug: one stroke's timing error is 1e156 in the flam partition, and so recorded
    path = rudiments / "rudiments" / "performances" / "flam" / "strokes.parquet"
    table = pq.read_table(path)
    errors = table.column("timing_error_ms").to_pylist()
    errors[3] = 1e156
    column = table.schema.get_field_index("timing_error_ms")
    pq.write_table(table.set_column(column, "timing_error_ms", pa.array(errors)), path, compression="zstd")
    try:
        _record_as_written(rudiments)
    except ImportError:  # a version without manifests: nothing to record
        pass

    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize(["rudiment_labels", "token_corpus"], instance, labels_config(), checks=True)
    gate = {e.check_name: e for e in result.get_asset_check_evaluations()}["labels_values_in_range"]
    assert not gate.passed and "timing_error_ms" in gate.description
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "token_corpus" not in materialized  # the gate blocks what reads the labels
    assert not (rudiments / "models" / "corpus").exists()
