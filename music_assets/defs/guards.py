"""What every asset that writes files wraps its writing in (the Dagster side of
`music_assets.locks`, `music_assets.integrity` and `music_assets.io`).

`writing(context)` holds the write lock of every partition the step writes (a
second run fails with "partition flam of rudiment_audio is being written by
run ..."), tags this process's temporary files with the run id, and turns the
integrity, confinement and lock errors into a `dg.Failure` whose description
is the reason (the file, both hashes, what to re-materialize) rather than a
traceback.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

import dagster as dg

from music_assets.integrity import IntegrityError, PathEscapeError
from music_assets.io import RUN_ID_ENV, WriteError
from music_assets.locks import PartitionBusyError, partition_lock

# What a step turns into a clean Failure (the message says it all); anything else keeps its traceback.
CLEAR_ERRORS = (IntegrityError, PathEscapeError, PartitionBusyError, WriteError)


def step_partitions(context: dg.AssetExecutionContext) -> list[str | None]:
    """The partition keys this step writes; [None] for an unpartitioned asset."""
    if context.assets_def.partitions_def is None:
        return [None]
    return [str(k) for k in context.partition_keys]


@contextlib.contextmanager
def clear_errors() -> Iterator[None]:
    """Integrity, confinement, lock and write errors as a Failure that states the reason."""
    try:
        yield
    except CLEAR_ERRORS as exc:
        # retrying cannot fix a corrupt file, an escaping key or a full disk; a busy partition needs
        # the other run to finish first
        raise dg.Failure(description=str(exc), allow_retries=False) from exc


@contextlib.contextmanager
def writing(
    context: dg.AssetExecutionContext,
    asset: str | None = None,
    partitions: Sequence[str | None] | None = None,
    timeout: float = 0.0,
) -> Iterator[None]:
    """Lock what this step writes (every partition of the step, or the whole asset), for the block."""
    name = asset or context.asset_key.to_user_string()
    keys = list(partitions) if partitions is not None else step_partitions(context)
    saved = os.environ.get(RUN_ID_ENV)
    os.environ[RUN_ID_ENV] = context.run_id
    try:
        with clear_errors(), partition_lock(name, keys, run_id=context.run_id, timeout=timeout, log=context.log.info):
            yield
    finally:
        if saved is None:
            os.environ.pop(RUN_ID_ENV, None)
        else:
            os.environ[RUN_ID_ENV] = saved
