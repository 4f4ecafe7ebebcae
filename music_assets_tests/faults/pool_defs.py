"""A code location with one step in the `fluidsynth` pool, run with the project's executor (for the
dead-run tests: the pooled steps of the real graph take minutes; the pool mechanics are the same).

`FAULTS_POOL_MARKER` is written when the step holds its slot; the step then waits
`FAULTS_POOL_HOLD` seconds.
"""

import os
import time
from pathlib import Path

import dagster as dg

from music_assets.ops.executors import selected_executor


@dg.asset(pool="fluidsynth")
def pooled_step() -> None:
    Path(os.environ["FAULTS_POOL_MARKER"]).write_text(str(os.getpid()))
    deadline = time.monotonic() + float(os.environ.get("FAULTS_POOL_HOLD", "0"))
    while time.monotonic() < deadline:
        time.sleep(0.1)


defs = dg.Definitions(assets=[pooled_step], executor=selected_executor())
