"""The outcome store: every row's outcome, every batch's counters, every meeting's record.

Redis is the truth (no Celery result backend). Three kinds of data, keys in `worker.keys`:

- rows: one JSON record per data row. Every change of a row's state goes through one Lua
  script that also moves the batch's counters, so `status` reads one hash, in O(1), and the
  counters always add up to the batch's total.
- meetings: the idempotency record of a meeting, kept long after its batch
  (`MEETREG_IDEMPOTENCY_RETENTION_DAYS`). It says whether a POST may ever have been sent
  and whether the meeting is done; the register protocol reads it before any POST.
- leases: which worker may talk to Graph about a meeting right now, fenced by a token.

Redis failures surface as StoreError; nothing above this module imports redis exceptions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import redis
from redis.commands.core import Script

from worker import keys
from worker.errors import StoreError, UnknownBatchError
from worker.models import FINAL_STATES, RowRecord, RowState
from worker.redis_conn import store_errors

DAY_S = 86_400
READ_PAGE = 1_000

# KEYS: rows, batch. ARGV: seq, new JSON, new state, guard, ttl_s.
# guard "live": refuse to touch a row that is already final (a stale worker must not
# undo an outcome); "any": overwrite whatever is there (retry of failed rows).
_SET_ROW = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return -1 end
local old_state = cjson.decode(old)['status']
local final = {created=1, already_enabled=1, skipped=1, failed=1, invalid=1}
if ARGV[4] == 'live' and final[old_state] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if old_state ~= ARGV[3] then
  redis.call('HINCRBY', KEYS[2], old_state, -1)
  redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
end
redis.call('HSET', KEYS[2], 'updated_at', ARGV[6])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return 1
"""

