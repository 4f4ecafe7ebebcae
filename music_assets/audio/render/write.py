"""A render run over partitions: plan, render on one pool, and write each partition's audio.parquet.

A partition's table is written (after its FLAC files reach the disk) as soon
as its last row is in, and files of samples no longer in it are removed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from music_assets import layout
from music_assets.audio import effects
from music_assets.audio.presets import PRESET_NAMES
from music_assets.audio.render.plan import (
    DEFAULT_CHANNELS,
    PlannedPartition,
    RenderError,
    RenderJob,
    plan_partition,
)
from music_assets.audio.render.pool import RenderPool, RenderRun, render_jobs
from music_assets.audio.soundfonts import not_found_message
from music_assets.audio.synthesis import DEFAULT_SOUNDFONTS


def audio_table(rows: Sequence[dict[str, object]]):
    """The audio.parquet table: strings as pa.string(), ints as int64, the rest float64."""
    import pyarrow as pa  # noqa: PLC0415

    if not rows:
        raise RenderError("no rendered samples to tabulate")
    fields = []
    for key, value in rows[0].items():
        if isinstance(value, str):
            typ = pa.string()
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            typ = pa.int64()
        else:
            typ = pa.float64()
        fields.append(pa.field(key, typ))
    return pa.Table.from_pylist(list(rows), schema=pa.schema(fields))


@dataclass
class PartitionAudio:
    """A rendered partition; its rows are read back from its audio.parquet when asked for."""

    slug: str
    table_path: Path
    num_rows: int

    @property
    def rows(self) -> list[dict[str, object]]:
        import pyarrow.parquet as pq  # noqa: PLC0415

        return pq.read_table(self.table_path).to_pylist()


class _PartitionRows(Sequence):
    """Every partition's rows in order, one partition in memory at a time."""

    def __init__(self, parts: Sequence[PartitionAudio]):
        self._parts = list(parts)

    def __len__(self) -> int:
        return sum(p.num_rows for p in self._parts)

    def __iter__(self) -> Iterator[dict[str, object]]:
        for p in self._parts:
            yield from p.rows

    def __getitem__(self, i):  # rarely used: lists one partition, or all of them for a slice
        if isinstance(i, slice):
            return list(self)[i]
        i = i + len(self) if i < 0 else i
        for p in self._parts:
            if i < p.num_rows:
                return p.rows[i]
            i -= p.num_rows
        raise IndexError(i)


@dataclass
class RenderResult:
    partitions: dict[str, PartitionAudio]
    run: RenderRun


def render_partitions(
    slugs: Sequence[str],
    data: Path,
    *,
    soundfonts: Sequence[str | os.PathLike[str]] = DEFAULT_SOUNDFONTS,
    presets: Sequence[str] = PRESET_NAMES,
    seed: int = 0,
    workers: int = 0,
    use_beds: bool = True,
    channels: int = DEFAULT_CHANNELS,
    progress: Callable[..., None] | None = None,
    pool: RenderPool | None = None,
    prepare: Callable[[str], None] | None = None,
    finished: Callable[[str, PartitionAudio], None] | None = None,
) -> RenderResult:
    """Render every performance of `slugs` on one pool and write each partition's audio.parquet.

    `finished(slug, partition)`, when given, is called as soon as a partition is complete (its
    files flushed, its audio.parquet written, files of samples no longer in it removed): the
    caller records the partition's manifest there.

    The pool (`workers` processes unless one is given) starts before the
    partitions are planned, so its start-up overlaps the planning. Files of
    samples no longer in a partition are removed once its table is written.

    `prepare`, when given, is called with each slug, in order and one at a
    time on a background thread, for a caller that produces the performances
    as it goes (the benchmarks generate them there): partition k + 1 is
    prepared while partition k is planned, queued and rendered, so the workers
    render the first partitions while later ones are produced, and `progress`
    counts against the jobs queued so far.
    """
    sf_paths = [Path(p) for p in soundfonts]
    missing = [not_found_message(p) for p in sf_paths if not p.is_file()]
    if missing:
        raise RenderError("; ".join(missing))
    if pool is None:
        with RenderPool(workers) as own:
            return render_partitions(
                slugs,
                data,
                soundfonts=soundfonts,
                presets=presets,
                seed=seed,
                use_beds=use_beds,
                channels=channels,
                progress=progress,
                pool=own,
                prepare=prepare,
                finished=finished,
            )
    beds = effects.background_beds(layout.sources_dir(data)) if use_beds else []
    # Streams: each partition is planned only when the workers need its jobs, and its
    # audio.parquet is written as soon as its last row is in, so this process holds a few
    # chunks of jobs and one partition's rows, whatever the number of samples.
    counts: dict[str, int] = {}
    if prepare is None:
        for slug in slugs:  # plan every partition first: bad input fails before anything is rendered
            counts[slug] = len(plan_partition(slug, data, sf_paths, presets, seed, beds, channels))
    total = sum(counts.values()) if prepare is None else None

    def plan(slug: str) -> PlannedPartition:
        return plan_partition(slug, data, sf_paths, presets, seed, beds, channels)

    sink = _PartitionSink(slugs, counts, data, finished)
    run = render_jobs(
        _stream_jobs(slugs, data, counts, plan, prepare), progress=progress, pool=pool, sink=sink, total=total
    )
    for slug in slugs:  # a partition without samples still gets its (empty) table's error
        if slug not in sink.out:
            sink.finish(slug)
    out = sink.out
    run.rows = _PartitionRows([out[s] for s in slugs])
    return RenderResult({s: out[s] for s in slugs}, run)


