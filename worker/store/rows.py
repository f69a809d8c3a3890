"""A batch's rows: one JSON record per data row, in a hash by its seq.

Every change of a row's state goes through one Lua function, `set_row`
(worker/store/lua/row_functions.lua), that also moves the batch's counters, so `status`
reads one hash, in O(1), and the counters always add up to the batch's total. The same
function notes when the batch last moved and keeps its rows in workers' hands in a sorted
set by since-when, so `status` tells a stalled batch in the same round trip.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from worker import keys
from worker.errors import StoreError
from worker.models import RowRecord
from worker.redis.connection import store_errors
from worker.redis.lua import LuaFile, RegisteredScript, lua_script
from worker.store.core import READ_PAGE, ScriptCall, StoreCore
from worker.store.encoding import now_iso
from worker.telemetry import counters

# The functions every script that changes a row includes before its own body.
ROW_FUNCTIONS = (LuaFile("worker.store", "final_states"), LuaFile("worker.store", "row_functions"))
_SET_ROW = lua_script(*ROW_FUNCTIONS, LuaFile("worker.store", "set_row"))


class Rows(StoreCore):
    """Reads rows, and saves their new states with the batch's counters."""

    _set_row = RegisteredScript(_SET_ROW)

    @store_errors
    def rows(self, batch_id: str, seqs: Sequence[int]) -> list[RowRecord | None]:
        if not seqs:
            return []
        raw = self.redis.hmget(keys.rows(batch_id), [str(seq) for seq in seqs])
        return [None if value is None else _decode_row(value) for value in raw]

    def row(self, batch_id: str, seq: int) -> RowRecord | None:
        return self.rows(batch_id, [seq])[0]

    def iter_rows(self, batch_id: str, total: int) -> Iterator[RowRecord]:
        """Every row in input order, read a page at a time."""
        for start in range(1, total + 1, READ_PAGE):
            for row in self.rows(batch_id, range(start, min(total, start + READ_PAGE - 1) + 1)):
                if row is not None:
                    yield row

    def save_row(self, batch_id: str, row: RowRecord, *, overwrite_final: bool = False) -> bool:
        """Store the row's new state and move the counters with it, atomically.

        Returns False when the row was already final (and `overwrite_final` is off): some
        other worker finished it, and its outcome stands.
        """
        (saved,) = self.save_rows(batch_id, [row], overwrite_final=overwrite_final)
        return saved

    @store_errors
    def save_rows(
        self, batch_id: str, rows: Sequence[RowRecord], *, overwrite_final: bool = False
    ) -> list[bool]:
        """`save_row` for many rows of the batch, in one round trip."""
        if not rows:
            return []
        row_keys = [
            keys.rows(batch_id),
            keys.batch(batch_id),
            keys.stats(batch_id),
            keys.OPEN_BATCHES,
            keys.working(batch_id),
        ]
        updated_at = now_iso()
        calls: list[ScriptCall] = []
        for row in rows:
            row.updated_at = updated_at
            args = [
                str(row.seq),
                json.dumps(row.to_json_dict()),
                str(row.status),
                "any" if overwrite_final else "live",
                self.retention_s,
                updated_at,
                batch_id,
            ]
            calls.append((row_keys, args))
        results = self._pipelined(self._set_row, calls)
        for row, result in zip(rows, results, strict=True):
            if result == -1:
                raise StoreError(f"row {row.seq} of batch {batch_id!r} is not in the store")
            if result == 1 and row.status.is_final and not overwrite_final:
                counters.count_row(row.status)  # "live": the row was not final before
        return [bool(result) for result in results]


def _decode_row(raw: bytes | str) -> RowRecord:
    return RowRecord.from_json_dict(json.loads(raw))
