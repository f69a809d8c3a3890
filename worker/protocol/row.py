"""The registration protocol: one row from `queued` to a final state, at most one POST that
counts; and its inverse, the undo of a batch (one DELETE, only of the registration the
batch created).

    row final already?            -> nothing to do
    meeting done by an earlier row -> skipped (or this row's own outcome, if it was this row)
    take the meeting's lease       -> no other worker talks to Graph about it meanwhile
    GET first when a POST may ever have been sent (or always, MEETREG_GET_BEFORE_POST)
        registration found         -> created (our earlier POST did it) / already_enabled
    record the POST, then send it  -> 201 created
        409/400                    -> GET: found -> already_enabled, else failed
        403/404/405/other 4xx      -> failed with Graph's code, message and request-id
        429, 503 + Retry-After     -> every worker pauses; not counted as an attempt
        5xx, timeout, reset        -> counted; retried after backoff; GET before re-POST

An undo batch's row (Operation.DISABLE) carries the registration id its source batch
recorded, and goes the same way up to the lease, then:

    GET the registration (always)
        404                        -> already_disabled (disabled, if our DELETE went before)
        another id                 -> changed: someone made a new one; left alone
        our id                     -> record the DELETE, then send it
    DELETE                         -> 204 disabled; 404 already_disabled
        403/400/...                -> failed; 429/503/5xx/timeout as above, then GET again

The POST (the DELETE) is counted in the meeting's record *before* it leaves, so a worker
that takes the row up after another died mid-call knows the call is ambiguous and looks
first. Graph does not document what a POST over an existing registration does: it may
silently replace it. A DELETE sent twice is harmless, but one sent after someone
re-created the registration is not.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from worker.errors import GraphAuthError, GraphError, GraphPermanent, GraphTransient
from worker.graph.client import Deletion, Registration
from worker.models import Operation, RowRecord, RowState, is_guid
from worker.protocol.backoff import retry_wait_s
from worker.protocol.leases import LeaseKeeper, LeaseScope
from worker.ratelimit.limiter import RateLimiter
from worker.store.outcome_store import OutcomeStore
from worker.store.records import Claim, Ending, MeetingRecord, PostRecord, Slot, row_ref
from worker.telemetry.logs import add_context, row_context

T = TypeVar("T")
log = logging.getLogger(__name__)
LEASE_POLL_S = 0.25
EXTERNAL = "externalMeetingRegistration"
CONFIRM_STATUSES = (400, 409)  # POST said "no"; a GET tells whether it is "already there"
IN_FLIGHT_S = 2.0  # see lockstep_wave
REQUESTS_PER_ROW = 2  # a GET, then a POST


class GraphApi(Protocol):
    """The Graph calls the protocol needs; `worker.graph.GraphClient` is one."""

    def create_registration(
        self, user_id: str, meeting_id: str, allowed_registrant: str
    ) -> Registration: ...

    def get_registration(self, user_id: str, meeting_id: str) -> Registration | None: ...

    def delete_registration(self, user_id: str, meeting_id: str) -> Deletion: ...

    # The same calls, sent at once and answered by the function returned (worker.protocol.wave).
    def start_create_registration(
        self, user_id: str, meeting_id: str, allowed_registrant: str
    ) -> Callable[[], Registration]: ...

    def start_get_registration(
        self, user_id: str, meeting_id: str
    ) -> Callable[[], Registration | None]: ...

    def resolve_user_id(self, upn: str) -> str: ...

    def find_meeting_id(self, user_id: str, join_web_url: str) -> str: ...


@dataclass(frozen=True, slots=True)
class Policy:
    """The protocol's knobs, from Settings."""

    max_attempts: int = 6
    get_before_post: bool = True
    backoff_base_s: float = 1.0
    # The rows of a chunk go the common way together (worker.protocol.wave), this many at a
    # time: with $batch on, where calls sent together share envelopes.
    lockstep: bool = False
    wave: int = 20
    threads: int = 32  # MEETREG_CONCURRENCY: the threads of a worker process

    def looks_first(self, record: MeetingRecord) -> bool:
        """GET before the POST: always with get_before_post, else when a POST of ours may
        have reached Graph."""
        return self.get_before_post or record.posts > 0


@dataclass(slots=True)
class Deps:
    """Everything `process_chunk` talks to; built once per worker process."""

    store: OutcomeStore
    graph: GraphApi
    limiter: RateLimiter
    leases: LeaseKeeper
    policy: Policy = field(default_factory=Policy)
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)


