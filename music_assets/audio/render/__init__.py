"""Rendering rudiment performances to augmented FLAC, and the audio quality gates.

Inputs are the per-rudiment performance tables and MIDI files written by
`rudiment_performances` (see docs/design.md); outputs are
`<data>/rudiments/audio/<slug>/<sample_id>.flac` (44.1 kHz, 24-bit, mono by
default or stereo (`channels`), `duration_sec + TAIL_SEC` long, audio time 0 =
MIDI time 0) and `<data>/rudiments/performances/<slug>/audio.parquet`.

Mono is the default: a General MIDI snare is (nearly) centred, so stereo
carries little more than the room's width, and it doubles the cost of the
augmentation chain and of FLAC encoding and the size of the dataset.

Every sample is rendered dry with FluidSynth (`synthesis.get_renderer`: one
synth per soundfont per process), the dry render's onsets are matched with
the labelled stroke times (`onsets`), then the augmentation chain
(`effects`) colours it and the result is written atomically. Samples are
spread over a process pool (`RenderPool`) with one worker per core, forked
from a server that imported the rendering code once (`render_preload`); each
worker caps BLAS/OpenMP threads to one, and loads each soundfont (and
measures its onset latency) once.

Which soundfont and preset a sample gets is fixed by a stable hash of its id
and the seed: the samples of a partition are ordered by that hash and dealt
round-robin over soundfont x preset (starting at a hash of the rudiment), so
every combination is used equally often. Every augmentation parameter is
drawn from `stable_rng(sample_id, seed, "augment")`. The same inputs and
configuration therefore give byte-identical FLAC files in any process and
order.

The package, by stage: `plan` (a partition's render jobs), `worker` (render,
measure, augment and write one sample), `pool` (the process pool and the job
stream), `write` (a run over partitions and each partition's audio.parquet),
`gates` (the blocking checks of a written partition).
"""

from __future__ import annotations

from music_assets.audio.render.gates import (
    DURATION_TOLERANCE_SEC,
    MAX_ALIGN_MEDIAN_MS,
    MAX_CLIPPED_RATIO,
    SILENCE_DBFS,
    check_partition,
)
from music_assets.audio.render.plan import (
    DEFAULT_CHANNELS,
    SAMPLE_RATE,
    SUBTYPE,
    TAIL_SEC,
    PlannedPartition,
    RenderError,
    RenderJob,
    assign_variants,
    plan_partition,
)
from music_assets.audio.render.pool import PENDING_JOBS_PER_WORKER, RenderPool, RenderRun, default_workers, render_jobs
from music_assets.audio.render.worker import CLIP_LEVEL, FLAC_COMPRESSION, preload_soundfont, render_dry, render_job
from music_assets.audio.render.write import PartitionAudio, RenderResult, audio_table, render_partitions

__all__ = [
    "CLIP_LEVEL",
    "DEFAULT_CHANNELS",
    "DURATION_TOLERANCE_SEC",
    "FLAC_COMPRESSION",
    "MAX_ALIGN_MEDIAN_MS",
    "MAX_CLIPPED_RATIO",
    "PENDING_JOBS_PER_WORKER",
    "PartitionAudio",
    "PlannedPartition",
    "RenderError",
    "RenderJob",
    "RenderPool",
    "RenderResult",
    "RenderRun",
    "SAMPLE_RATE",
    "SILENCE_DBFS",
    "SUBTYPE",
    "TAIL_SEC",
    "assign_variants",
    "audio_table",
    "check_partition",
    "default_workers",
    "plan_partition",
    "preload_soundfont",
    "render_dry",
    "render_job",
    "render_jobs",
    "render_partitions",
]
