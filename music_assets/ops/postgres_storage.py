"""Dagster's PostgreSQL storage with concurrency-pool slots that one step at a time can hold.

`dagster.postgres.yaml` names `PoolSafePostgresStorage`. It is dagster-postgres's
storage with two fixes to how pool slots are taken, both seen with two runs side
by side on one Celery cluster (two renders in the `fluidsynth` pool, limit 1, at once):

- Claiming a slot. dagster-postgres reads a free slot `FOR UPDATE` on an
  autocommit connection, so the row lock ends with the read; two runs that read
  at the same moment both write their step into the same slot and both go on.
  Here the read and the write are one transaction, and the write only takes a
  slot that is still free: the later of two runs is told "blocked" and waits.
- Creating a pool at its default limit (the first step of a fresh instance that
  names the pool). Two runs that do this at once both insert the pool's row; the
  loser's transaction is then aborted and its run fails. Here it happens under a
  transaction-scoped advisory lock, and a pool that is already there is left as is.

Every process that opens the instance must import this module (the CLI, the
web server, the daemon, Celery workers: all run the project's code).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as db
from dagster._core.storage.event_log.schema import ConcurrencyLimitsTable, ConcurrencySlotsTable
from dagster._serdes import ConfigurableClassData
from dagster._utils.concurrency import ConcurrencySlotStatus
from dagster_postgres import DagsterPostgresStorage, PostgresEventLogStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

# Any fixed 64-bit key: the advisory lock serializes pool creation across all processes.
POOL_INIT_LOCK = 0x6D75_7369_6361_7373  # "musicass"


def _settings(config_value: Any) -> dict[str, Any]:
    """The constructor arguments dagster-postgres reads from the instance file's storage config."""
    return {
        "postgres_url": pg_url_from_config(config_value),
        "should_autocreate_tables": config_value.get("should_autocreate_tables", True),
        "token_provider": get_token_provider_from_config(config_value),
    }


class PoolSafePostgresEventLogStorage(PostgresEventLogStorage):
    """dagster-postgres's event log with an atomic pool-slot claim (module docstring)."""

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any):  # noqa: ANN206
        return cls(inst_data=inst_data, **_settings(config_value))

    def _claim_concurrency_slot(self, concurrency_key: str, run_id: str, step_key: str) -> ConcurrencySlotStatus:
        free = db.and_(
            ConcurrencySlotsTable.c.concurrency_key == concurrency_key,
            ConcurrencySlotsTable.c.step_key.is_(None),
            ConcurrencySlotsTable.c.deleted.is_(False),
        )
        with self.index_transaction() as conn:
            row = conn.execute(
                db.select(ConcurrencySlotsTable.c.id).where(free).with_for_update(skip_locked=True).limit(1)
            ).fetchone()
            if row is None:
                return ConcurrencySlotStatus.BLOCKED
            taken = conn.execute(
                ConcurrencySlotsTable.update()
                .values(run_id=run_id, step_key=step_key)
                .where(db.and_(ConcurrencySlotsTable.c.id == row[0], free))
            ).rowcount
        return ConcurrencySlotStatus.CLAIMED if taken else ConcurrencySlotStatus.BLOCKED

    def initialize_concurrency_limit_to_default(self, concurrency_key: str) -> bool:
        if not (self.has_concurrency_limits_table and self.has_instance and self.has_default_pool_limit_col):
            return super().initialize_concurrency_limit_to_default(concurrency_key)
        default_limit = self._instance.global_op_concurrency_default_limit
        if default_limit is None:
            return super().initialize_concurrency_limit_to_default(concurrency_key)
        self._reconcile_concurrency_limits_from_slots()
        with self.index_transaction() as conn:
            conn.execute(db.text("SELECT pg_advisory_xact_lock(:key)"), {"key": POOL_INIT_LOCK})
            row = conn.execute(
                db.select(ConcurrencyLimitsTable.c.limit, ConcurrencyLimitsTable.c.using_default_limit).where(
                    ConcurrencyLimitsTable.c.concurrency_key == concurrency_key
                )
            ).fetchone()
            if row is None:
                conn.execute(
                    ConcurrencyLimitsTable.insert().values(
                        concurrency_key=concurrency_key, limit=default_limit, using_default_limit=True
                    )
                )
            elif not row[1] or row[0] == default_limit:
                return True  # set by hand (`dagster instance concurrency set`), or already at the default
            else:
                conn.execute(
                    ConcurrencyLimitsTable.update()
                    .values(limit=default_limit)
                    .where(ConcurrencyLimitsTable.c.concurrency_key == concurrency_key)
                )
            self._allocate_concurrency_slots(conn, concurrency_key, default_limit)
        return True


class PoolSafePostgresStorage(DagsterPostgresStorage):
    """dagster-postgres's storage whose event log is `PoolSafePostgresEventLogStorage`."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True, inst_data=None, token_provider=None):  # noqa: ANN001
        super().__init__(postgres_url, should_autocreate_tables, inst_data=inst_data, token_provider=token_provider)
        self._event_log_storage = PoolSafePostgresEventLogStorage(
            postgres_url, should_autocreate_tables, token_provider=token_provider
        )

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any):  # noqa: ANN206
        return cls(inst_data=inst_data, **_settings(config_value))

    @property
    def event_storage_data(self) -> ConfigurableClassData | None:
        # Processes that rebuild the instance from its reference (run and step workers) get this class too.
        if self.inst_data is None:
            return None
        return ConfigurableClassData(__name__, PoolSafePostgresEventLogStorage.__name__, self.inst_data.config_yaml)