class LeaseLost(Exception):
    """Another worker holds the meeting now; this one must not send anything more."""


class BatchPaused(Exception):
    """The batch is paused: leave the row as it is, for `meetreg resume` to send again."""


def chunk_name(batch_id: str, start: int, stop: int) -> str:
    """The identity of rows start..stop-1 of a batch, as held in `inflight`."""
    return json.dumps([batch_id, start, stop], separators=(",", ":"))


def parse_chunk(name: str) -> tuple[str, int, int]:
    batch_id, start, stop = json.loads(name)
    return str(batch_id), int(start), int(stop)


def lockstep_wave(deps: Deps) -> int:
    """Rows a thread takes together: a full wave while the rate leaves room, fewer when it
    is what holds every thread back. Rows claimed long before their rate slot only wait,
    and a pause makes all their slots go stale at once (bench/, a limit of 80/s found from
    429s: waves of 20 made 83% of it, of 10 90%). Every thread together keeps about
    IN_FLIGHT_S of requests at the current rate claimed."""
    policy = deps.policy
    rows_wanted = deps.limiter.rate_now() * IN_FLIGHT_S / REQUESTS_PER_ROW
    return max(1, min(policy.wave, math.ceil(rows_wanted / policy.threads)))


def process_chunk(
    deps: Deps, batch_id: str, start: int, stop: int, *, holder: str | None = None
) -> None:
    """Bring rows start..stop-1 of the batch to a final state, holding the chunk meanwhile;
    `holder`: the message's id, if the chunk was held for it when it was received.

    Whatever stops the work (Redis failing, the worker going down), what it took is given
    back (see LeaseScope): the chunk's claim is left to lapse, for the sweeper to send the
    chunk again, rather than dropped with rows left half-done; and no lease of a row left
    unfinished is renewed, or the chunk sent again would wait for it for ever."""
    name = chunk_name(batch_id, start, stop)
    with deps.leases.scope(holder) as leases:
        leases.hold_chunk(name)
        operation = deps.store.batch_operation(batch_id)
        with row_context(batch_id=batch_id):
            rows = [
                row
                for row in deps.store.rows(batch_id, list(range(start, stop)))
                if row is not None and not row.status.is_final
            ]
            if deps.policy.lockstep and operation is Operation.CREATE:
                from worker.protocol.wave import Lockstep  # it builds on RowJob, below

                # In waves: a message may hold hundreds of rows, and rows claimed but not
                # yet sent are rows the safety valve cannot stop any more.
                wave = lockstep_wave(deps)
                for first in range(0, len(rows), wave):
                    for alone in Lockstep(deps, leases, batch_id).run(rows[first : first + wave]):
                        alone.run()
            else:
                for row in rows:
                    RowJob(deps, leases, batch_id, row, operation).run()
        leases.drop_chunk(name)


