"""The rows of one chunk in lock-step: each step of the protocol for all of them at once.

A RowJob takes one row through the protocol (worker.protocol.row): three Redis round trips
and two Graph calls, each waited for by its thread alone, so a worker kept hundreds of
threads busy to keep Graph's envelopes full, and spent its CPU switching between them.
Here one thread takes every row of its chunk along the common way together:

    claim every row (one pipelined round trip, with the rate slots of the GETs)
    GET each registration at its slot, then read the answers (they share $batch envelopes)
    record the POSTs of the rows Graph answered 404 (one round trip, with their slots)
    POST each at its slot, then read the answers
    store every ending (one round trip)

A row that leaves the common way (its meeting is held or done elsewhere, its organizer
is a UPN or its meeting a join link, Graph answered anything but 200/201/404) goes on
alone in its RowJob, holding its lease, from where the RowJob would be after the same
answer: the protocol's rules live there, once. A 429 is reported to the limiter at
once, so every worker pauses now, not when the row's turn comes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from worker.errors import GraphError, GraphPermanent, GraphTransient
from worker.graph.client import Registration
from worker.models import Operation, RowRecord, RowState, is_guid
from worker.protocol.leases import LeaseScope
from worker.protocol.row import CONFIRM_STATUSES, Deps, RowJob
from worker.store.records import Claim, Ending, PostRecord


@dataclass(slots=True)
class _Row:
    """A row on the common way: its job (token, row, lease) and what it waits for."""

    job: RowJob
    meeting_id: str
    must_look: bool = True  # GET before any POST
    posted_before: bool = False  # this row's own earlier POST may have made it
    answer: Callable[[], object] | None = None


@dataclass(slots=True)
class Alone:
    """A row to go on alone in its RowJob, with the answer that took it off the way."""

    job: RowJob
    first: Callable[[], RowState | None] | None = None  # None: a whole attempt

    def run(self) -> RowState | None:
        return self.job.run(self.first)


class Lockstep:
    """Runs the common way for the rows of one chunk of a create batch."""

    def __init__(self, deps: Deps, leases: LeaseScope, batch_id: str) -> None:
        self.deps = deps
        self.leases = leases
        self.store = deps.store
        self.batch_id = batch_id
        self.alone: list[Alone] = []
        self._endings: list[tuple[RowJob, Ending]] = []

    def run(self, rows: Sequence[RowRecord]) -> list[Alone]:
        """Take `rows` (not final) along the common way; returns the rows left to go on
        alone, in order, each to be run after this returns."""
        on_way: list[_Row] = []
        for row in rows:
            job = RowJob(self.deps, self.leases, self.batch_id, row, Operation.CREATE)
            if is_guid(row.user_id) and row.meeting_id:
                on_way.append(_Row(job, row.meeting_id))
            else:
                self.alone.append(Alone(job))  # a UPN or a join link to resolve first
        try:
            claimed = self._claim(on_way)
            to_post = self._look(claimed)
            self._post(to_post)
        finally:
            # Every answer that came is stored, whatever stopped the way (Redis failing,
            # the worker going down): a POST Graph answered must not be asked again.
            self._store_endings()
        # Rows that hold their leases first: a row without one may wait for another
        # thread's, and must not do so while this thread holds leases that thread waits
        # for (two copies of a chunk, in two threads, would wait for each other forever).
        return sorted(self.alone, key=lambda alone: alone.job.lease is not None, reverse=True)

    # The steps -----------------------------------------------------------------------------

    def _claim(self, rows: list[_Row]) -> list[_Row]:
        if not rows:
            return []
        asked_at = time.monotonic()
        for r in rows:
            self.leases.claiming(r.meeting_id, r.job.token)
        results = self.store.claim_many(
            self.batch_id,
            [(r.job.row, r.meeting_id, r.job.token) for r in rows],
            self.leases.lease_ms,
            slot=self.deps.limiter.slot_request(),
            get_first=self.deps.policy.get_before_post,
        )
        claimed = []
        for r, (claim, record, slot) in zip(rows, results, strict=True):
            job = r.job
            if claim is Claim.CLAIMED:
                self.leases.holding(r.meeting_id, job.token)
                job.lease = (r.meeting_id, job.token)
                job.slot, job.slot_asked_at = slot, asked_at
                r.posted_before = record.posted_by == job.ref
                r.must_look = self.deps.policy.looks_first(record)
                claimed.append(r)
                continue
            self.leases.released(r.meeting_id, job.token)
            if claim in (Claim.BUSY, Claim.DONE):
                self.alone.append(Alone(job))  # waits for the lease, or ends `skipped`
            # ROW_FINAL, PAUSED: the row is left as it is, as a RowJob would leave it
        return claimed

    def _look(self, rows: list[_Row]) -> list[_Row]:
        """GET the registrations of the rows that must look first; the rows to POST."""
        graph = self.deps.graph
        looking = [r for r in rows if r.must_look]
        for r in looking:
            r.answer = self._start(
                r, partial(graph.start_get_registration, r.job.row.user_id, r.meeting_id)
            )
        to_post = [r for r in rows if not r.must_look]
        for r in looking:
            found = self._answer(r, r.answer)
            if found is _LEFT:
                continue
            if found is None:
                to_post.append(r)
            else:
                assert isinstance(found, Registration)
                job = r.job
                state = job.found_state(found, r.posted_before)
                self._endings.append((job, job.success(state, found)))
        return to_post

    def _post(self, rows: list[_Row]) -> None:
        if not rows:
            return
        asked_at = time.monotonic()
        results = self.store.record_post_many(
            self.batch_id,
            [(r.job.row, r.meeting_id, r.job.token) for r in rows],
            slot=self.deps.limiter.slot_request(),
        )
        graph = self.deps.graph
        posting = []
        for r, (code, slot) in zip(rows, results, strict=True):
            job = r.job
            if code is not PostRecord.GO:  # the lease is gone, or the row final: send nothing
                self.leases.released(r.meeting_id, job.token)
                job.lease = None
                continue
            job.slot, job.slot_asked_at = slot, asked_at
            row = job.row
            r.answer = self._start(
                r,
                partial(
                    graph.start_create_registration,
                    row.user_id,
                    r.meeting_id,
                    row.allowed_registrant,
                ),
            )
            posting.append(r)
        for r in posting:
            created = self._answer(r, r.answer, posting=True)
            if created is not _LEFT:
                assert isinstance(created, Registration)
                self._endings.append((r.job, r.job.success(RowState.CREATED, created)))

    def _store_endings(self) -> None:
        if not self._endings:
            return
        endings, self._endings = self._endings, []
        results = self.store.finish_many(self.batch_id, [ending for _, ending in endings])
        for (job, _), (saved, paused) in zip(endings, results, strict=True):
            with job.context():
                job.stored(saved, paused)

    # One call of a step --------------------------------------------------------------------

    def _start(
        self, r: _Row, start: Callable[[], Callable[[], object]]
    ) -> Callable[[], object] | None:
        """Wait for the row's rate slot, then send its call; None if sending failed."""
        try:
            r.job.take_slot()
            return start()
        except GraphError as exc:
            self._leave(r.job, _raising(exc))
            return None

    def _answer(
        self, r: _Row, answer: Callable[[], object] | None, *, posting: bool = False
    ) -> object:
        """The call's answer, or _LEFT when the row left the way to go on alone, from
        where its own RowJob would be after the same answer."""
        if answer is None:
            return _LEFT
        job = r.job
        try:
            return answer()
        except GraphPermanent as exc:
            if posting and exc.status in CONFIRM_STATUSES:
                # POST said "no": a GET tells "already there" from a real refusal.
                row = job.row
                self._leave(
                    job, partial(job.confirm, exc, row.user_id, r.meeting_id, r.posted_before)
                )
            else:
                self._leave(job, _raising(exc))
        except GraphTransient as exc:
            if exc.throttled:
                job.throttled(exc)  # every worker pauses now; the row tries again later
                self._leave(job, None)
            else:
                self._leave(job, _raising(exc))
        except GraphError as exc:
            self._leave(job, _raising(exc))
        return _LEFT

    def _leave(self, job: RowJob, first: Callable[[], RowState | None] | None) -> None:
        """The row goes on alone, holding its lease, as its RowJob would hold it."""
        self.alone.append(Alone(job, first))


def _raising(error: GraphError) -> Callable[[], RowState | None]:
    def attempt() -> RowState | None:
        raise error

    return attempt


_LEFT = object()  # a call's answer took its row off the common way
