"""Batches: each one's header (its counters and what it is for), the indexes of batches
written and of batches still open, and its progress and stats as `status` reads them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any, cast

from worker import keys
from worker.errors import UnknownBatchError
from worker.models import FINAL_STATES, Operation, RowRecord, RowsDigest
from worker.redis.connection import store_errors
from worker.redis.lua import LuaFile, RegisteredScript, lua_script
from worker.store.core import READ_PAGE, StoreCore
from worker.store.encoding import as_text, ms_from_iso, now_iso
from worker.store.records import BatchStats, BatchStatus, FailureGroup
from worker.telemetry import counters

# The rows seen while a batch is written are deleted when it is; this is for a producer
# killed mid-file.
FIRST_LINES_TTL_S = 3600
_FIRST_LINES = lua_script(LuaFile("worker.store", "first_lines"))


class Batches(StoreCore):
    """Writes batches and reads their progress."""

    _first_lines = RegisteredScript(_FIRST_LINES)

    @store_errors
    def batch_exists(self, batch_id: str) -> bool:
        return bool(self.redis.exists(keys.batch(batch_id)))

    @store_errors
    def create_batch(
        self,
        batch_id: str,
        source: str,
        rows: Iterable[RowRecord],
        *,
        operation: Operation = Operation.CREATE,
        undoes: str = "",
    ) -> int:
        """Write a new batch and all its rows; returns how many. Counters start from the
        rows' states; `operation` says what workers do with them (`undoes`: the batch an
        undo batch undoes).

        Written in pipelined pages; the batch hash goes last, so a batch whose writing was
        cut short has no header and is simply written again by the next `enqueue`.
        """
        counts = dict.fromkeys(operation.states, 0)
        total = 0
        digest = RowsDigest()
        pipe = self.redis.pipeline(transaction=False)
        rows_key = keys.rows(batch_id)
        page: dict[str, str] = {}
        for row in rows:
            counts[row.status] += 1
            total += 1
            digest.add(row)
            page[str(row.seq)] = json.dumps(row.to_json_dict())
            if len(page) >= READ_PAGE:
                pipe.hset(rows_key, mapping=cast(Any, page))
                pipe.execute()
                page = {}
        if page:
            pipe.hset(rows_key, mapping=cast(Any, page))
        pipe.expire(rows_key, self.retention_s)
        stamp = now_iso()
        header: dict[str, Any] = {
            "total": total,
            "source": source,
            "created_at": stamp,
            "operation": str(operation),
            "rows_digest": digest.hexdigest(),
        }
        if undoes:
            header["undoes"] = undoes
        header.update({str(state): count for state, count in counts.items()})
        header["updated_at"] = stamp
        pipe.hset(keys.batch(batch_id), mapping=cast(Any, header))  # redis-py's stub is too narrow
        pipe.expire(keys.batch(batch_id), self.retention_s)
        now_ms = int(time.time() * 1000)
        expired_ms = now_ms - self.retention_s * 1000
        pipe.zadd(keys.BATCHES, {batch_id: now_ms})
        pipe.zremrangebyscore(keys.BATCHES, "-inf", expired_ms)
        finals = sum(counts.get(state, 0) for state in FINAL_STATES)
        if finals < total:
            pipe.zadd(keys.OPEN_BATCHES, {batch_id: now_ms})
        # A batch left unfinished past the retention has expired with its rows.
        pipe.zremrangebyscore(keys.OPEN_BATCHES, "-inf", expired_ms)
        pipe.execute()
        for state in FINAL_STATES:  # invalid and duplicate rows are final from the start
            if counts.get(state, 0):
                counters.count_row(state, counts[state])
        return total

    @store_errors
    def delete_batch(self, batch_id: str) -> None:
        self.redis.delete(
            keys.rows(batch_id),
            keys.batch(batch_id),
            keys.stats(batch_id),
            keys.working(batch_id),
            keys.first_lines(batch_id),
        )
        self.redis.zrem(keys.BATCHES, batch_id)
        self.redis.zrem(keys.OPEN_BATCHES, batch_id)

    @store_errors
    def first_lines(self, batch_id: str, seen: Sequence[tuple[bytes, int]]) -> list[int]:
        """For each (row key, line) of a batch being written, the first line that had the
        key (its own if none did), remembering the new ones: one round trip for a page."""
        if not seen:
            return []
        args: list[bytes | int] = [FIRST_LINES_TTL_S]
        for row_key, line in seen:
            args += (row_key, line)
        return [
            int(first) for first in self._first_lines(keys=[keys.first_lines(batch_id)], args=args)
        ]

    @store_errors
    def forget_first_lines(self, batch_id: str) -> None:
        self.redis.delete(keys.first_lines(batch_id))

    @store_errors
    def batch_ids_since(self, since_ms: int) -> list[str]:
        """Ids of the batches created at or after `since_ms` (ms since the epoch), oldest
        first. Some may have expired since; `batch_status` says so."""
        found = cast(list[bytes], self.redis.zrangebyscore(keys.BATCHES, since_ms, "+inf"))
        return [as_text(batch_id) for batch_id in found]

    @store_errors
    def recent_batches(self, limit: int) -> list[BatchStatus]:
        """The `limit` most recently created batches that are still kept, newest first:
        one read of the index and one pipelined read of their headers."""
        return self._batches_in(keys.BATCHES, limit)

    @store_errors
    def open_batches(self, limit: int) -> list[BatchStatus]:
        """The `limit` batches most recently opened (written, or put back by a retry) of
        those with rows not final yet, newest first, as `recent_batches` reads them."""
        return self._batches_in(keys.OPEN_BATCHES, limit)

    def _batches_in(self, index: str, limit: int) -> list[BatchStatus]:
        found = cast(list[bytes], self.redis.zrevrange(index, 0, limit - 1))
        statuses = self._read_statuses([as_text(batch_id) for batch_id in found])
        return [status for status in statuses if status is not None]  # None: expired since

    @store_errors
    def batch_status(self, batch_id: str) -> BatchStatus:
        """Raises UnknownBatchError when the store holds no such batch."""
        (status,) = self._read_statuses([batch_id])
        if status is None:
            raise UnknownBatchError(f"unknown batch {batch_id!r}")
        return status

    def _read_statuses(self, batch_ids: Sequence[str]) -> list[BatchStatus | None]:
        """Each batch's header and its oldest row in workers' hands (O(log n) in its rows),
        with Redis' clock, in one round trip; None for a batch the store does not hold."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.time()
        for batch_id in batch_ids:
            pipe.hgetall(keys.batch(batch_id))
            pipe.zrange(keys.working(batch_id), 0, 0, withscores=True)
        (seconds, micros), *found = pipe.execute()
        read_ms = int(seconds) * 1000 + int(micros) // 1000
        return [
            _batch_status(
                batch_id,
                header,
                oldest_working_ms=int(oldest[0][1]) if oldest else None,
                read_ms=read_ms,
                stall_after_s=self.stall_after_s,
            )
            if header
            else None
            for batch_id, header, oldest in zip(batch_ids, found[::2], found[1::2], strict=True)
        ]

    @store_errors
    def batch_stats(self, batch_id: str) -> BatchStats:
        """How the batch's failed rows failed and when its rows finished (see `set_row`)."""
        fields = self.redis.hgetall(keys.stats(batch_id))
        failures: list[FailureGroup] = []
        finished: list[tuple[str, int]] = []
        for raw_field, raw_count in fields.items():
            # The script cuts a long message at 120 bytes, maybe inside a character.
            text = raw_field.decode(errors="replace") if isinstance(raw_field, bytes) else raw_field
            kind, _, rest = text.partition(" ")
            count = int(raw_count)
            if kind == "fail" and count > 0:
                http_status, _, code = rest.partition(" ")
                failures.append(FailureGroup(http_status, code, count))
            elif kind == "done":
                finished.append((rest + "0Z", count))  # the 10 s start, e.g. ...T09:21:30Z
        failures.sort(key=lambda group: (-group.rows, group.http_status, group.code))
        return BatchStats(failures=failures, finished_per_10s=sorted(finished))

    @store_errors
    def batch_operation(self, batch_id: str) -> Operation:
        """What the batch's rows are for; a batch written before operations existed creates."""
        value = self.redis.hget(keys.batch(batch_id), "operation")
        return Operation(as_text(value)) if value else Operation.CREATE

    @store_errors
    def mark_undone(self, batch_id: str, undo_batch_id: str) -> str:
        """Note `undo_batch_id` as the batch's undo, unless one is noted already; returns the
        one that stands (two `meetreg disable` at once agree on one undo batch)."""
        key = keys.batch(batch_id)
        if self.redis.hsetnx(key, "undone_by", undo_batch_id):
            return undo_batch_id
        return as_text(cast(bytes, self.redis.hget(key, "undone_by")))


def _batch_status(
    batch_id: str,
    header: dict[Any, Any],
    *,
    oldest_working_ms: int | None,
    read_ms: int,
    stall_after_s: float,
) -> BatchStatus:
    text = {as_text(k): as_text(v) for k, v in header.items()}
    operation = Operation(text.get("operation", Operation.CREATE))
    # No row has changed state since the batch was written (or since before rows kept
    # `moved_ms`): its last write is its last move.
    moved_ms = int(text.get("moved_ms") or 0) or ms_from_iso(text.get("updated_at", ""))
    return BatchStatus(
        batch_id=batch_id,
        total=int(text.get("total", 0)),
        counts={str(state): int(text.get(str(state), 0)) for state in operation.states},
        source=text.get("source", ""),
        created_at=text.get("created_at", ""),
        updated_at=text.get("updated_at", ""),
        paused=text.get("paused", ""),
        cancelled=text.get("cancelled") == "1",
        operation=operation,
        undoes=text.get("undoes", ""),
        undone_by=text.get("undone_by", ""),
        moved_ms=moved_ms,
        oldest_working_ms=oldest_working_ms,
        read_ms=read_ms,
        stall_after_s=stall_after_s,
        rows_digest=text.get("rows_digest", ""),
    )
