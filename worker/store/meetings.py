"""Meetings: each one's idempotency record, and the register protocol's three steps on a
row and its meeting, each one round trip (one Lua script): claim, record the POST, finish.

A meeting's record is kept long after its batch (`MEETREG_IDEMPOTENCY_RETENTION_DAYS`).
It says whether a POST may ever have been sent and whether the meeting is done; the
register protocol reads it before any POST.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from worker import keys
from worker.errors import StoreError
from worker.models import Operation, RowRecord, RowState
from worker.ratelimit.limiter import RESERVE_SLOT
from worker.redis.connection import store_errors
from worker.redis.lua import LuaFile, RegisteredScript, lua_script
from worker.store.core import ScriptCall, StoreCore
from worker.store.encoding import as_text, now_iso
from worker.store.records import (
    Claim,
    Ending,
    MeetingRecord,
    PostRecord,
    Slot,
    SlotRequest,
    row_ref,
)
from worker.store.rows import ROW_FUNCTIONS
from worker.telemetry import counters

# claim and record_post hand the limiter's `reserve_slot` the tail of their keys and
# arguments (`from`).
_FROM = LuaFile("worker.store", "from")
_CLAIM = lua_script(*ROW_FUNCTIONS, *RESERVE_SLOT, _FROM, LuaFile("worker.store", "claim"))
_RECORD_POST = lua_script(
    *ROW_FUNCTIONS, *RESERVE_SLOT, _FROM, LuaFile("worker.store", "record_post")
)
_FINISH = lua_script(*ROW_FUNCTIONS, LuaFile("worker.store", "finish"))


class Meetings(StoreCore):
    """Meetings' records, and the steps that start, count and end a row's work on one."""

    _claim = RegisteredScript(_CLAIM)
    _record_post = RegisteredScript(_RECORD_POST)
    _finish = RegisteredScript(_FINISH)

    @store_errors
    def meeting(self, meeting_id: str) -> MeetingRecord:
        return _meeting_record(self.redis.hgetall(keys.meeting(meeting_id)).items())

    @store_errors
    def claim(
        self,
        batch_id: str,
        row: RowRecord,
        meeting_id: str,
        token: str,
        lease_ms: int,
        *,
        slot: SlotRequest | None = None,
        get_first: bool = True,
        done_states: Sequence[str] = Operation.CREATE.done_states,
        done_id: str = "",
    ) -> tuple[Claim, MeetingRecord, Slot | None]:
        """Start work on a row's meeting in one round trip (see worker/store/lua/claim.lua).

        CLAIMED: the lease is ours and the row is `running`. BUSY: another row holds the
        meeting. DONE: the meeting's record is in one of `done_states` (with `done_id`, for
        that registration id only): nothing to do, no lease taken. ROW_FINAL: the row
        was finished elsewhere. With `slot`, the rate slot of the GET that comes next, if
        one comes, is reserved in the same trip and returned.
        """
        call = self._claim_call(
            batch_id, row, meeting_id, token, lease_ms, slot, get_first, done_states, done_id
        )
        return _claimed(self._claim(*call))

    @store_errors
    def claim_many(
        self,
        batch_id: str,
        claims: Sequence[tuple[RowRecord, str, str]],
        lease_ms: int,
        *,
        slot: SlotRequest | None = None,
        get_first: bool = True,
        done_states: Sequence[str] = Operation.CREATE.done_states,
    ) -> list[tuple[Claim, MeetingRecord, Slot | None]]:
        """`claim` for many (row, meeting id, token) of a batch that makes its resources
        (not an undo), in one round trip; `done_states` are its operation's."""
        calls = [
            self._claim_call(
                batch_id, row, meeting_id, token, lease_ms, slot, get_first, done_states, ""
            )
            for row, meeting_id, token in claims
        ]
        return [_claimed(raw) for raw in self._pipelined(self._claim, calls)]

    def _claim_call(
        self,
        batch_id: str,
        row: RowRecord,
        meeting_id: str,
        token: str,
        lease_ms: int,
        slot: SlotRequest | None,
        get_first: bool,
        done_states: Sequence[str],
        done_id: str,
    ) -> ScriptCall:
        extra_keys, extra_args = slot if slot is not None else ([], [])
        return (
            [
                *self._row_keys(batch_id, meeting_id),
                keys.OPEN_BATCHES,
                keys.working(batch_id),
                *extra_keys,
            ],
            [
                *self._running(row),
                token,
                lease_ms,
                "1" if get_first else "0",
                " ".join(done_states),
                done_id,
                batch_id,
                *extra_args,
            ],
        )

    @store_errors
    def record_post(
        self,
        batch_id: str,
        row: RowRecord,
        meeting_id: str,
        token: str,
        *,
        slot: SlotRequest | None = None,
    ) -> tuple[PostRecord, Slot | None]:
        """Count the POST about to leave, with the row's attempt. Nothing may be sent unless
        this returned GO. With `slot`, the POST's rate slot is reserved in the same trip and
        returned."""
        return _post_recorded(
            self._record_post(*self._record_post_call(batch_id, row, meeting_id, token, slot))
        )

    @store_errors
    def record_post_many(
        self,
        batch_id: str,
        posts: Sequence[tuple[RowRecord, str, str]],
        *,
        slot: SlotRequest | None = None,
    ) -> list[tuple[PostRecord, Slot | None]]:
        """`record_post` for many (row, meeting id, token), in one round trip."""
        calls = [
            self._record_post_call(batch_id, row, meeting_id, token, slot)
            for row, meeting_id, token in posts
        ]
        return [_post_recorded(raw) for raw in self._pipelined(self._record_post, calls)]

    def _record_post_call(
        self,
        batch_id: str,
        row: RowRecord,
        meeting_id: str,
        token: str,
        slot: SlotRequest | None,
    ) -> ScriptCall:
        extra_keys, extra_args = slot if slot is not None else ([], [])
        return (
            [*self._row_keys(batch_id, meeting_id), keys.working(batch_id), *extra_keys],
            [
                *self._running(row),
                token,
                row_ref(batch_id, row.seq),
                self.idempotency_retention_s,
                *extra_args,
            ],
        )

    @store_errors
    def finish(self, batch_id: str, ending: Ending) -> tuple[bool, bool]:
        """Store the row's final state; with `meeting_state`, the meeting's outcome too; with
        `token`, give the lease back. All at once (see worker/store/lua/finish.lua).

        Returns (saved: False when the row was final already, paused: this row's failure
        paused the batch)."""
        return self._finished(batch_id, ending, self._finish(*self._finish_call(batch_id, ending)))

    @store_errors
    def finish_many(self, batch_id: str, endings: Sequence[Ending]) -> list[tuple[bool, bool]]:
        """`finish` for many rows of the batch, in one round trip."""
        calls = [self._finish_call(batch_id, ending) for ending in endings]
        raws = self._pipelined(self._finish, calls)
        return [self._finished(batch_id, e, raw) for e, raw in zip(endings, raws, strict=True)]

    def _finish_call(self, batch_id: str, ending: Ending) -> ScriptCall:
        row = ending.row
        row.updated_at = now_iso()
        return (
            [
                *self._row_keys(batch_id, ending.meeting_id or "-"),
                keys.valve(batch_id),
                keys.OPEN_BATCHES,
                keys.working(batch_id),
            ],
            [
                row.seq,
                json.dumps(row.to_json_dict()),
                str(row.status),
                self.retention_s,
                row.updated_at,
                ending.token,
                str(ending.meeting_state) if ending.meeting_state else "",
                ending.registration_id,
                row_ref(batch_id, row.seq),
                ending.kind,
                self.idempotency_retention_s,
                ending.signature,
                ending.user_id,
                self.pause_after,
                self.pause_min_users,
                row.error,
                batch_id,
            ],
        )

    @staticmethod
    def _finished(batch_id: str, ending: Ending, raw: Any) -> tuple[bool, bool]:
        saved, paused = raw
        if saved == -1:
            raise StoreError(f"row {ending.row.seq} of batch {batch_id!r} is not in the store")
        if saved == 1:
            counters.count_row(ending.row.status)
        return saved == 1, paused == 1

    def _running(self, row: RowRecord) -> list[Any]:
        """The row, now `running`, as the scripts' first four arguments."""
        row.status = RowState.RUNNING
        row.updated_at = now_iso()
        return [row.seq, json.dumps(row.to_json_dict()), self.retention_s, row.updated_at]

    @staticmethod
    def _row_keys(batch_id: str, meeting_id: str) -> list[str]:
        return [
            keys.rows(batch_id),
            keys.batch(batch_id),
            keys.meeting(meeting_id),
            keys.lease(meeting_id),
            keys.stats(batch_id),
        ]


