"""The outcome store: every row's outcome, every batch's counters, every meeting's record.

Redis is the truth (no Celery result backend). Three kinds of data, keys in `worker.keys`:

- rows: one JSON record per data row. Every change of a row's state goes through one Lua
  script that also moves the batch's counters, so `status` reads one hash, in O(1), and the
  counters always add up to the batch's total. The same script notes when the batch last
  moved and keeps its rows in workers' hands in a sorted set by since-when, so `status`
  tells a stalled batch in the same round trip (the oldest such row: O(log n)).
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
from enum import IntEnum
from typing import TYPE_CHECKING, Any, cast

import redis
from redis.commands.core import Script

from worker import keys
from worker.errors import InputError, StoreError, UnknownBatchError
from worker.models import FINAL_STATES, Operation, RowRecord, RowsDigest, RowState
from worker.ratelimit.limiter import RESERVE_SLOT
from worker.redis.lua import lua_script
from worker.redis.connection import connect, redis_now_ms, store_errors
from worker.settings import DEFAULT_RECOVERY_S
from worker.telemetry import metrics

if TYPE_CHECKING:
    from worker.settings import Settings

DAY_S = 86_400
# The safety valve (see _FINISH): this many rows in a row failing the same way, for at
# least this many organizers, pause the batch. One organizer's missing access policy is
# that organizer's rows failing; three organizers' is the app's.
DEFAULT_PAUSE_AFTER = 20
DEFAULT_PAUSE_MIN_USERS = 3
CANCELLED_REASON = "cancelled by the operator"
READ_PAGE = 1_000
# The rows seen while a batch is written are deleted when it is; this is for a producer
# killed mid-file.
FIRST_LINES_TTL_S = 3600

# KEYS: the batch's first lines. ARGV: ttl_s, then (row key, line) pairs. One script, not a
# pipeline of HSETNX and HGET: packing two commands per row halved `enqueue`'s pace.
_FIRST_LINES = """
local out = {}
for i = 2, #ARGV, 2 do
  local first = redis.call('HGET', KEYS[1], ARGV[i])
  if not first then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    first = ARGV[i + 1]
  end
  out[#out + 1] = tonumber(first)
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return out
"""

# Shared by the scripts that change a row: store its JSON and move the batch's counters
# with it. `live`: refuse to touch a row that is already final (a stale worker must not
# undo an outcome). Returns -1 no such row, 0 final already, 1 saved.
_ROW_FUNCTIONS = (
    """
local function from(t, first)
  local rest = {}
  for i = first, #t do rest[#rest + 1] = t[i] end
  return rest
end
"""
    # The final states as models.py has them: one list for Python and the scripts.
    + f"local FINAL_NAMES = {{{', '.join(repr(str(s)) for s in RowState if s.is_final)}}}"
    + """
local FINAL = {}
for _, name in ipairs(FINAL_NAMES) do FINAL[name] = 1 end
-- A failed row's field in the batch's stats: 'fail <http status|-> <Graph code>', the
-- code being what GraphError.describe() put before ': ' (else the message itself).
local function failure_field(row)
  local status = row['http_status']
  if type(status) ~= 'number' then status = '-' end
  local text = row['error'] or ''
  local code = string.match(text, '^(%a[%w_.]*): ') or string.sub(text, 1, 120)
  return 'fail ' .. status .. ' ' .. code
end
-- `open` = {the open batches' key, the batch id}: a batch leaves it when its last row
-- becomes final, and comes back when a final row is put back (`meetreg retry`).
local function track_open(open, batch_key, old_state, state)
  if FINAL[state] and not FINAL[old_state] then
    local n = redis.call('HMGET', batch_key, 'total', unpack(FINAL_NAMES))
    local done = 0
    for i = 2, #n do done = done + tonumber(n[i] or '0') end
    if done >= tonumber(n[1] or '0') then redis.call('ZREM', open[1], open[2]) end
  elseif FINAL[old_state] and not FINAL[state] then
    local t = redis.call('TIME')
    redis.call('ZADD', open[1], t[1] * 1000 + math.floor(t[2] / 1000), open[2])
  end
end
-- `working` = the batch's rows running or retrying, scored by when they became so; a row
-- leaves it with its state, so a finished row keeps no key. Returns now (ms), for the
-- batch's `moved_ms`: Redis' clock, which every reader compares both with.
local function track_working(working, seq, old_state, state, ttl_s)
  local t = redis.call('TIME')
  local now_ms = t[1] * 1000 + math.floor(t[2] / 1000)
  if state == 'running' or state == 'retrying' then
    redis.call('ZADD', working, now_ms, seq)
    redis.call('EXPIRE', working, ttl_s)
  elseif old_state == 'running' or old_state == 'retrying' then
    redis.call('ZREM', working, seq)
  end
  return now_ms
end
local function set_row(rows_key, batch_key, stats_key, working, seq, json, state, live, ttl_s,
                       stamp, open)
  local old = redis.call('HGET', rows_key, seq)
  if not old then return -1 end
  local old_row = cjson.decode(old)
  local old_state = old_row['status']
  if live and FINAL[old_state] then return 0 end
  redis.call('HSET', rows_key, seq, json)
  local moved_ms = nil
  if old_state ~= state then
    redis.call('HINCRBY', batch_key, old_state, -1)
    redis.call('HINCRBY', batch_key, state, 1)
    if open then track_open(open, batch_key, old_state, state) end
    moved_ms = track_working(working, seq, old_state, state, ttl_s)
  end
  -- The batch's stats move with its rows (O(1) per row): failed rows by how they failed,
  -- and rows finished per 10 s (the stamp cut after the tens of seconds).
  local stats = false
  if old_state == 'failed' then
    local field = failure_field(old_row)
    if redis.call('HINCRBY', stats_key, field, -1) <= 0 then
      redis.call('HDEL', stats_key, field)
    end
    stats = true
  end
  if state == 'failed' then
    redis.call('HINCRBY', stats_key, failure_field(cjson.decode(json)), 1)
    stats = true
  end
  if FINAL[state] and not FINAL[old_state] then
    redis.call('HINCRBY', stats_key, 'done ' .. string.sub(stamp, 1, 18), 1)
    stats = true
  end
  if stats then redis.call('EXPIRE', stats_key, ttl_s) end
  if moved_ms then
    redis.call('HSET', batch_key, 'updated_at', stamp, 'moved_ms', moved_ms)
  else
    redis.call('HSET', batch_key, 'updated_at', stamp)
  end
  redis.call('EXPIRE', rows_key, ttl_s)
  redis.call('EXPIRE', batch_key, ttl_s)
  return 1
end
local function field(flat, name)
  for i = 1, #flat, 2 do if flat[i] == name then return flat[i + 1] end end
  return nil
end
"""
)

# KEYS: rows, batch, stats, open batches, working. ARGV: seq, JSON, state, "live"|"any",
# ttl_s, stamp, batch id.
_SET_ROW = (
    _ROW_FUNCTIONS
    + """
return set_row(KEYS[1], KEYS[2], KEYS[3], KEYS[5], ARGV[1], ARGV[2], ARGV[3], ARGV[4] == 'live',
               ARGV[5], ARGV[6], {KEYS[4], ARGV[7]})
"""
)

# KEYS: rows, batch, meeting, lease, stats, open batches, working, [the limiter's slot keys].
# ARGV:
# seq, JSON (running), ttl_s, stamp, token, lease_ms, get_first ('1' always GET first),
# done states (' '-separated: the operation's), done id ('' any; else the meeting is done
# only if its record holds this registration id), batch id, [its slot arguments].
# One round trip to start work on a row: read the meeting's record; if it is done, say so;
# else take its lease (or find it held) and mark the row running; with the rate keys,
# also reserve the slot for the GET that comes next (a GET comes when `get_first` says
# so, or when a POST may ever have been sent).
# Returns {code, meeting fields, wait_ms, reserved, slot id[, 1 when the row ended now]}:
# code 2 meeting done, 1 claimed, 0 lease held by another, -1 the row is final already (or
# ended now: batch cancelled), -2 the batch is paused. reserved -1: no slot taken.
_CLAIM = (
    _ROW_FUNCTIONS
    + lua_script(*RESERVE_SLOT)
    + """
local paused = redis.call('HGET', KEYS[2], 'paused')
if paused then
  -- A paused batch sends nothing more; a cancelled one ends its rows as they come.
  if redis.call('HGET', KEYS[2], 'cancelled') ~= '1' then return {-2, {}, '0', -1, ''} end
  local row = cjson.decode(ARGV[2])
  row['status'] = 'failed'
  row['error'] = paused
  local ended = set_row(KEYS[1], KEYS[2], KEYS[5], KEYS[7], ARGV[1], cjson.encode(row), 'failed',
                        true, ARGV[3], ARGV[4], {KEYS[6], ARGV[10]})
  return {-1, {}, '0', -1, '', ended}
end
local meeting = redis.call('HGETALL', KEYS[3])
local state = field(meeting, 'state')
if state and string.find(' ' .. ARGV[8] .. ' ', ' ' .. state .. ' ', 1, true)
   and (ARGV[9] == '' or field(meeting, 'registration_id') == ARGV[9]) then
  return {2, meeting, '0', -1, ''}
end
local holder = redis.call('GET', KEYS[4])
if holder and holder ~= ARGV[5] then return {0, meeting, '0', -1, ''} end
if set_row(KEYS[1], KEYS[2], KEYS[5], KEYS[7], ARGV[1], ARGV[2], 'running', true, ARGV[3],
           ARGV[4]) ~= 1 then
  return {-1, meeting, '0', -1, ''}
end
redis.call('SET', KEYS[4], ARGV[5], 'PX', ARGV[6])
local posts = tonumber(field(meeting, 'posts') or '0')
if KEYS[8] and (ARGV[7] == '1' or posts > 0) then
  local slot = reserve_slot(from(KEYS, 8), from(ARGV, 11))
  return {1, meeting, slot[1], slot[2], slot[3]}
end
return {1, meeting, '0', -1, ''}
"""
)

# KEYS: rows, batch, meeting, lease, stats, working, [the limiter's slot keys]. ARGV: seq, JSON,
# ttl_s, stamp, token, row ref, idem_ttl_s, [its slot arguments].
# Counts a POST (or an undo's DELETE) as sent *before* it is sent, with the row's attempt,
# and only while this worker holds the lease: a worker that lost it (paused too long) must
# not send. With the rate keys, also reserves the call's slot.
# Returns {code, wait_ms, reserved, slot id}: code 1 go ahead, 0 lease lost, -1 row final
# already.
_RECORD_POST = (
    _ROW_FUNCTIONS
    + lua_script(*RESERVE_SLOT)
    + """
if redis.call('GET', KEYS[4]) ~= ARGV[5] then return {0, '0', -1, ''} end
if set_row(KEYS[1], KEYS[2], KEYS[5], KEYS[6], ARGV[1], ARGV[2], 'running', true, ARGV[3],
           ARGV[4]) ~= 1 then
  return {-1, '0', -1, ''}
end
redis.call('HINCRBY', KEYS[3], 'posts', 1)
redis.call('HSET', KEYS[3], 'state', 'posting', 'posted_by', ARGV[6], 'updated_at', ARGV[4])
redis.call('EXPIRE', KEYS[3], ARGV[7])
if KEYS[7] then
  local slot = reserve_slot(from(KEYS, 7), from(ARGV, 8))
  return {1, slot[1], slot[2], slot[3]}
end
return {1, '0', -1, ''}
"""
)

# KEYS: rows, batch, meeting, lease, stats, valve, open batches, working. ARGV: seq, JSON, state,
# ttl_s, stamp, token, meeting state ('' none), registration id, row ref, kind, idem_ttl_s,
# signature ('ok', a failure's 'status code', '' when no Graph call decided the row), user,
# window, min users, failure text, batch id.
# The row's final state, the meeting's outcome and the lease's release, atomically: a
# crash can never leave a registered meeting without its record. Then the safety valve:
# when the batch's last `window` rows that reached Graph all failed with the same
# signature, for at least `min users` organizers, the batch pauses (a systemic
# error pauses the batch and tells the operator, rather than burn through every row).
# Returns {saved (see set_row), 1 when this row paused the batch}.
_FINISH = (
    _ROW_FUNCTIONS
    + """
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[3], 'state', ARGV[7], 'registration_id', ARGV[8],
             'done_by', ARGV[9], 'kind', ARGV[10], 'updated_at', ARGV[5])
  redis.call('EXPIRE', KEYS[3], ARGV[11])
end
local saved = set_row(KEYS[1], KEYS[2], KEYS[5], KEYS[8], ARGV[1], ARGV[2], ARGV[3], true,
                      ARGV[4], ARGV[5], {KEYS[7], ARGV[17]})
if ARGV[6] ~= '' and redis.call('GET', KEYS[4]) == ARGV[6] then redis.call('DEL', KEYS[4]) end
local window = tonumber(ARGV[14])
if saved ~= 1 or ARGV[12] == '' or window < 1 then return {saved, 0} end
-- The safety valve: the batch's last `window` rows that reached Graph, newest first.
redis.call('LPUSH', KEYS[6], ARGV[12] .. '\t' .. ARGV[13])
redis.call('LTRIM', KEYS[6], 0, window - 1)
redis.call('EXPIRE', KEYS[6], ARGV[4])
if ARGV[12] == 'ok' or redis.call('LLEN', KEYS[6]) < window then return {saved, 0} end
local users, distinct = {}, 0
for _, entry in ipairs(redis.call('LRANGE', KEYS[6], 0, window - 1)) do
  local tab = string.find(entry, '\t', 1, true)
  if string.sub(entry, 1, tab - 1) ~= ARGV[12] then return {saved, 0} end
  local user = string.sub(entry, tab + 1)
  if not users[user] then users[user] = true; distinct = distinct + 1 end
end
if distinct < tonumber(ARGV[15]) then return {saved, 0} end
local reason = 'the last ' .. window .. ' rows that reached Graph, for ' .. distinct ..
  ' users, all failed the same way: ' .. ARGV[16]
if redis.call('HSETNX', KEYS[2], 'paused', reason) == 1 then
  redis.call('HSET', KEYS[2], 'paused_at', ARGV[5])
  return {saved, 1}
end
return {saved, 0}
"""
)

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

# KEYS: lease... ARGV: one token per key. Give back only leases still ours.
_RELEASE_LEASES = """
local released = 0
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i] then
    released = released + redis.call('DEL', key)
  end