class RowJob:
    """One row's way through the protocol. Not shared between threads."""

    def __init__(
        self,
        deps: Deps,
        leases: LeaseScope,
        batch_id: str,
        row: RowRecord,
        operation: Operation = Operation.CREATE,
    ) -> None:
        self.deps = deps
        self.leases = leases  # the chunk's: what the job holds, it holds through them
        self.store = deps.store
        self.batch_id = batch_id
        self.row = row
        self.operation = operation
        self.ref = row_ref(batch_id, row.seq)
        # Unique to this job, not only to the row: two copies of one chunk (the sweeper's
        # and the original, or a resumed batch) may run the same row in one process at
        # once, and the lease must keep them apart as it keeps two processes apart.
        self.token = leases.token(f"{self.ref}:{secrets.token_hex(6)}")
        self.transient_failures = 0
        self.throttles = 0
        self.lease: tuple[str, str] | None = None  # (meeting id, token) while we hold it
        self.slot: Slot | None = None  # a rate slot reserved for the next Graph call
        self.slot_asked_at = 0.0  # when the store call that reserved it began (monotonic s)
        self.slot_at = 0.0  # the rate slot of the latest Graph call (monotonic s)

    def run(self, first: Callable[[], RowState | None] | None = None) -> RowState | None:
        """Bring the row to a final state; None when it was left as it is (another worker
        has it, or the batch is paused). Every log line meanwhile names the row.

        `first`: the first attempt, if not a whole one: how the row goes on from where its
        lock-step left it (worker.protocol.wave); what it raises is handled as any attempt's."""
        with self.context():
            return self._run(first or self._attempt)

    def context(self) -> contextlib.AbstractContextManager[None]:
        row = self.row
        return row_context(
            batch_id=self.batch_id,
            line=row.line,
            meeting_id=row.meeting_id or None,
            user_id=row.user_id,
        )

    def throttled(self, exc: GraphTransient) -> None:
        """A 429 (or 503 with Retry-After) the lock-step got for this row: every worker
        pauses now, not when the row's turn to go on alone comes."""
        with self.context():
            self._retry_after(exc)

    def _run(self, attempt: Callable[[], RowState | None]) -> RowState | None:
        try:
            while True:
                try:
                    return attempt()
                except (LeaseLost, BatchPaused):
                    return None
                except GraphTransient as exc:
                    if not self._retry_after(exc):
                        return self._fail(exc)
                except GraphAuthError as exc:
                    self._pause(exc)
                    return None
                except GraphPermanent as exc:
                    return self._fail(exc)
                attempt = self._attempt  # every try after the first is a whole one
        finally:
            if self.lease is not None:  # a Redis failure, a pause, the row ended elsewhere
                self.leases.give_back(*self.lease)

    # One attempt ---------------------------------------------------------------------------

    def _attempt(self) -> RowState | None:
        user_id = self._user_id()
        meeting_id = self._meeting_id(user_id)
        record, done = self._claim(meeting_id)
        if done:
            return self._already_done(record)
        # The one place the operation picks its Graph calls and outcomes; all else is shared.
        # (Picked here, not kept on the job: a bound method kept on its own object is a
        # reference cycle, a row's worth of garbage only the collector's passes free.)
        work = self._create if self.operation is Operation.CREATE else self._disable
        return work(user_id, meeting_id, record)

    def _create(self, user_id: str, meeting_id: str, record: MeetingRecord) -> RowState | None:
        # A registration found after this row's own earlier POST is that POST's doing.
        posted_before = record.posted_by == self.ref
        if self.deps.policy.looks_first(record):
            found = self._call(lambda: self.deps.graph.get_registration(user_id, meeting_id))
            if found is not None:
                return self._succeed(self.found_state(found, posted_before), found)
        self._record_post(meeting_id)
        try:
            created = self._call(
                lambda: self.deps.graph.create_registration(
                    user_id, meeting_id, self.row.allowed_registrant
                )
            )
        except GraphPermanent as exc:
            if exc.status not in CONFIRM_STATUSES:
                raise
            return self.confirm(exc, user_id, meeting_id, posted_before)
        return self._succeed(RowState.CREATED, created)

    def confirm(
        self, refusal: GraphPermanent, user_id: str, meeting_id: str, posted_before: bool
    ) -> RowState | None:
        """POST said "no" (400, 409): GET to tell "already there" from a real refusal."""
        found = self._call(lambda: self.deps.graph.get_registration(user_id, meeting_id))
        if found is None:
            raise refusal
        # A 409 after our earlier POST whose answer was lost: Graph ran that one late.
        return self._succeed(self.found_state(found, posted_before), found, refusal.status)

    def _disable(self, user_id: str, meeting_id: str, record: MeetingRecord) -> RowState | None:
        """DELETE the registration the source batch created, if the meeting still has it."""
        ours = self.row.registration_id
        # Gone after this row's own earlier DELETE: that DELETE's doing.
        deleted_before = record.posted_by == self.ref
        found = self._call(lambda: self.deps.graph.get_registration(user_id, meeting_id))
        if found is None:
            gone = Deletion(removed=deleted_before, status=404, request_id=None)
            return self._removed(gone)
        if found.id != ours:
            self.row.http_status = found.status
            self.row.request_id = found.request_id or ""
            self.row.error = f"the meeting now has registration {found.id}, not {ours}: left alone"
            return self._finish(self.ending(RowState.CHANGED, signature="ok"))
        self._record_post(meeting_id)
        deletion = self._call(lambda: self.deps.graph.delete_registration(user_id, meeting_id))
        return self._removed(deletion)

    def _removed(self, deletion: Deletion) -> RowState | None:
        """The registration is gone: the meeting's record says so, and creates may come again."""
        state = RowState.DISABLED if deletion.removed else RowState.ALREADY_DISABLED
        self.row.http_status = deletion.status
        self.row.request_id = deletion.request_id or ""
        self.row.error = ""
        return self._finish(
            self.ending(
                state,
                meeting_state=state,
                registration_id=self.row.registration_id,
                signature="ok",
            )
        )

    @staticmethod
    def found_state(found: Registration, posted_before: bool) -> RowState:
        ours = posted_before and found.kind in (EXTERNAL, "")
        return RowState.CREATED if ours else RowState.ALREADY_ENABLED

    def _call(self, request: Callable[[], T]) -> T:
        """One Graph request, counted and rate limited: with the slot the last store write
        reserved for it (one round trip less), else one taken now."""
        self.take_slot()
        return request()

    def take_slot(self) -> None:
        """Count the call about to go, and wait for its rate slot: the one the last store
        write reserved, else one taken now."""
        self.row.attempts += 1
        slot, self.slot = self.slot, None
        if slot is not None:
            self.slot_at = self.deps.limiter.settle(*slot, asked_at=self.slot_asked_at)
        else:
            self.slot_at = self.deps.limiter.acquire()

    def _claim(self, meeting_id: str) -> tuple[MeetingRecord, bool]:
        """Take the meeting's lease (waiting while another row holds it: it is working), or
        learn that the meeting is done (True). One round trip when nobody else holds it."""
        token = self.token
        undo = self.operation is Operation.DISABLE
        while True:
            self.slot_asked_at = time.monotonic()
            self.leases.claiming(meeting_id, token)
            claim, record, self.slot = self.store.claim(
                self.batch_id,
                self.row,
                meeting_id,
                token,
                self.leases.lease_ms,
                slot=self.deps.limiter.slot_request(),
                # An undo always looks first: it deletes only the registration it recorded.
                get_first=undo or self.deps.policy.get_before_post,
                done_states=self.operation.done_states,
                # Undone only if the registration undone was this row's, not an earlier one.
                done_id=self.row.registration_id if undo else "",
            )
            if claim is Claim.CLAIMED:
                self.leases.holding(meeting_id, token)
                self.lease = (meeting_id, token)
                return record, False
            self.leases.released(meeting_id, token)
            if claim is Claim.DONE:
                return record, True
            if claim is Claim.ROW_FINAL:
                raise LeaseLost
            if claim is Claim.PAUSED:
                raise BatchPaused
            self.deps.sleep(LEASE_POLL_S)

    def _record_post(self, meeting_id: str) -> None:
        """Count the POST in the store before it leaves; raise LeaseLost if we may not send."""
        assert self.lease is not None
        self.slot_asked_at = time.monotonic()
        code, self.slot = self.store.record_post(
            self.batch_id,
            self.row,
            meeting_id,
            self.lease[1],
            slot=self.deps.limiter.slot_request(),
        )
        if code is not PostRecord.GO:
            self.leases.released(*self.lease)
            self.lease = None
            raise LeaseLost

    def _user_id(self) -> str:
        """The organizer's objectId; a UPN is looked up once and cached in Redis."""
        user_id = self.row.user_id
        if is_guid(user_id):
            return user_id
        cached = self.store.cached_user_id(user_id)
        if cached:
            return cached
        object_id = self._call(lambda: self.deps.graph.resolve_user_id(user_id))
        self.store.cache_user_id(user_id, object_id)
        return object_id

    def _meeting_id(self, user_id: str) -> str:
        if not self.row.meeting_id:
            join_url = self.row.join_web_url
            self.row.meeting_id = self._call(
                lambda: self.deps.graph.find_meeting_id(user_id, join_url)
            )
            add_context(meeting_id=self.row.meeting_id)
        return self.row.meeting_id

    # Outcomes ------------------------------------------------------------------------------

    def _retry_after(self, exc: GraphTransient) -> bool:
        """Wait as Graph asked or as backoff says; False when the attempts are used up.

        Throttling is not the row's fault: it never uses up an attempt (README, Guarantees).
        """
        self.row.http_status = exc.status
        self.row.error = exc.describe()
        self.row.request_id = exc.request_id or ""
        if exc.throttled:
            self.throttles += 1
            wait_s = retry_wait_s(
                exc.retry_after_s,
                self.throttles,
                self.deps.rng,
                base_s=self.deps.policy.backoff_base_s,
            )
            # Every worker waits (acquire() sleeps it out); the rate adapts to this 429.
            # First of all: each moment without the pause, more requests join the storm.
            self.deps.limiter.throttled(
                wait_s, slot_ago_s=time.monotonic() - self.slot_at, about_rate=exc.about_rate
            )
            self._save(RowState.RETRYING)
            self._log(logging.INFO, "throttled; every worker waits %.1f s", wait_s)
            return True
        self.transient_failures += 1
        if self.transient_failures >= self.deps.policy.max_attempts:
            return False
        self._save(RowState.RETRYING)
        wait_s = retry_wait_s(
            exc.retry_after_s,
            self.transient_failures,
            self.deps.rng,
            base_s=self.deps.policy.backoff_base_s,
        )
        self._log(logging.INFO, "retrying in %.1f s: %s", wait_s, self.row.error)
        self.deps.sleep(wait_s)
        return True

    def _already_done(self, record: MeetingRecord) -> RowState | None:
        """The meeting succeeded before. If this very row did it, keep its outcome."""
        self.row.registration_id = record.registration_id
        if record.done_by == self.ref:
            return self._finish(self.ending(RowState(record.state)))
        self.row.http_status = None
        self.row.error = f"already done by {record.done_by}" if record.done_by else ""
        return self._finish(self.ending(RowState.SKIPPED))

    def _succeed(
        self, state: RowState, found: Registration, status: int | None = None
    ) -> RowState | None:
        return self._finish(self.success(state, found, status))

    def success(self, state: RowState, found: Registration, status: int | None = None) -> Ending:
        """The row's ending when Graph showed (or made) its registration."""
        self.row.registration_id = found.id
        self.row.http_status = status or found.status
        self.row.request_id = found.request_id or ""
        self.row.error = (
            ""
            if found.kind in (EXTERNAL, "")
            else f"the meeting has a {found.kind}, not an external registration"
        )
        return self.ending(
            state, meeting_state=state, registration_id=found.id, kind=found.kind, signature="ok"
        )

    def _fail(self, exc: GraphError) -> RowState | None:
        self.row.http_status = exc.status
        self.row.error = exc.describe()
        self.row.request_id = exc.request_id or ""
        signature = f"{exc.status or '-'} {exc.code or exc.message}"
        return self._finish(self.ending(RowState.FAILED, signature=signature))

    def _pause(self, exc: GraphAuthError) -> None:
        """No token can be had, or Graph refuses a fresh one: every row would fail the
        same way. Pause the batch and put the row back, for `meetreg resume`."""
        self.row.http_status = exc.status
        self.row.error = exc.describe()
        self.row.request_id = exc.request_id or ""
        self.store.pause_batch(self.batch_id, f"sign-in failed: {exc.describe()}")
        self._save(RowState.QUEUED)
        self._log(
            logging.ERROR, "batch %s paused: sign-in failed: %s", self.batch_id, exc.describe()
        )

    def ending(
        self,
        state: RowState,
        *,
        meeting_state: RowState | None = None,
        registration_id: str = "",
        kind: str = "",
        signature: str = "",
    ) -> Ending:
        """The final state to store, with the meeting's and the lease to give back."""
        self.row.status = state
        meeting_id, token = self.lease or (self.row.meeting_id, "")
        return Ending(
            row=self.row,
            meeting_id=meeting_id,
            token=token,
            meeting_state=meeting_state,
            registration_id=registration_id,
            kind=kind,
            signature=signature,
            user_id=self.row.user_id,
        )

    def _finish(self, ending: Ending) -> RowState | None:
        """Store the final state (and the meeting's, and give the lease back) at once."""
        return self.stored(*self.store.finish(self.batch_id, ending))

    def stored(self, saved: bool, paused: bool) -> RowState | None:
        """Log the stored ending and let go of the lease; the state, None if not saved."""
        state = self.row.status
        if saved:
            failed = state is RowState.FAILED
            self._log(logging.WARNING if failed else logging.INFO, "%s", self._outcome_text())
        if paused:
            self._log(
                logging.ERROR,
                "batch %s paused: rows keep failing the same way: %s",
                self.batch_id,
                self.row.error,
            )
        if self.lease is not None:
            self.leases.released(*self.lease)
            self.lease = None
        return state if saved else None

    def _outcome_text(self) -> str:
        row = self.row
        if row.error:
            return f"{row.status}: {row.error}"
        if row.registration_id:
            return f"{row.status}: registration {row.registration_id}"
        return str(row.status)

    def _log(self, level: int, message: str, *args: object) -> None:
        """A line about this row: its context, with Graph's last answer (status, request-id)
        and the row's state."""
        add_context(
            request_id=self.row.request_id or None,
            status=self.row.http_status,
            outcome=str(self.row.status),
        )
        log.log(level, message, *args)

    def _save(self, state: RowState) -> None:
        self.row.status = state
        if not self.store.save_row(self.batch_id, self.row):
            raise LeaseLost  # the row was finished elsewhere meanwhile
