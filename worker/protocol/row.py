"""The registration protocol for a lone row: one row from `queued` to a final state, at
most one POST that counts; and its inverse, the undo of a batch (one DELETE, only of the
registration the batch created). The target's calls come from `Deps.target_for` the
batch's operation: a meeting's registration (worker.protocol.targets.meeting_registration,
whose words are below) or a webinar registrant (...targets.webinar_registration: the
same steps, with `registered` / `already_registered`, `canceled` / `already_canceled`).

    row final already?            -> nothing to do
    locate the resource           -> a UPN or join link is resolved (once, cached)
    can the row succeed at all?   -> failed / invalid before anything is sent (a webinar
                                     that is a draft, a required question unanswered)
    meeting done by an earlier row -> skipped (or this row's own outcome, if it was this row)
    take the meeting's lease       -> no other worker talks to Graph about it meanwhile
    GET first when a POST may ever have been sent (or always, MEETREG_GET_BEFORE_POST)
        registration found         -> created (our earlier POST did it) / already_enabled
    record the POST, then send it  -> 201 created
        409/400                    -> GET: found -> already_enabled, else failed
        403/404/405/other 4xx      -> failed with Graph's code, message and request-id
        the API retired (400 for the segment 'registration', 410, 403 app-only not supported)
                                   -> the batch pauses at once; the row goes back to queued
        429, 503 + Retry-After     -> every worker pauses; not counted as an attempt
        5xx, timeout, reset        -> counted; retried after backoff; GET before re-POST

An undo batch's row (Operation.DISABLE, CANCEL) carries the registration id its source batch
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

The steps and the row's state are RowSteps' (worker.protocol.steps), shared with the wave.
"""

from __future__ import annotations

from worker.errors import GraphAuthError, GraphPermanent, GraphTransient
from worker.models import RowState
from worker.protocol.deps import BatchPaused, LeaseLost
from worker.protocol.steps import Attempt, RowSteps
from worker.protocol.target import LookedGone, Place
from worker.store.records import MeetingRecord


class RowJob:
    """One row's way through the protocol, alone. Not shared between threads."""

    def __init__(self, steps: RowSteps) -> None:
        self.steps = steps

    def run(self, first: Attempt | None = None) -> RowState | None:
        """Bring the row to a final state; None when it was left as it is (another worker
        has it, or the batch is paused). Every log line meanwhile names the row.

        `first`: the first attempt, if not a whole one: how the row goes on from where its
        wave left it (worker.protocol.wave); what it raises is handled as any attempt's."""
        with self.steps.context():
            return self._run(first or self._attempt)

    def _run(self, attempt: Attempt) -> RowState | None:
        steps = self.steps
        try:
            while True:
                try:
                    return attempt()
                except (LeaseLost, BatchPaused):
                    return None
                except GraphTransient as exc:
                    if not steps.retry_after(exc):
                        return steps.finish(steps.failure(exc))
                except GraphAuthError as exc:
                    steps.pause(exc)
                    return None
                except GraphPermanent as exc:
                    if steps.pause_if_retired(exc):
                        return None
                    return steps.finish(steps.failure(exc))
                attempt = self._attempt  # every try after the first is a whole one
        finally:
            steps.give_back_lease()

    def _attempt(self) -> RowState | None:
        steps = self.steps
        place = steps.locate()
        if not steps.operation.undoes and (refused := steps.judge()) is not None:
            return steps.finish(refused)
        record, done = steps.claim(place.key)
        if done:
            return self._already_done(record)
        # The one place the operation picks its Graph calls and outcomes; all else is shared.
        # (Picked here, not kept on the job: a bound method kept on its own object is a
        # reference cycle, a row's worth of garbage only the collector's passes free.)
        work = self._undo if steps.operation.undoes else self._create
        return work(place, record)

    def _create(self, place: Place, record: MeetingRecord) -> RowState | None:
        steps, target, row = self.steps, self.steps.target, self.steps.row
        posted_before = steps.posted_before(record)
        if steps.looks_first(record):
            found = steps.call(lambda: target.look(place, row))
            if found is not None:
                return steps.finish(steps.success(steps.found_state(found, posted_before), found))
        steps.record_post(place.key)
        try:
            created = steps.call(lambda: target.create(place, row))
        except GraphPermanent as exc:
            if exc.status not in target.confirm_statuses:
                raise
            return steps.confirm(exc, place, posted_before)
        return steps.finish(steps.success(steps.operation.made, created))

    def _undo(self, place: Place, record: MeetingRecord) -> RowState | None:
        """Undo the resource the source batch created, if it is still there."""
        steps, target, row = self.steps, self.steps.target, self.steps.row
        # Gone after this row's own earlier undo: that undo's doing.
        deleted_before = steps.posted_before(record)
        found = steps.call(lambda: target.look(place, row))
        if found is None:
            return steps.finish(steps.removed(LookedGone(removed=deleted_before)))
        if reason := target.replaced(found, row):
            row.http_status = found.status
            row.request_id = found.request_id or ""
            row.error = reason
            return steps.finish(steps.ending(RowState.CHANGED, signature="ok"))
        steps.record_post(place.key)
        removal = steps.call(lambda: target.undo(place, found))
        return steps.finish(steps.removed(removal))

    def _already_done(self, record: MeetingRecord) -> RowState | None:
        """The resource was done before. If this very row did it, keep its outcome."""
        steps, row = self.steps, self.steps.row
        row.registration_id = record.registration_id
        if record.done_by == steps.ref:
            return steps.finish(steps.ending(RowState(record.state)))
        row.http_status = None
        row.error = f"already done by {record.done_by}" if record.done_by else ""
        return steps.finish(steps.ending(RowState.SKIPPED))