end
return released
"""

# KEYS: inflight. ARGV: ttl (ms), then the chunks. Each held until Redis' now + ttl.
_HOLD_CHUNKS = """
local t = redis.call('TIME')
local deadline = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], deadline, ARGV[i]) end
return #ARGV - 1
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
    return _iso(datetime.now(UTC))


def _iso(moment: datetime) -> str:
    """How the store writes a moment: UTC, to the millisecond, with a `Z`."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class BatchStatus:
    """One batch's progress, as `meetreg status` shows it."""

    batch_id: str
    total: int
    counts: dict[str, int]
    source: str = ""
    created_at: str = ""
    updated_at: str = ""
    paused: str = ""  # why the batch is paused; "" when it is not
    cancelled: bool = False
    operation: Operation = Operation.CREATE
    undoes: str = ""  # an undo batch: the batch whose registrations it deletes
    undone_by: str = ""  # the undo batch of this one, once `meetreg disable` made it
    # On Redis' clock, in ms: when a row last changed state (or the batch was written),
    # since when its oldest row running or retrying has been so (None: no row is), and
    # when this was read (0: not read from the store).
    moved_ms: int = 0
    oldest_working_ms: int | None = None
    read_ms: int = 0
    stall_after_s: float = DEFAULT_RECOVERY_S  # MEETREG_RECOVERY_S of the reader
    rows_digest: str = ""  # worker.models.RowsDigest of its rows; "" if written without one

    @property
    def done(self) -> int:
        return sum(count for state, count in self.counts.items() if state in FINAL_STATES)

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    @property
    def working(self) -> int:
        """Rows in a worker's hands: running or retrying."""
        return self.counts.get(RowState.RUNNING, 0) + self.counts.get(RowState.RETRYING, 0)

    @property
    def oldest_running_s(self) -> float | None:
        """How long the oldest row running or retrying has been so; None when none is."""
        if self.oldest_working_ms is None or not self.read_ms:
            return None
        return max(0.0, (self.read_ms - self.oldest_working_ms) / 1000)

    @property
    def since_progress_s(self) -> float | None:
        """How long no row of the batch has changed state; None when not read from the store."""
        if not self.moved_ms or not self.read_ms:
            return None
        return max(0.0, (self.read_ms - self.moved_ms) / 1000)

    @property
    def stalled(self) -> bool:
        """Rows are in workers' hands, yet none has changed state for longer than the
        recovery window: whatever holds them is not finishing them, nor letting them be
        taken up again. Rows that only wait in the queue do not count: a batch queued
        behind another one waits, and is not stuck."""
        since = self.since_progress_s
        return (
            since is not None
            and since > self.stall_after_s
            and self.working > 0
            and not self.finished
            and not self.paused
        )

    @property
    def last_progress_at(self) -> str:
        """`moved_ms` as UTC ISO, as `updated_at` is written; "" when unknown."""
        return _iso_from_ms(self.moved_ms) if self.moved_ms else ""

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "total": self.total,
            "counts": self.counts,
            "finished": self.finished,
            "paused": bool(self.paused) and not self.cancelled,
            "paused_reason": self.paused or None,
            "cancelled": self.cancelled,
            "done": self.done,
            "source": self.source,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "operation": str(self.operation),
            "undoes": self.undoes or None,
            "undone_by": self.undone_by or None,
            "oldest_running_s": _tenths(self.oldest_running_s),
            "last_progress_at": self.last_progress_at or None,
            "since_progress_s": _tenths(self.since_progress_s),
            "stalled": self.stalled,
        }


