"""One row's state on its way through the protocol, and the steps that move it: the API
the lone row (worker.protocol.row) and the wave (worker.protocol.wave) both go through.

A step either talks to the store or Graph for this row alone (claim, record_post, call,
confirm, finish), or takes in what a store call made for many rows answered for this one
(claimed, post_recorded, stored): the wave makes one round trip for all its rows, the
rules of what each answer means stay here, once.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import NamedTuple, TypeVar

from worker.errors import GraphAuthError, GraphError, GraphPermanent, GraphTransient
from worker.models import Operation, RowRecord, RowState
from worker.protocol.deps import BatchPaused, Deps, LeaseLost
from worker.protocol.leases import LeaseScope
from worker.protocol.retry_policy import Attempts, GiveUp
from worker.protocol.target import Found, Place, Removal, Verdict, external_id
from worker.store.records import Claim, Ending, MeetingRecord, PostRecord, Slot, row_ref
from worker.telemetry.logs import add_context, row_context

T = TypeVar("T")
# The rows' lines keep the logger operators know them by (docs/operations.md, Logs).
log = logging.getLogger("worker.protocol.row")
LEASE_POLL_S = 0.25

Attempt = Callable[[], RowState | None]
"""One try at a row: its final state, None when it was left as it is."""


class Claimed(NamedTuple):
    """What claiming a row's meeting found: the meeting's record, and whether the meeting
    needs nothing more (done before; no lease taken)."""

    record: MeetingRecord
    done: bool


class Stored(NamedTuple):
    """What storing a row's ending did (see `OutcomeStore.finish`)."""

    saved: bool  # False: the row was final already
    paused: bool  # this row's failure paused the batch