def _claimed(raw: Sequence[Any]) -> tuple[Claim, MeetingRecord, Slot | None]:
    code, flat, wait_ms, reserved, slot_id, *ended = raw
    if ended == [1]:  # the batch was cancelled: the row ended `failed` in this call
        counters.count_row(RowState.FAILED)
    return Claim(int(code)), _meeting_record(_pairs(flat)), _slot(wait_ms, reserved, slot_id)


def _post_recorded(raw: Sequence[Any]) -> tuple[PostRecord, Slot | None]:
    code, wait_ms, reserved, slot_id = raw
    return PostRecord(int(code)), _slot(wait_ms, reserved, slot_id)


def _slot(wait_ms: bytes | str | int, reserved: int, slot_id: bytes | str) -> Slot | None:
    return None if int(reserved) < 0 else (float(wait_ms), bool(int(reserved)), as_text(slot_id))


def _pairs(flat: Sequence[bytes | str]) -> Iterator[tuple[bytes | str, bytes | str]]:
    return zip(flat[::2], flat[1::2], strict=True)


def _meeting_record(pairs: Iterable[tuple[bytes | str, bytes | str]]) -> MeetingRecord:
    text = {as_text(k): as_text(v) for k, v in pairs}
    return MeetingRecord(
        state=text.pop("state", ""),
        posts=int(text.pop("posts", 0)),
        posted_by=text.pop("posted_by", ""),
        registration_id=text.pop("registration_id", ""),
        done_by=text.pop("done_by", ""),
        extra=text,
    )
