"""Stand-in for rudiment_audio in label tests: dry renders of the generated MIDI with the real renderer.

Writes `rudiments/audio/<slug>/<sample_id>.flac` and a minimal
`rudiments/performances/<slug>/audio.parquet` (the contract's key columns), so
the label merge and its checks run on real files without the augmentation
pipeline.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from music_assets.audio.io import write_flac
from music_assets.audio.synthesis import DEFAULT_SOUNDFONTS, get_renderer
from music_assets.io import write_parquet

TAIL_SEC = 0.3


def render_stub_audio(root: Path, slugs: list[str]) -> None:
    sf = DEFAULT_SOUNDFONTS[0]
    renderer = get_renderer(sf)
    for slug in slugs:
        perf_dir = root / "rudiments" / "performances" / slug
        samples = pq.read_table(perf_dir / "samples.parquet", columns=["sample_id", "midi_path"]).to_pylist()
        rows = {"sample_id": [], "audio_path": [], "soundfont": [], "aug_preset": [], "audio_duration_sec": []}
        for s in samples:
            audio = renderer.render_midi(root / s["midi_path"], tail_seconds=TAIL_SEC)
            rel = f"rudiments/audio/{slug}/{s['sample_id']}.flac"
            write_flac(root / rel, audio, renderer.sample_rate)
            rows["sample_id"].append(s["sample_id"])
            rows["audio_path"].append(rel)
            rows["soundfont"].append(sf.name)
            rows["aug_preset"].append("dry")
            rows["audio_duration_sec"].append(len(audio) / renderer.sample_rate)
        write_parquet(perf_dir / "audio.parquet", pa.table(rows))