def _stream_jobs(
    slugs: Sequence[str],
    data: Path,
    counts: dict[str, int],
    plan: Callable[[str], PlannedPartition],
    prepare: Callable[[str], None] | None,
) -> Iterator[RenderJob]:
    """Every partition's jobs in order, each partition planned (and its job count recorded in
    `counts`) only when the workers reach it. With `prepare`, partition k + 1 is prepared on a
    thread while partition k's jobs are queued and rendered, so the pending window need only
    cover planning, not producing, a partition."""
    from music_assets.io import remove_partials  # noqa: PLC0415

    ahead = ThreadPoolExecutor(1, thread_name_prefix="render-prepare") if prepare is not None else None
    try:
        prepared = ahead.submit(prepare, slugs[0]) if ahead is not None and slugs else None
        for i, slug in enumerate(slugs):
            if prepared is not None:
                prepared.result()  # prepare's error, if any, stops the run here
                prepared = ahead.submit(prepare, slugs[i + 1]) if i + 1 < len(slugs) else None
            # made as they are drawn, not a partition's worth at once: a partition has
            # samples / 40 jobs, more than the pending window at scale
            part = plan(slug)
            counts[slug] = len(part)
            remove_partials(layout.audio_dir(slug, data))
            yield from part
    finally:
        if ahead is not None:
            ahead.shutdown(wait=True, cancel_futures=True)


class _PartitionSink:
    """Takes the rendered rows in job order and writes each partition's audio.parquet as soon as
    its last row is in (`counts`: the job count of each partition planned so far), so a run
    holds one partition's rows at a time."""

    def __init__(
        self,
        slugs: Sequence[str],
        counts: dict[str, int],
        data: Path,
        finished: Callable[[str, PartitionAudio], None] | None,
    ):
        self.out: dict[str, PartitionAudio] = {}
        self._pending = iter(slugs)
        self._current: str | None = None
        self._rows: list[dict[str, object]] = []
        self._counts = counts
        self._data = data
        self._finished = finished

    def __call__(self, row: dict[str, object]) -> None:
        while self._current is None or len(self._rows) >= self._counts[self._current]:
            self._current = next(self._pending)
        self._rows.append(row)
        if len(self._rows) == self._counts[self._current]:
            self.finish(self._current)
            self._current = None

    def finish(self, slug: str) -> None:
        """Write `slug`'s table from the rows collected, and remove its files no longer listed."""
        from music_assets.io import write_parquet  # noqa: PLC0415

        os.sync()  # the FLAC files reach the disk before the table that lists them
        path = layout.performance_dir(slug, self._data) / f"{layout.AUDIO_TABLE}.parquet"
        write_parquet(path, audio_table(self._rows))
        keep = {Path(str(r["audio_path"])).name for r in self._rows}
        for stale in layout.audio_dir(slug, self._data).glob("*.flac"):
            if stale.name not in keep:
                stale.unlink()
        self.out[slug] = PartitionAudio(slug, path, len(self._rows))
        self._rows.clear()
        if self._finished is not None:
            self._finished(slug, self.out[slug])
