"""Dagster overhead of prepared_sources' dynamic partitions at the size of a real music folder.

Generates N short files (default 3,000; 31 s each, just over the 30 s
preparation minimum, 8 kHz mono FLAC with `music_like` content) under
`<data dir>/raw_audio`, on a real on-disk instance made from the project's
dagster.yaml (SQLite, queued run coordinator), and times:

- `audio_catalog` and `selected_sources` (dg.materialize): the selection adds
  one dynamic partition per selected source;
- declarative automation as the `follow_inputs` sensor evaluates it (`dg.evaluate_automation_conditions`
  over the code location's own definitions, on this instance): the tick after the selection (every new
  source: prepared_sources and texture_beds requested), then, with every partition materialized (reported
  as runless materializations, standing in for the backfill's runs), a catalog refresh with no file
  changed, one with a file touched (new mtime, same bytes) and one with a file edited (new bytes): the
  partitions each next tick requests (targets 0, 0, and 1 + its texture bed) and how long the tick takes,
  against the baseline measured at the same ticks: the conditions before per-source data versions
  (`eager()` on every input, the whole selection included), from the settled state;
- the partition sync itself (`defs.sources.sync_prepared_partitions`): adding
  every key to an empty set, a no-op sync, removing 10 % and adding them back;
- ticks of `raw_audio_sensor` (build_sensor_context): the first (no cursor,
  requests a catalog run), an unchanged tree (skip), one that finds a
  partition whose file is gone, and one that finds every file gone (the tick
  deletes those partitions itself, in one transaction);
- the backfill of every prepared_sources partition launched as the UI does it
  (GraphQL `launchPartitionBackfill`, allPartitions) on a workspace loaded
  from `music_assets.definitions`, and one iteration of the backfill daemon
  (`execute_backfill_iteration`), which turns it into runs: prepared_sources'
  policy gives queued runs of at most 100 partitions each
  (`MUSIC_ASSETS_BACKFILL_PARTITIONS_PER_RUN` overrides it; `all`: one run);
- with `--prepare`, the queued runs are launched as the run-queue daemon does
  (`QueuedRunCoordinatorDaemon`, at most 2 at once as dagster.yaml says) and
  waited for; their wall time less the preparation time measured directly
  (`prepare_source` and `check_prepared` on a sample of files, times N) is the
  Dagster overhead of preparing N partitions (4 checks each).

    python bench/partitions.py [--files 3000] [--seconds 31] [--prepare] [--keep DIR] [--profile] [--postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""


def make_tree(root: Path, n: int, seconds: float, sr: int = 8000) -> int:
    """N distinct files of `seconds` each under `root` (100 per folder); returns their bytes."""
    from music_assets.audio.signals import music_like, write

    total = 0
    for i in range(n):
        path = write(root / f"album_{i // 100:03d}" / f"take_{i:05d}.flac", music_like(seconds, sr, seed=i), sr)
        total += path.stat().st_size
    return total


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def measure(
    data: Path, n_files: int, seconds: float = 31.0, prepare: bool = False, log=print, profile: bool = False
) -> dict:
    """Build the tree under `data` (the data dir) and time each step; returns the figures."""
    os.environ["MUSIC_ASSETS_DATA_DIR"] = str(data)
    os.environ["DAGSTER_HOME"] = str(data / "dagster_home")
    import dagster as dg
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import ModuleTarget
    from dagster._daemon.backfill import execute_backfill_iteration
    from dagster_graphql.test.utils import execute_dagster_graphql

    from music_assets.defs.partitions import prepared_source_partitions
    from music_assets.defs.sources import assets as sources
    from music_assets.ops.instance import ensure_dagster_home

    ensure_dagster_home()
    raw = data / "raw_audio"
    out: dict = {"files": n_files, "seconds_each": seconds}
    out["tree_bytes"], out["make_tree"] = _timed(make_tree, raw, n_files, seconds)
    log(f"{n_files} files of {seconds:g} s written in {out['make_tree']:.1f} s ({out['tree_bytes'] / 1e6:.0f} MB)")
    name = prepared_source_partitions.name
    resources = {"audio_roots": sources.AudioRoots()}
    with dg.DagsterInstance.get() as instance:
        res, out["catalog"] = _timed(dg.materialize, [sources.audio_catalog], instance=instance, resources=resources)
        assert res.success
        ticks = AutomationTicks(instance)
        baseline = AutomationTicks(instance, baseline_defs())
        ticks()  # the automation sensor's first evaluation, before any source is known
        baseline()
        res, out["selection"] = _timed(
            dg.materialize, [sources.audio_catalog, sources.selected_sources], instance=instance,
            selection=[sources.selected_sources], resources=resources,
        )  # fmt: skip
        assert res.success
        keys = instance.get_dynamic_partitions(name)
        out["partitions"] = len(keys)
        log(
            f"audio_catalog {out['catalog']:.1f} s, selected_sources {out['selection']:.1f} s "
            f"(adds {len(keys)} partitions)"
        )
        if len(keys) != n_files:
            raise RuntimeError(f"{len(keys)} partitions for {n_files} files: not every file was selected")
        out.update(_automation(instance, ticks, baseline, raw, keys, resources, log))

        _, out["sync_noop"] = _timed(sources.sync_prepared_partitions, instance, keys)
        tenth = keys[:: max(1, 10)]
        rest = sorted(set(keys) - set(tenth))
        _, out["sync_remove_10pct"] = _timed(sources.sync_prepared_partitions, instance, rest)
        _, out["sync_readd_10pct"] = _timed(sources.sync_prepared_partitions, instance, keys)
        _, out["sync_remove_all"] = _timed(sources.sync_prepared_partitions, instance, [])
        _, out["sync_add_all"] = _timed(sources.sync_prepared_partitions, instance, keys)
        assert sorted(instance.get_dynamic_partitions(name)) == sorted(keys)
        log(
            f"partition sync: add {len(keys)} {out['sync_add_all']:.2f} s, no-op {out['sync_noop']:.2f} s, "
            f"remove {len(tenth)} {out['sync_remove_10pct']:.2f} s, re-add {out['sync_readd_10pct']:.2f} s, "
            f"remove all {out['sync_remove_all']:.2f} s"
        )

        def sensor_context(cursor=None):
            return dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)

        first, out["tick_first"] = _timed(sources.raw_audio_sensor, sensor_context())
        assert isinstance(first, dg.SensorResult) and first.run_requests, first
        same, out["tick_unchanged"] = _timed(sources.raw_audio_sensor, sensor_context(first.cursor))
        assert isinstance(same, dg.SkipReason), same
        gone = raw / "album_000" / "take_00000.flac"
        moved = gone.rename(data / "moved.flac")
        changed, out["tick_file_removed"] = _timed(sources.raw_audio_sensor, sensor_context(first.cursor))
        moved.rename(gone)
        assert isinstance(changed, dg.SensorResult) and changed.run_requests, changed
        assert len(instance.get_dynamic_partitions(name)) == len(keys) - 1  # the tick removed its partition
        # every source gone at once (a music folder unmounted): the tick removes every partition itself
        away = data / "raw_away"
        away.mkdir()
        for child in list(raw.iterdir()):  # the root stays: without it the sensor skips
            child.rename(away / child.name)
        emptied, out["tick_all_removed"] = _timed(sources.raw_audio_sensor, sensor_context(first.cursor))
        for child in list(away.iterdir()):
            child.rename(raw / child.name)
        assert instance.get_dynamic_partitions(name) == [], emptied
        sources.sync_prepared_partitions(instance, keys)
        log(
            f"raw_audio_sensor tick over {n_files} files: first {out['tick_first']:.2f} s, unchanged "
            f"{out['tick_unchanged']:.2f} s, a file removed {out['tick_file_removed']:.2f} s, every file "
            f"removed (the tick deletes {len(keys)} partitions) {out['tick_all_removed']:.2f} s"
        )

        target = ModuleTarget(
            module_name="music_assets.definitions",
            attribute=None,
            working_directory=str(ROOT),
            location_name="music_assets",
        )
        t0 = time.perf_counter()
        with WorkspaceProcessContext(instance, target) as workspace:
            context = workspace.create_request_context()
            entry = next(iter(context.get_code_location_entries().values()))
            if entry.load_error is not None:
                raise RuntimeError(f"music_assets.definitions did not load: {entry.load_error}")
            out["workspace_load"] = time.perf_counter() - t0
            result, out["backfill_launch"] = _timed(
                execute_dagster_graphql,
                context,
                LAUNCH_BACKFILL,
                {"params": {"assetSelection": [{"path": ["prepared_sources"]}], "allPartitions": True}},
            )
            payload = result.data["launchPartitionBackfill"] if result.data else result.errors
            if not result.data or payload["__typename"] != "LaunchBackfillSuccess":
                raise RuntimeError(f"launchPartitionBackfill failed: {payload}")
            backfill_id = payload["backfillId"]
            logger = logging.getLogger("bench.partitions")
            if profile:
                import cProfile  # noqa: PLC0415
                import pstats  # noqa: PLC0415

                prof = cProfile.Profile()
                _, out["backfill_submit"] = _timed(
                    lambda: prof.runcall(lambda: list(execute_backfill_iteration(workspace, logger)))
                )
                pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
            else:
                _, out["backfill_submit"] = _timed(lambda: list(execute_backfill_iteration(workspace, logger)))
            index_db = Path(os.environ["DAGSTER_HOME"]) / "history" / "runs" / "index.db"
            out["index_db_mb"] = index_db.stat().st_size / 1e6 if index_db.is_file() else None
            runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))[::-1]
            out["runs"] = len(runs)
            out["run_status"] = sorted({r.status.value for r in runs})
            order = instance.get_dynamic_partitions(name)  # a range runs over the keys in this order
            out["first_key"], out["last_key"] = order[0], order[-1]
            out["run_ranges"] = [
                (r.tags.get("dagster/asset_partition_range_start"), r.tags.get("dagster/asset_partition_range_end"))
                for r in runs
            ]
            out["range_sizes"] = [order.index(b) - order.index(a) + 1 if a and b else 0 for a, b in out["run_ranges"]]
            log(
                f"workspace loaded in {out['workspace_load']:.1f} s; launchPartitionBackfill (all {len(keys)} "
                f"partitions) {out['backfill_launch']:.2f} s; one backfill-daemon iteration "
                f"{out['backfill_submit']:.2f} s -> {len(runs)} run(s) "
                f"({out['backfill_submit'] / max(len(runs), 1):.2f} s each), {'/'.join(out['run_status'])}, "
                f"partitions per run {sorted(set(out['range_sizes']))}; "
                f"index.db {out['index_db_mb'] or 0:.0f} MB after it"
            )
            if prepare and runs:
                out.update(_run_backfill(instance, workspace, backfill_id, raw, keys, log))
    return out


class AutomationTicks:
    """Successive evaluations of automation conditions (default: the sources group as the code location
    defines it), as the sensor daemon runs them."""

    def __init__(self, instance, defs=None):
        self.instance, self.defs, self.cursor = instance, defs if defs is not None else current_defs(), None

    def __call__(self) -> tuple[dict[str, int], float]:
        import dagster as dg

        t0 = time.perf_counter()
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor)
        seconds = time.perf_counter() - t0
        self.cursor = result.cursor
        keys = {r.key for r in result.results if isinstance(r.key, dg.AssetKey)}
        return {k.to_user_string(): result.get_num_requested(k) for k in keys if result.get_num_requested(k)}, seconds


def current_defs():
    """The sources group with the code location's own automation conditions. The groups downstream
    (training sets) follow prepared_sources with the same condition; they are left out so the figures
    compare like with like against the baseline."""
    import dagster as dg

    from music_assets.defs.sources import assets as sources
    from music_assets.defs.sources.textures import texture_beds

    return dg.Definitions(
        assets=[sources.audio_catalog, sources.selected_sources, sources.source_files,
                sources.prepared_sources, texture_beds],
        resources={"audio_roots": sources.AudioRoots()},
    )  # fmt: skip


def baseline_defs():
    """The baseline, measured in the same run: the sources group with the automation it had before
    per-source data versions, `eager()` on every input of prepared_sources and texture_beds, the
    unpartitioned selection included (source_files, which did not exist, may be missing)."""
    import dagster as dg

    from music_assets.defs.sources import assets as sources
    from music_assets.defs.sources.textures import texture_beds

    ac = dg.AutomationCondition
    before = (
        ac.eager().replace(
            "any_deps_missing", ac.any_deps_missing().ignore(dg.AssetSelection.assets(sources.SOURCE_FILES))
        )
        & ac.all_deps_blocking_checks_passed()
    )

    def old(asset):
        return asset.map_asset_specs(lambda spec: spec.replace_attributes(automation_condition=before))

    return dg.Definitions(
        assets=[sources.audio_catalog, sources.selected_sources, sources.source_files,
                old(sources.prepared_sources), old(texture_beds)],
        resources={"audio_roots": sources.AudioRoots()},
    )  # fmt: skip


def _report_materialized(instance, keys: list[str]) -> int:
    """Runless materializations of every partition of prepared_sources and texture_beds not yet materialized:
    the state the backfill's runs leave, without preparing 3,000 files here (`--prepare` does that)."""
    import dagster as dg

    n = 0
    for asset in ("prepared_sources", "texture_beds"):
        done = instance.get_materialized_partitions(dg.AssetKey(asset))
        for key in keys:
            if key not in done:
                instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=key))
                n += 1
    return n


