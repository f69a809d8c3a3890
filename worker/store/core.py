"""What every part of the outcome store shares: the Redis client, how long things are
kept, the safety valve's settings, and running one script many times in one round trip.

The parts (batches, rows, meetings, pausing, leases, chunks, workers, caches) each add
their methods to `StoreCore`; `worker.store.outcome_store.OutcomeStore` is all of them.
Redis failures surface as StoreError (`store_errors`); nothing above the store imports
redis exceptions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.commands.core import Script

from worker.settings import DEFAULT_RECOVERY_S

DAY_S = 86_400
# The safety valve (see worker/store/lua/finish.lua): this many rows in a row failing the
# same way, for at least this many organizers, pause the batch. One organizer's missing
# access policy is that organizer's rows failing; three organizers' is the app's.
DEFAULT_PAUSE_AFTER = 20
DEFAULT_PAUSE_MIN_USERS = 3
READ_PAGE = 1_000

ScriptCall = tuple[list[str], list[Any]]
"""A Lua script's keys and arguments, for one call."""


class StoreCore:
    """The client and settings the store's parts share. Thread-safe: redis-py clients pool
    their connections."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        retention_days: float = 30.0,
        idempotency_retention_days: float = 365.0,
        pause_after: int = DEFAULT_PAUSE_AFTER,
        pause_min_users: int = DEFAULT_PAUSE_MIN_USERS,
        stall_after_s: float = DEFAULT_RECOVERY_S,
    ) -> None:
        self.redis = client
        # A batch whose rows in workers' hands have not moved for this long is stalled.
        self.stall_after_s = stall_after_s
        self.pause_after = pause_after  # 0: the safety valve is off
        self.pause_min_users = pause_min_users
        self.retention_s = max(1, int(retention_days * DAY_S))
        self.idempotency_retention_s = max(1, int(idempotency_retention_days * DAY_S))

    def _pipelined(self, script: Script, calls: Sequence[ScriptCall]) -> list[Any]:
        """Run `script` once per (keys, args) in one round trip, loading it first if Redis
        lost it (a restart): redis-py's own pipelined scripts ask Redis every time."""
        for attempt in range(2):
            pipe = self.redis.pipeline(transaction=False)
            for call_keys, call_args in calls:
                pipe.evalsha(script.sha, len(call_keys), *call_keys, *call_args)
            try:
                return pipe.execute()
            except redis.exceptions.NoScriptError:
                # NOSCRIPT: none of the calls ran, so running them all again is safe.
                if attempt:
                    raise
                self.redis.script_load(script.script)
        raise AssertionError("unreachable")
