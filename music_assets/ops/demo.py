"""`make run`: materialize the whole asset graph at demo scale, stage by stage.

The graph is split into stages of assets that share a partitions definition
and whose upstream assets are already done; each stage is one real
`dagster asset materialize` run on the instance in $DAGSTER_HOME (SQLite by
default), over every partition of the stage (the partitioned assets use a
single-run backfill policy, so a partition range is one run). Asset configs
default to demo scale, so no run config is passed. The runs, their logs and
their check results are then visible in the UI (`make dev`).

While a stage runs, its output goes to `data/logs/demo-stage-NN.log` and the
progress lines of its long steps (`music_assets.progress`: samples rendered,
training steps and loss, files cataloged) are shown as they come: as tqdm bars
on stderr when it is a terminal, else as plain lines on stdout (at most one
per step every few seconds, so CI logs stay readable).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from music_assets.ops.instance import ensure_dagster_home, reap_dead_runs
from music_assets.paths import REPO_ROOT, data_dir
from music_assets.progress import parse

MODULE = "music_assets.definitions"
# A user log line in the output of `dagster asset materialize` (step-level lines name their step).
_LOG_LINE = re.compile(r" - dagster - INFO - \S+ - [0-9a-f-]{36} - (?P<step>\S+) - (?P<message>.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Materializable assets `make run` leaves out (none: hf_model stages a dry run without a token).
NOT_IN_DEMO: frozenset[str] = frozenset()


class StageProgress:
    """Shows the progress lines of a stage's run output: tqdm bars on a terminal, plain lines otherwise."""

    def __init__(self, tty: bool | None = None, out=None):
        self.out = out or sys.stdout
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.bars: dict[tuple[str, str], object] = {}

    def line(self, text: str) -> None:
        m = _LOG_LINE.search(_ANSI.sub("", text.rstrip("\n")))
        p = parse(m["message"]) if m else None
        if p is None:
            return
        name = f"{m['step']}: {p.label}" if p.label != m["step"] else p.label
        if not self.tty:
            print(f"    {name}: {p.done}/{p.total} {p.unit}" + (f", {p.rest}" if p.rest else ""), file=self.out)
            self.out.flush()
            return
        from tqdm import tqdm  # noqa: PLC0415

        bar = self.bars.get((m["step"], p.label))
        if bar is None:
            bar = self.bars[(m["step"], p.label)] = tqdm(
                total=p.total, desc=f"    {name}", unit=f" {p.unit}", file=sys.stderr, leave=False, dynamic_ncols=True
            )
        bar.total = p.total
        bar.n = p.done
        bar.set_postfix_str(p.rest, refresh=False)
        bar.refresh()
        if p.done >= p.total:
            self.bars.pop((m["step"], p.label)).close()
            tqdm.write(f"    {name}: {p.done}/{p.total} {p.unit}" + (f", {p.rest}" if p.rest else ""), file=self.out)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def run_stage(cmd: list[str], log: Path, progress: StageProgress) -> int:
    """Run one stage's command: every output line into `log`, its progress lines to the terminal."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
        try:
            assert proc.stdout is not None
            for text in proc.stdout:
                fh.write(text)
                progress.line(text)
        finally:
            progress.close()
            rc = proc.wait()
    return rc


@dataclass
class Stage:
    keys: list[dg.AssetKey]
    partitions_def: dg.PartitionsDefinition | None
    single_run: bool

    @property
    def selection(self) -> str:
        return ",".join(k.to_user_string() for k in self.keys)


def plan_stages(defs: dg.Definitions) -> list[Stage]:
    """Group the graph into as few runs as possible, in dependency order."""
    graph = defs.resolve_asset_graph()
    order = [
        k
        for k in graph.toposorted_asset_keys
        if graph.get(k).is_materializable and k.to_user_string() not in NOT_IN_DEMO
    ]
    done: set[dg.AssetKey] = set()
    stages: list[Stage] = []
    remaining = list(order)
    while remaining:
        ready = [k for k in remaining if set(graph.get(k).parent_keys) & set(order) <= done]
        # Of the partitions definitions ready to run, first take one that leaves
        # no asset of its kind behind (so a later stage of another kind is not
        # split in two), then the one that covers the most assets.
        candidates = []
        for pdef in {id(graph.get(k).partitions_def): graph.get(k).partitions_def for k in ready}.values():
            group: list[dg.AssetKey] = []
            for k in remaining:
                node = graph.get(k)
                parents = set(node.parent_keys) & set(order)
                if node.partitions_def == pdef and parents <= done | set(group):
                    group.append(k)
            leftover = sum(1 for k in remaining if graph.get(k).partitions_def == pdef and k not in group)
            candidates.append((-leftover, len(group), -order.index(group[0]), pdef, group))
        *_, pdef, group = max(candidates, key=lambda c: c[:3])
        single = all(
            (graph.get(k).backfill_policy is not None and graph.get(k).backfill_policy.max_partitions_per_run is None)
            for k in group
        )
        stages.append(Stage(group, pdef, single))
        done |= set(group)
        remaining = [k for k in remaining if k not in done]
    return stages


def _partition_args(stage: Stage, instance: dg.DagsterInstance) -> list[list[str]]:
    """CLI partition arguments: one list per run."""
    if stage.partitions_def is None:
        return [[]]
    keys = stage.partitions_def.get_partition_keys(dynamic_partitions_store=instance)
    if not keys:
        return []
    if stage.single_run:
        return [["--partition-range", f"{keys[0]}...{keys[-1]}"]]
    return [["--partition", k] for k in keys]


def run(argv: list[str] | None = None) -> int:
    home = ensure_dagster_home()
    os.environ["DAGSTER_HOME"] = str(home)
    from music_assets.definitions import defs  # noqa: PLC0415 - after DAGSTER_HOME is set

    logs = data_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stages = plan_stages(defs)
    print(f"music_assets demo: {sum(len(s.keys) for s in stages)} assets in {len(stages)} stages")
    print(f"  data dir:     {data_dir()}")
    print(f"  DAGSTER_HOME: {home}")
    dagster = str(Path(sys.executable).with_name("dagster"))
    started = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        for run_id in reap_dead_runs(instance):
            print(f"  an earlier run {run_id} was killed; marked it failed and freed its pool slots")
        for i, stage in enumerate(stages, 1):
            runs = _partition_args(stage, instance)
            if not runs:
                print(f"[{i}/{len(stages)}] {stage.selection}: no partitions yet, skipped")
                continue
            for part in runs:
                t0 = time.monotonic()
                label = f"[{i}/{len(stages)}] {stage.selection}" + (f" {' '.join(part[1:])}" if part else "")
                print(f"{label} ...", flush=True)
                log = logs / f"demo-stage-{i:02d}.log"
                cmd = [dagster, "asset", "materialize", "-m", MODULE, "--select", stage.selection, *part]
                rc = run_stage(cmd, log, StageProgress())
                took = time.monotonic() - t0
                if rc != 0:
                    print(f"{label} FAILED after {took:.0f} s (exit {rc}); last lines of {log}:")
                    print("".join(log.read_text(errors="replace").splitlines(keepends=True)[-40:]))
                    return rc
                print(f"{label} ok in {took:.0f} s")
    print(f"\nDone in {time.monotonic() - started:.0f} s. Outputs are under {data_dir()}:")
    for sub in ("catalog", "sources", "training_sets", "rudiments", "hf_staging", "models"):
        p = data_dir() / sub
        if p.exists():
            print(f"  {p}")
    print(f"Run logs: {logs}")
    print("Open the UI with `make dev`, then http://127.0.0.1:3000 (runs, asset checks, metadata).")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