def _automation(
    instance, ticks: AutomationTicks, baseline: AutomationTicks, raw: Path, keys: list[str], resources, log
) -> dict:
    """What automation requests after a catalog refresh (the figures of the module docstring), and what the
    baseline's conditions request at the same ticks."""
    import dagster as dg
    import numpy as np
    import soundfile as sf

    from music_assets.audio.signals import music_like, write
    from music_assets.defs.sources import assets as sources

    def refresh() -> float:
        res, seconds = _timed(
            dg.materialize, [sources.audio_catalog, sources.selected_sources], instance=instance, resources=resources
        )
        assert res.success
        return seconds

    settled: list = []

    def both(name: str) -> None:
        out[f"{name}_requested"], out[f"tick_{name}"] = ticks()
        if settled:  # the baseline's requests never run here: each refresh is measured from the settled state
            baseline.cursor = settled[0]
        out[f"{name}_requested_baseline"], out[f"tick_{name}_baseline"] = baseline()

    out: dict = {}
    both("new")
    assert out["new_requested"] == {"prepared_sources": len(keys), "texture_beds": len(keys)}, out["new_requested"]
    reported, out["report_materialized"] = _timed(_report_materialized, instance, keys)
    both("settle")
    assert out["settle_requested"] == {} and out["settle_requested_baseline"] == {}, out
    settled.append(baseline.cursor)
    log(
        f"automation: the tick after the selection requests {out['new_requested']} in {out['tick_new']:.2f} s; "
        f"{reported} runless materializations stand in for the backfill ({out['report_materialized']:.1f} s)"
    )
    out["refresh_nochange"] = refresh()
    both("nochange")
    touched = sorted(raw.rglob("*.flac"))[len(keys) // 2]
    os.utime(touched, ns=(time.time_ns(), time.time_ns()))
    out["refresh_touched"] = refresh()
    both("touched")
    edited = sorted(raw.rglob("*.flac"))[len(keys) // 3]
    info = sf.info(edited)
    write(edited, np.flip(music_like(info.duration, info.samplerate, seed=424242)), info.samplerate)
    out["refresh_edited"] = refresh()
    both("edited")

    def count(requested: dict) -> int:
        return sum(requested.values())

    for name, what in (("nochange", "no file changed"), ("touched", "1 file touched (same bytes)"),
                       ("edited", "1 file edited")):  # fmt: skip
        now, before = out[f"{name}_requested"], out[f"{name}_requested_baseline"]
        log(
            f"automation over {len(keys)} sources, catalog refresh with {what}: the next tick requests "
            f"{count(now)} partition(s) {now or ''} in {out[f'tick_{name}']:.2f} s; the baseline (eager on the whole "
            f"selection, from the settled state) {count(before)} in {out[f'tick_{name}_baseline']:.2f} s "
            f"({count(now) / max(count(before), 1):.4f}x the partitions)"
        )
    log(
        f"a catalog refresh (audio_catalog + selected_sources, {len(keys)} files reused) took "
        f"{out['refresh_nochange']:.1f} s"
    )
    return out


def _run_backfill(instance, workspace, backfill_id: str, raw: Path, keys, log) -> dict:
    """Launch the queued runs as the run-queue daemon does (the backfill daemon submitting any it has not
    yet), wait for every run, and split their time."""
    import dagster as dg
    from dagster._daemon.backfill import execute_backfill_iteration
    from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

    from music_assets.audio.preparation import check_prepared, prepare_source

    out: dict = {}
    sample = sorted(raw.rglob("*.flac"))[:: max(1, len(keys) // 20)][:20]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for i, src in enumerate(sample):
            prepare_source(src, Path(tmp) / f"{i}.flac")
        out["prepare_each"] = (time.perf_counter() - t0) / len(sample)
        t0 = time.perf_counter()
        for i in range(len(sample)):
            check_prepared(Path(tmp) / f"{i}.flac")
        out["check_each"] = (time.perf_counter() - t0) / len(sample)
    t0 = time.perf_counter()
    logger = logging.getLogger("bench.partitions")
    queue = QueuedRunCoordinatorDaemon(interval_seconds=1)
    done = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
    backfill_done = ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")

    def backfill_runs():
        return instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))

    try:
        while True:
            list(queue.run_iteration(workspace))  # launches queued runs up to the concurrency limit
            runs = backfill_runs()
            if all(r.status in done for r in runs):
                list(execute_backfill_iteration(workspace, logger))  # submits runs not yet created, or ends it
                if instance.get_backfill(backfill_id).status.value in backfill_done:
                    break
            time.sleep(2)
    except BaseException:
        # The runs live in the code server's process tree, not this one: stop them before the work
        # dir (their instance) is removed on the way out, or they fail writing their next event with
        # SQLite's "unable to open database file".
        live = [r.run_id for r in backfill_runs() if r.status not in done]
        log(f"stopping runs {live} before leaving")
        for run_id in live:
            instance.run_launcher.terminate(run_id)
        deadline = time.monotonic() + 120
        while any(r.status not in done for r in backfill_runs()) and time.monotonic() < deadline:
            time.sleep(1)
        raise
    out["run_wall"] = time.perf_counter() - t0
    runs = backfill_runs()
    out["runs_total"] = len(runs)
    out["run_final_status"] = "/".join(sorted({r.status.value for r in runs}))
    out["step_wall"] = 0.0
    out["check_evaluations"] = 0
    for run in runs:
        steps = [s for s in instance.get_run_step_stats(run.run_id) if s.step_key == "prepared_sources"]
        out["step_wall"] += sum((s.end_time or 0) - (s.start_time or 0) for s in steps)
        out["check_evaluations"] += len(
            instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=10 * len(keys) + 10
            ).records
        )
    out["backfill_status"] = instance.get_backfill(backfill_id).status.value
    materialized = instance.get_materialized_partitions(dg.AssetKey("prepared_sources"))
    out["materialized"] = len(materialized)
    # Our own work in the step: preparing each file and measuring the written file for the checks.
    prep = (out["prepare_each"] + out["check_each"]) * len(keys)
    out["overhead"] = out["run_wall"] - prep
    out["step_overhead"] = out["step_wall"] - prep
    log(
        f"the backfill's {out['runs_total']} run(s): {out['run_final_status']} in {out['run_wall']:.0f} s, their "
        f"steps {out['step_wall']:.0f} s in all ({out['materialized']} partitions materialized, "
        f"{out['check_evaluations']} check evaluations; backfill "
        f"{out['backfill_status']}); preparation alone {out['prepare_each']:.2f} s + checks "
        f"{out['check_each']:.2f} s per file (x {len(keys)} = "
        f"{prep:.0f} s), so Dagster's share: {out['run_wall'] - out['step_wall']:.0f} s to launch and start the runs "
        "(beyond what ran concurrently), "
        f"{out['step_overhead']:.0f} s in the step ({out['step_overhead'] / len(keys) * 1000:.0f} ms per partition: "
        "events, metadata, 4 check evaluations)"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=3000, help="number of files (default 3000)")
    ap.add_argument("--seconds", type=float, default=31.0, help="length of each file (default 31 s)")
    ap.add_argument("--prepare", action="store_true", help="also run the backfill (prepares every file)")
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the backfill-daemon iteration")
    ap.add_argument(
        "--postgres", action="store_true", help="on dagster.postgres.yaml with a throwaway local server (fsync off)"
    )
    args = ap.parse_args(argv)
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-partitions-"))
    base.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}; work dir {base}", flush=True)
    with contextlib.ExitStack() as stack:
        if args.postgres:
            from music_assets.local_postgres import postgres_server

            os.environ["MUSIC_ASSETS_INSTANCE"] = "postgres"
            os.environ["MUSIC_ASSETS_POSTGRES_URL"] = stack.enter_context(postgres_server())
            print("instance: dagster.postgres.yaml on a local PostgreSQL server (fsync off)", flush=True)
        stack.callback(lambda: None if args.keep else shutil.rmtree(base, ignore_errors=True))
        measure(
            base / "data", args.files, args.seconds, args.prepare, log=lambda m: print(m, flush=True),
            profile=args.profile,
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