# KEYS: lease, meeting. ARGV: token, batch, seq, now, ttl_s.
# Counts a POST as sent *before* it is sent, and only while this worker holds the lease:
# a worker that lost its lease (paused too long) must not send.
_MARK_POSTING = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HINCRBY', KEYS[2], 'posts', 1)
redis.call('HSET', KEYS[2], 'state', 'posting', 'posted_by', ARGV[2] .. ':' .. ARGV[3],
           'updated_at', ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return 1
"""

# KEYS: lease. ARGV: token, ttl_ms. Take the lease, or renew it if we already hold it.
_ACQUIRE_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# KEYS: lease... ARGV: ttl_ms, then one token per key. Renew only leases still ours.
_RENEW_LEASES = """
local renewed = 0
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
    renewed = renewed + 1
  end
end
return renewed
"""

_RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: inflight. ARGV: now_ms, limit, next_deadline_ms. Claim the chunks whose holder
# stopped renewing them by pushing their deadline out, atomically, so only one sweeper
# re-sends each; if that sweeper dies before sending, the chunk expires again.
_CLAIM_EXPIRED = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, chunk in ipairs(expired) do redis.call('ZADD', KEYS[1], ARGV[3], chunk) end
return expired
"""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class BatchStatus:
    """One batch's progress, as `meetreg status` shows it."""

    batch_id: str
    total: int
    counts: dict[str, int]
    source: str = ""
    created_at: str = ""
    updated_at: str = ""

    @property
    def done(self) -> int:
        return sum(self.counts[state] for state in FINAL_STATES)

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "total": self.total,
            "counts": self.counts,
            "finished": self.finished,
            "done": self.done,
            "source": self.source,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(slots=True)
class MeetingRecord:
    """What meetreg knows about one meeting, across every batch that named it.

    `posts` counts POSTs that may have reached Graph; more than zero means a registration
    may exist even if no answer said so, so the next worker must GET before any POST.
    """

    state: str = ""  # "", "posting", "created", "already_enabled", "failed"
    posts: int = 0
    posted_by: str = ""  # "batch:seq" of the row that last sent a POST
    registration_id: str = ""
    done_by: str = ""  # "batch:seq" of the row that finished it
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.state in (RowState.CREATED, RowState.ALREADY_ENABLED)


def row_ref(batch_id: str, seq: int) -> str:
    return f"{batch_id}:{seq}"


class OutcomeStore:
    """Reads and writes outcomes. Thread-safe: redis-py clients pool their connections."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        retention_days: float = 30.0,
        idempotency_retention_days: float = 365.0,
    ) -> None:
        self.redis = client
        self.retention_s = max(1, int(retention_days * DAY_S))
        self.idempotency_retention_s = max(1, int(idempotency_retention_days * DAY_S))
        self._set_row: Script = client.register_script(_SET_ROW)
        self._mark_posting: Script = client.register_script(_MARK_POSTING)
        self._acquire_lease: Script = client.register_script(_ACQUIRE_LEASE)
        self._renew_leases: Script = client.register_script(_RENEW_LEASES)
        self._release_lease: Script = client.register_script(_RELEASE_LEASE)
        self._claim_expired: Script = client.register_script(_CLAIM_EXPIRED)

    # Batches -------------------------------------------------------------------------------

    @store_errors
    def batch_exists(self, batch_id: str) -> bool:
        return bool(self.redis.exists(keys.batch(batch_id)))

    @store_errors
    def create_batch(self, batch_id: str, source: str, rows: Iterable[RowRecord]) -> int:
        """Write a new batch and all its rows; returns how many. Counters start from the
        rows' states.

        Written in pipelined pages; the batch hash goes last, so a batch whose writing was
        cut short has no header and is simply written again by the next `enqueue`.
        """
        counts = dict.fromkeys(RowState, 0)
        total = 0
        pipe = self.redis.pipeline(transaction=False)
        rows_key = keys.rows(batch_id)
        pending = 0
        for row in rows:
            counts[row.status] += 1
            total += 1
            pipe.hset(rows_key, str(row.seq), json.dumps(row.to_json_dict()))
            pending += 1
            if pending >= READ_PAGE:
                pipe.execute()
                pending = 0
        pipe.expire(rows_key, self.retention_s)
        stamp = now_iso()
        header: dict[str, Any] = {"total": total, "source": source, "created_at": stamp}
        header.update({str(state): count for state, count in counts.items()})
        header["updated_at"] = stamp
        pipe.hset(keys.batch(batch_id), mapping=cast(Any, header))  # redis-py's stub is too narrow
        pipe.expire(keys.batch(batch_id), self.retention_s)
        now_s = time.time()
        pipe.zadd(keys.BATCHES, {batch_id: int(now_s * 1000)})
        pipe.zremrangebyscore(keys.BATCHES, "-inf", int((now_s - self.retention_s) * 1000))
        pipe.execute()
        return total

    @store_errors
    def delete_batch(self, batch_id: str) -> None:
        self.redis.delete(keys.rows(batch_id), keys.batch(batch_id))
        self.redis.zrem(keys.BATCHES, batch_id)

    @store_errors
    def batch_status(self, batch_id: str) -> BatchStatus:
        """Raises UnknownBatchError when the store holds no such batch."""
        header = self.redis.hgetall(keys.batch(batch_id))
        if not header:
            raise UnknownBatchError(f"unknown batch {batch_id!r}")
        text = {_text(k): _text(v) for k, v in header.items()}
        counts = {str(state): int(text.get(str(state), 0)) for state in RowState}
        return BatchStatus(
            batch_id=batch_id,
            total=int(text.get("total", 0)),
            counts=counts,
            source=text.get("source", ""),
            created_at=text.get("created_at", ""),
            updated_at=text.get("updated_at", ""),
        )

    # Rows ----------------------------------------------------------------------------------

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

    @store_errors
    def save_row(self, batch_id: str, row: RowRecord, *, overwrite_final: bool = False) -> bool:
        """Store the row's new state and move the counters with it, atomically.

        Returns False when the row was already final (and `overwrite_final` is off): some
        other worker finished it, and its outcome stands.
        """
        row.updated_at = now_iso()
        result = self._set_row(
            keys=[keys.rows(batch_id), keys.batch(batch_id)],
            args=[
                str(row.seq),
                json.dumps(row.to_json_dict()),
                str(row.status),
                "any" if overwrite_final else "live",
                self.retention_s,
                row.updated_at,
            ],
        )
        if result == -1:
            raise StoreError(f"row {row.seq} of batch {batch_id!r} is not in the store")
        return bool(result)

    # Meetings ------------------------------------------------------------------------------

    @store_errors
    def meeting(self, meeting_id: str) -> MeetingRecord:
        raw = self.redis.hgetall(keys.meeting(meeting_id))
        text = {_text(k): _text(v) for k, v in raw.items()}
        return MeetingRecord(
            state=text.pop("state", ""),
            posts=int(text.pop("posts", 0)),
            posted_by=text.pop("posted_by", ""),
            registration_id=text.pop("registration_id", ""),
            done_by=text.pop("done_by", ""),
            extra=text,
        )

    @store_errors
    def mark_posting(self, meeting_id: str, lease_token: str, batch_id: str, seq: int) -> bool:
        """Record that a POST is about to be sent. False: the lease was lost, do not send."""
        return bool(
            self._mark_posting(
                keys=[keys.lease(meeting_id), keys.meeting(meeting_id)],
                args=[lease_token, batch_id, seq, now_iso(), self.idempotency_retention_s],
            )
        )

    @store_errors
    def mark_meeting(
        self,
        meeting_id: str,
        state: RowState,
        *,
        registration_id: str = "",
        batch_id: str,
        seq: int,
        kind: str = "",
    ) -> None:
        """Record how the meeting ended for this row (created, already_enabled, failed)."""
        key = keys.meeting(meeting_id)
        mapping = {
            "state": str(state),
            "registration_id": registration_id,
            "done_by": row_ref(batch_id, seq),
            "kind": kind,
            "updated_at": now_iso(),
        }
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping=cast(Any, mapping))
        pipe.expire(key, self.idempotency_retention_s)
        pipe.execute()

    # Leases --------------------------------------------------------------------------------

    @store_errors
    def acquire_lease(self, meeting_id: str, token: str, ttl_ms: int) -> bool:
        return bool(self._acquire_lease(keys=[keys.lease(meeting_id)], args=[token, ttl_ms]))

    @store_errors
    def renew_leases(self, tokens_by_meeting: dict[str, str], ttl_ms: int) -> int:
        """Renew the leases whose token is still ours; returns how many were."""
        if not tokens_by_meeting:
            return 0
        lease_keys = [keys.lease(m) for m in tokens_by_meeting]
        return int(self._renew_leases(keys=lease_keys, args=[ttl_ms, *tokens_by_meeting.values()]))

    @store_errors
    def release_lease(self, meeting_id: str, token: str) -> None:
        self._release_lease(keys=[keys.lease(meeting_id)], args=[token])

    # Chunks held by workers ----------------------------------------------------------------

    @store_errors
    def hold_chunks(self, chunks: Iterable[str], ttl_ms: int) -> None:
        """Claim (or renew the claim on) chunks this worker is processing."""
        deadline = _redis_now_ms(self.redis) + ttl_ms
        mapping = dict.fromkeys(chunks, deadline)
        if mapping:
            self.redis.zadd(keys.INFLIGHT, mapping)

    @store_errors
    def drop_chunk(self, chunk: str) -> None:
        self.redis.zrem(keys.INFLIGHT, chunk)

    @store_errors
    def claim_expired_chunks(self, ttl_ms: int, limit: int = 500) -> list[str]:
        """Chunks whose worker stopped renewing them, each returned to one caller only."""
        now_ms = _redis_now_ms(self.redis)
        found = self._claim_expired(keys=[keys.INFLIGHT], args=[now_ms, limit, now_ms + ttl_ms])
        return [item.decode() if isinstance(item, bytes) else str(item) for item in found]

    # Small caches --------------------------------------------------------------------------

    @store_errors
    def cached_user_id(self, upn: str) -> str | None:
        value = self.redis.get(keys.upn(upn))
        return _text(value) if value is not None else None

    @store_errors
    def cache_user_id(self, upn: str, object_id: str) -> None:
        self.redis.set(keys.upn(upn), object_id, ex=DAY_S)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode_row(raw: bytes | str) -> RowRecord:
    return RowRecord.from_json_dict(json.loads(raw))


def _redis_now_ms(client: redis.Redis) -> int:
    """Redis' clock, not ours: deadlines set on one machine are read on another."""
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000