class RowSteps:
    """One row's state (its lease, its next rate slot, its failed tries) and its steps.
    Not shared between threads."""

    def __init__(
        self,
        deps: Deps,
        leases: LeaseScope,
        batch_id: str,
        row: RowRecord,
        operation: Operation = Operation.CREATE,
    ) -> None:
        self.deps = deps
        self.leases = leases  # the chunk's: what the row holds, it holds through them
        self.store = deps.store
        self.target = deps.target_for(operation)
        self.batch_id = batch_id
        self.row = row
        self.operation = operation
        self.ref = row_ref(batch_id, row.seq)
        if not operation.undoes and not row.external_id:
            row.external_id = external_id(self.ref)  # what the create carries, if it can
        self.key = ""  # the resource's key in the store, once the row is located
        # Unique to this run, not only to the row: two copies of one chunk (the sweeper's
        # and the original, or a resumed batch) may run the same row in one process at
        # once, and the lease must keep them apart as it keeps two processes apart.
        self.token = leases.token(f"{self.ref}:{secrets.token_hex(6)}")
        self.attempts = Attempts()  # failed tries so far, for the retry policy
        self.lease: tuple[str, str] | None = None  # (meeting id, token) while we hold it
        self.slot: Slot | None = None  # a rate slot reserved for the next Graph call
        self.slot_asked_at = 0.0  # when the store call that reserved it began (monotonic s)
        self.slot_at = 0.0  # the rate slot of the latest Graph call (monotonic s)

    def context(self) -> contextlib.AbstractContextManager[None]:
        """Every log line meanwhile names the row."""
        row = self.row
        if row.webinar_id:
            return row_context(batch_id=self.batch_id, line=row.line, webinar_id=row.webinar_id)
        return row_context(
            batch_id=self.batch_id,
            line=row.line,
            meeting_id=row.meeting_id or None,
            user_id=row.user_id,
        )

    # Finding the resource, and whether the row can succeed ---------------------------------

    def locate(self) -> Place:
        """Where the row's resource is; Graph is asked what the row leaves open."""
        place = self.target.locate(self.row, self)
        self.key = place.key
        return place

    def judge(self) -> Ending | None:
        """The ending of a row that cannot succeed (a webinar that is a draft, a required
        question unanswered), judged before anything is sent; None: go on."""
        return self.refusal(self.verdict())

    def verdict(self) -> Verdict:
        """Whether the row can succeed: known to the target, or found out now from Graph.
        Raises BatchPaused rather than ask Graph for a paused batch: these calls come
        before the claim, which is where a pause is seen otherwise (a row whose webinar is
        not known yet must not read it, and fail, while the safety valve holds the batch)."""
        known = self.target.verdict(self.batch_id, self.row)
        if known is not None:
            return known
        if self.store.is_paused(self.batch_id):
            raise BatchPaused
        return self.target.judge(self.batch_id, self.row, self)

    def refusal(self, verdict: Verdict) -> Ending | None:
        """The ending `verdict` gives the row, if any (worker.protocol.target, Verdict)."""
        if verdict.state is None:
            return None
        self.row.http_status = None
        self.row.error = verdict.reason
        return self.ending(verdict.state)

    # The lease and the store's count of POSTs ----------------------------------------------

    def claim(self, meeting_id: str) -> Claimed:
        """Take the meeting's lease (waiting while another row holds it: it is working), or
        learn that the meeting is done. One round trip when nobody else holds it."""
        undo = self.operation.undoes
        while True:
            asked_at = time.monotonic()
            claim, record, slot = self.store.claim(
                self.batch_id,
                *self.claim_request(meeting_id),
                self.leases.lease_ms,
                slot=self.deps.limiter.slot_request(),
                # An undo always looks first: it deletes only the registration it recorded.
                get_first=undo or self.gets_first,
                done_states=self.operation.done_states,
                # Undone only if the registration undone was this row's, not an earlier one.
                done_id=self.row.registration_id if undo else "",
            )
            claimed = self.claimed(meeting_id, claim, record, slot, asked_at)
            if claimed is not None:
                return claimed
            self.deps.sleep(LEASE_POLL_S)

    def claim_request(self, meeting_id: str) -> tuple[RowRecord, str, str]:
        """The row, meeting and token to claim the meeting with, from now on."""
        self.leases.claiming(meeting_id, self.token)
        return self.row, meeting_id, self.token

    def claimed(
        self,
        meeting_id: str,
        claim: Claim,
        record: MeetingRecord,
        slot: Slot | None,
        asked_at: float,
    ) -> Claimed | None:
        """Take in the store's answer to a claim of the meeting: None while another row
        holds it (BUSY); raises LeaseLost or BatchPaused when the row is left as it is."""
        if claim is Claim.CLAIMED:
            self.leases.holding(meeting_id, self.token)
            self.lease = (meeting_id, self.token)
            self.slot, self.slot_asked_at = slot, asked_at
            return Claimed(record, done=False)
        self.leases.released(meeting_id, self.token)
        if claim is Claim.BUSY:
            return None
        if claim is Claim.DONE:
            return Claimed(record, done=True)
        if claim is Claim.PAUSED:
            raise BatchPaused
        raise LeaseLost  # ROW_FINAL

    @property
    def gets_first(self) -> bool:
        """Whether every create is looked up first (MEETREG_GET_BEFORE_POST, or a target
        whose second create Graph may answer with a second resource)."""
        return self.target.always_looks_first or self.deps.policy.get_before_post

    def looks_first(self, record: MeetingRecord) -> bool:
        """Whether to look before this create: always when `gets_first`, else when a
        create of ours may have reached Graph."""
        return self.target.always_looks_first or self.deps.policy.looks_first(record)

    def posted_before(self, record: MeetingRecord) -> bool:
        """Whether this row's own earlier POST (or DELETE) may be what Graph shows now."""
        return record.posted_by == self.ref

    def record_post(self, meeting_id: str) -> None:
        """Count the POST in the store before it leaves; raise LeaseLost if we may not send."""
        asked_at = time.monotonic()
        code, slot = self.store.record_post(
            self.batch_id, *self.post_request(), slot=self.deps.limiter.slot_request()
        )
        if not self.post_recorded(code, slot, asked_at):
            raise LeaseLost

    def post_request(self) -> tuple[RowRecord, str, str]:
        """The row, meeting and lease token to record the POST with."""
        assert self.lease is not None
        return self.row, *self.lease

    def post_recorded(self, recorded: PostRecord, slot: Slot | None, asked_at: float) -> bool:
        """Take in the store's answer to recording the POST: anything but GO means the
        lease is gone or the row final (the lease is let go of); whether to send."""
        if recorded is not PostRecord.GO:
            assert self.lease is not None
            self.leases.released(*self.lease)
            self.lease = None
            return False
        self.slot, self.slot_asked_at = slot, asked_at
        return True

    # Graph ---------------------------------------------------------------------------------

    def call(self, request: Callable[[], T]) -> T:
        """One Graph request, counted and rate limited (see `take_slot`)."""
        self.take_slot()
        return request()

    def take_slot(self) -> None:
        """Count the call about to go, and wait for its rate slot: the one the last store
        write reserved (one round trip less), else one taken now."""
        self.row.attempts += 1
        slot, self.slot = self.slot, None
        if slot is not None:
            self.slot_at = self.deps.limiter.settle(*slot, asked_at=self.slot_asked_at)
        else:
            self.slot_at = self.deps.limiter.acquire()

    def confirm(
        self, refusal: GraphPermanent, place: Place, posted_before: bool
    ) -> RowState | None:
        """The create said "no" (a confirm status): look, to tell "already there" from a
        real refusal."""
        found = self.call(lambda: self.target.look(place, self.row))
        if found is None:
            raise refusal
        # A 409 after our earlier POST whose answer was lost: Graph ran that one late.
        return self.finish(
            self.success(self.found_state(found, posted_before), found, refusal.status)
        )

    def found_state(self, found: Found, posted_before: bool) -> RowState:
        """A resource found after this row's own earlier POST is that POST's doing."""
        ours = posted_before and self.target.is_ours(found, self.row)
        return self.operation.made if ours else self.operation.found

    # Retries -------------------------------------------------------------------------------

    def retry_after(self, exc: GraphTransient) -> bool:
        """Wait as the retry policy says (Graph's Retry-After, else backoff); False when
        the attempts are used up. Throttling never uses up an attempt (docs/graph.md, Throttling).
        """
        self.note_answer(exc)
        decision = self.attempts.decide(exc, self.deps.retry_policy)
        if isinstance(decision, GiveUp):
            return False
        if decision.throttled:
            # Every worker waits (acquire() sleeps it out); the rate adapts to this 429.
            # First of all: each moment without the pause, more requests join the storm.
            self.deps.limiter.throttled(
                decision.wait_s,
                slot_ago_s=time.monotonic() - self.slot_at,
                about_rate=exc.about_rate,
            )
            self.save(RowState.RETRYING)
            self.log(logging.INFO, "throttled; every worker waits %.1f s", decision.wait_s)
            return True
        self.save(RowState.RETRYING)
        self.log(logging.INFO, "retrying in %.1f s: %s", decision.wait_s, self.row.error)
        self.deps.sleep(decision.wait_s)
        return True

    def throttled(self, exc: GraphTransient) -> None:
        """A 429 (or 503 with Retry-After) the wave got for this row: every worker pauses
        now, not when the row's turn to go on alone comes."""
        with self.context():
            self.retry_after(exc)

    def pause(self, exc: GraphAuthError) -> None:
        """No token can be had, or Graph refuses a fresh one: every row would fail the
        same way. Pause the batch and put the row back, for `meetreg resume`."""
        self.note_answer(exc)
        self.store.pause_batch(self.batch_id, f"sign-in failed: {exc.describe()}")
        self.save(RowState.QUEUED)
        self.log(
            logging.ERROR, "batch %s paused: sign-in failed: %s", self.batch_id, exc.describe()
        )

    def pause_if_retired(self, exc: GraphPermanent) -> bool:
        """The target's API itself is gone or refused to this token (`Target.retirement`):
        every row would fail alike. Pause the batch with that reason at once (not after the
        safety valve's 20 rows) and put the row back, for `meetreg resume`; whether it was."""
        reason = self.target.retirement(exc)
        if reason is None:
            return False
        self.note_answer(exc)
        paused = self.store.pause_batch(self.batch_id, reason)
        self.save(RowState.QUEUED)
        if paused:  # one line for the batch, not one per row of the wave in flight
            self.log(logging.ERROR, "batch %s paused: %s", self.batch_id, reason)
        return True

    # Endings -------------------------------------------------------------------------------

    def success(self, state: RowState, found: Found, status: int | None = None) -> Ending:
        """The row's ending when Graph showed (or made) its resource."""
        self.row.registration_id = found.id
        self.row.http_status = status or found.status
        self.row.request_id = found.request_id or ""
        self.row.error = self.target.mismatch(found)
        return self.ending(
            state, meeting_state=state, registration_id=found.id, kind=found.kind, signature="ok"
        )

    def removed(self, removal: Removal) -> Ending:
        """The ending of an undo that found the resource gone: the meeting's record says
        so, and creates may come again."""
        state = self.operation.made if removal.removed else self.operation.found
        self.row.http_status = removal.status
        self.row.request_id = removal.request_id or ""
        self.row.error = ""
        return self.ending(
            state, meeting_state=state, registration_id=self.row.registration_id, signature="ok"
        )

    def failure(self, exc: GraphError) -> Ending:
        self.note_answer(exc)
        signature = f"{exc.status or '-'} {exc.code or exc.message}"
        return self.ending(RowState.FAILED, signature=signature)

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
        meeting_id, token = self.lease or (self.key or self.row.meeting_id, "")
        row = self.row
        return Ending(
            row=row,
            meeting_id=meeting_id,
            token=token,
            meeting_state=meeting_state,
            registration_id=registration_id,
            kind=kind,
            signature=signature,
            # Whose rows failing alike pause the batch: an organizer's, or a webinar's.
            user_id=row.user_id or row.webinar_id,
        )

    def finish(self, ending: Ending) -> RowState | None:
        """Store the final state (and the meeting's, and give the lease back) at once."""
        return self.stored(Stored(*self.store.finish(self.batch_id, ending)))

    def stored(self, stored: Stored) -> RowState | None:
        """Log the stored ending and let go of the lease; the state, None if not saved."""
        state = self.row.status
        if stored.saved:
            failed = state is RowState.FAILED
            self.log(logging.WARNING if failed else logging.INFO, "%s", self._outcome_text())
        if stored.paused:
            self.log(
                logging.ERROR,
                "batch %s paused: rows keep failing the same way: %s",
                self.batch_id,
                self.row.error,
            )
        if self.lease is not None:
            self.leases.released(*self.lease)
            self.lease = None
        return state if stored.saved else None

    def give_back_lease(self) -> None:
        """Give back a lease still held when the row stops short (a Redis failure, a
        pause, the row ended elsewhere)."""
        if self.lease is not None:
            self.leases.give_back(*self.lease)

    def save(self, state: RowState) -> None:
        self.row.status = state
        if not self.store.save_row(self.batch_id, self.row):
            raise LeaseLost  # the row was finished elsewhere meanwhile

    def note_answer(self, exc: GraphError) -> None:
        """Keep Graph's last answer on the row, for its report."""
        self.row.http_status = exc.status
        self.row.error = exc.describe()
        self.row.request_id = exc.request_id or ""

    def log(self, level: int, message: str, *args: object) -> None:
        """A line about this row: its context, with Graph's last answer (status, request-id)
        and the row's state."""
        add_context(
            request_id=self.row.request_id or None,
            status=self.row.http_status,
            outcome=str(self.row.status),
        )
        log.log(level, message, *args)

    def _outcome_text(self) -> str:
        row = self.row
        if row.error:
            return f"{row.status}: {row.error}"
        if row.registration_id:
            return f"{row.status}: registration {row.registration_id}"
        return str(row.status)