def _tenths(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def _iso_from_ms(ms: int) -> str:
    return _iso(datetime.fromtimestamp(ms / 1000, UTC))


def _ms_from_iso(stamp: str) -> int:
    """`now_iso()`'s stamps back in ms since the epoch; 0 for "" or a stamp unreadable."""
    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return 0


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """A batch's failed rows that failed the same way."""

    http_status: str  # "403"; "-" when no answer came (a timeout, a cancellation)
    code: str  # Graph's error code; the message when Graph gave none
    rows: int


@dataclass(frozen=True, slots=True)
class BatchStats:
    """What the status page draws: failures by how, rows finished over time."""

    failures: list[FailureGroup]  # most rows first
    finished_per_10s: list[tuple[str, int]]  # (start of the 10 s, UTC ISO), oldest first


@dataclass(slots=True)
class MeetingRecord:
    """What meetreg knows about one meeting, across every batch that named it.

    `posts` counts POSTs (and undo DELETEs) that may have reached Graph; more than zero
    means a registration may exist, or be gone, even if no answer said so, so the next
    worker must GET before any POST or DELETE.
    """

    # "", "posting" (a POST or DELETE may be in flight), "created", "already_enabled",
    # "disabled", "already_disabled" (an undo removed, or found gone, `registration_id`)
    state: str = ""
    posts: int = 0
    posted_by: str = ""  # "batch:seq" of the row that last sent a POST
    registration_id: str = ""
    done_by: str = ""  # "batch:seq" of the row that finished it
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.state in (RowState.CREATED, RowState.ALREADY_ENABLED)


SlotRequest = tuple[list[str], list[float]]
"""The rate limiter's keys and arguments, for a script that reserves a slot as it writes."""
Slot = tuple[float, bool, str]
"""A reserved rate slot: wait this many ms; False: a pause was on, no slot was taken; the
slot's id (for `RateLimiter.settle`)."""


ScriptCall = tuple[list[str], list[Any]]
"""A Lua script's keys and arguments, for one call."""


@dataclass(slots=True)
class Ending:
    """A row's final state to store (see `OutcomeStore.finish`)."""

    row: RowRecord
    meeting_id: str = ""
    token: str = ""
    meeting_state: RowState | None = None
    registration_id: str = ""
    kind: str = ""
    signature: str = ""
    user_id: str = ""


class Claim(IntEnum):
    """What `OutcomeStore.claim` found."""

    ROW_FINAL = -1  # the row was finished elsewhere: nothing to do
    BUSY = 0  # another row holds the meeting's lease: wait
    CLAIMED = 1  # the lease is ours, the row is running
    DONE = 2  # the meeting needs nothing more (done before): no call needed
    PAUSED = -2  # the batch is paused: leave the row as it is


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
        self._set_row: Script = client.register_script(_SET_ROW)
        self._claim: Script = client.register_script(_CLAIM)
        self._record_post: Script = client.register_script(_RECORD_POST)
        self._finish: Script = client.register_script(_FINISH)
        self._renew_leases: Script = client.register_script(_RENEW_LEASES)
        self._release_leases: Script = client.register_script(_RELEASE_LEASES)
        self._claim_expired: Script = client.register_script(_CLAIM_EXPIRED)
        self._hold_chunks: Script = client.register_script(_HOLD_CHUNKS)
        self._first_lines: Script = client.register_script(_FIRST_LINES)

    # Batches -------------------------------------------------------------------------------

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
                metrics.count_row(state, counts[state])
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
                metrics.count_row(row.status)  # "live": the row was not final before
        return [bool(result) for result in results]

    # Meetings ------------------------------------------------------------------------------

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
        """Start work on a row's meeting in one round trip (see `_CLAIM`).

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
    ) -> list[tuple[Claim, MeetingRecord, Slot | None]]:
        """`claim` for many (row, meeting id, token) of a create batch, in one round trip."""
        done_states = Operation.CREATE.done_states
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
    ) -> tuple[int, Slot | None]:
        """Count the POST about to leave, with the row's attempt: 1 go, 0 lease lost, -1 row
        final. Nothing may be sent unless this returned 1. With `slot`, the POST's rate
        slot is reserved in the same trip and returned."""
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
    ) -> list[tuple[int, Slot | None]]:
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
    def finish(
        self,
        batch_id: str,
        row: RowRecord,
        *,
        meeting_id: str = "",
        token: str = "",
        meeting_state: RowState | None = None,
        registration_id: str = "",
        kind: str = "",
        signature: str = "",
        user_id: str = "",
    ) -> tuple[bool, bool]:
        """Store the row's final state; with `meeting_state`, the meeting's outcome too; with
        `token`, give the lease back. All at once. `signature` is how Graph decided the row
        ("ok", or a failure's "status code"; "" when no call did), for the safety valve.

        Returns (saved: False when the row was final already, paused: this row's failure
        paused the batch)."""
        return self.end(
            batch_id,
            Ending(
                row, meeting_id, token, meeting_state, registration_id, kind, signature, user_id
            ),
        )

    @store_errors
    def end(self, batch_id: str, ending: Ending) -> tuple[bool, bool]:
        """`finish`, for an ending already gathered (worker.protocol.row)."""
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
            metrics.count_row(ending.row.status)
        return saved == 1, paused == 1

    def _pipelined(self, script: Script, calls: Sequence[ScriptCall]) -> list[Any]:
        """Run `script` once per (keys, args) in one round trip, loading it first if Redis
        lost it (a restart): redis-py's own pipelined scripts ask Redis every time."""
        for attempt in range(2):
            pipe = self.redis.pipeline(transaction=False)
            for call_keys, call_args in calls:
                pipe.evalsha(script.sha, len(call_keys), *call_keys, *call_args)
            try:
                return cast(list[Any], pipe.execute())
            except redis.exceptions.NoScriptError:
                # NOSCRIPT: none of the calls ran, so running them all again is safe.
                if attempt:
                    raise
                self.redis.script_load(script.script)
        raise AssertionError("unreachable")

    # Pausing -------------------------------------------------------------------------------

    @store_errors
    def pause_batch(self, batch_id: str, reason: str) -> bool:
        """Pause the batch (workers leave its rows as they are); False if it was already."""
        self.batch_status(batch_id)
        paused = bool(self.redis.hsetnx(keys.batch(batch_id), "paused", reason))
        if paused:
            self.redis.hset(keys.batch(batch_id), "paused_at", now_iso())
        return paused

    @store_errors
    def unpause_batch(self, batch_id: str) -> None:
        """Lift the pause and forget the failures that caused it. Raises InputError for a
        cancelled batch: its rows are being ended, not resumed."""
        if self.batch_status(batch_id).cancelled:
            raise InputError(f"batch {batch_id!r} was cancelled; enqueue its file again instead")
        self.redis.hdel(keys.batch(batch_id), "paused", "paused_at")
        self.redis.delete(keys.valve(batch_id))

    @store_errors
    def cancel_batch(self, batch_id: str) -> int:
        """End the batch: every row not final and not in a worker's hands now becomes
        `failed` (cancelled); those in a worker's hands end as they finish, or as a worker
        takes them up again. Returns how many rows were ended here."""
        status = self.batch_status(batch_id)
        batch_key = keys.batch(batch_id)
        self.redis.hset(batch_key, mapping={"cancelled": "1", "paused_at": now_iso()})
        self.redis.hset(batch_key, "paused", CANCELLED_REASON)
        ended = 0
        for row in self.iter_rows(batch_id, status.total):
            if row.status.is_final or row.status is RowState.RUNNING:
                continue
            row.status = RowState.FAILED
            row.error = CANCELLED_REASON
            ended += self.save_row(batch_id, row)
        return ended

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

    # Leases --------------------------------------------------------------------------------

    @store_errors
    def renew_leases(self, tokens_by_meeting: dict[str, str], ttl_ms: int) -> int:
        """Renew the leases whose token is still ours; returns how many were."""
        if not tokens_by_meeting:
            return 0
        lease_keys = [keys.lease(m) for m in tokens_by_meeting]
        return int(self._renew_leases(keys=lease_keys, args=[ttl_ms, *tokens_by_meeting.values()]))

    @store_errors
    def release_leases(self, tokens_by_meeting: dict[str, str]) -> int:
        """Give back the leases whose token is still ours; returns how many were."""
        if not tokens_by_meeting:
            return 0
        lease_keys = [keys.lease(m) for m in tokens_by_meeting]
        return int(self._release_leases(keys=lease_keys, args=list(tokens_by_meeting.values())))

    # Chunks held by workers ----------------------------------------------------------------

    @store_errors
    def hold_chunks(self, chunks: Iterable[str], ttl_ms: int) -> None:
        """Claim (or renew the claim on) chunks this worker is processing: until Redis'
        clock says `ttl_ms` from now, in one round trip."""
        held = list(chunks)
        if held:
            self._hold_chunks(keys=[keys.INFLIGHT], args=[ttl_ms, *held])

    @store_errors
    def lapsed_chunks(self, chunks: Iterable[str]) -> None:
        """Note chunks as lapsed already, for the sweeper to send again, unless someone holds
        them: a deadline of 0 is in the past on any clock."""
        self.redis.zadd(keys.INFLIGHT, dict.fromkeys(chunks, 0), nx=True)

    @store_errors
    def drop_chunk(self, chunk: str) -> None:
        self.redis.zrem(keys.INFLIGHT, chunk)

    @store_errors
    def claim_expired_chunks(self, ttl_ms: int, limit: int = 500) -> list[str]:
        """Chunks whose worker stopped renewing them, each returned to one caller only."""
        now_ms = int(redis_now_ms(self.redis))
        found = self._claim_expired(keys=[keys.INFLIGHT], args=[now_ms, limit, now_ms + ttl_ms])
        return [item.decode() if isinstance(item, bytes) else str(item) for item in found]

    # Workers alive --------------------------------------------------------------------------

    @store_errors
    def worker_seen(self, process: str) -> None:
        """Note that a worker process is alive now (its heartbeat); forget ones silent a day."""
        now_ms = int(redis_now_ms(self.redis))
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(keys.WORKERS, {process: now_ms})
        pipe.zremrangebyscore(keys.WORKERS, "-inf", now_ms - DAY_S * 1000)
        pipe.execute()

    @store_errors
    def workers_seen_within(self, window_ms: int) -> int:
        """How many worker processes beat within the last `window_ms`."""
        now_ms = int(redis_now_ms(self.redis))
        return int(self.redis.zcount(keys.WORKERS, now_ms - window_ms, "+inf"))

    # Small caches --------------------------------------------------------------------------

    @store_errors
    def cached_user_id(self, upn: str) -> str | None:
        value = self.redis.get(keys.upn(upn))
        return as_text(value) if value is not None else None

    @store_errors
    def cache_user_id(self, upn: str, object_id: str) -> None:
        self.redis.set(keys.upn(upn), object_id, ex=DAY_S)


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
    moved_ms = int(text.get("moved_ms") or 0) or _ms_from_iso(text.get("updated_at", ""))
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


def _claimed(raw: Sequence[Any]) -> tuple[Claim, MeetingRecord, Slot | None]:
    code, flat, wait_ms, reserved, slot_id, *ended = raw
    if ended == [1]:  # the batch was cancelled: the row ended `failed` in this call
        metrics.count_row(RowState.FAILED)
    return Claim(int(code)), _meeting_record(_pairs(flat)), _slot(wait_ms, reserved, slot_id)


def _post_recorded(raw: Sequence[Any]) -> tuple[int, Slot | None]:
    code, wait_ms, reserved, slot_id = raw
    return int(code), _slot(wait_ms, reserved, slot_id)


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


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode_row(raw: bytes | str) -> RowRecord:
    return RowRecord.from_json_dict(json.loads(raw))


def open_store(settings: Settings) -> tuple[redis.Redis, OutcomeStore]:
    """A Redis client and the outcome store on it; raises ConfigError without REDIS_URL."""
    target = settings.require_redis()
    client = connect(target, max_connections=settings.concurrency * 2 + 8)
    store = OutcomeStore(
        client,
        retention_days=settings.retention_days,
        idempotency_retention_days=settings.idempotency_retention_days,
        pause_after=settings.pause_after,
        pause_min_users=settings.pause_min_users,
        stall_after_s=settings.recovery_s,
    )
    return client, store
