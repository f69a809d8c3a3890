"""A wave: the rows of one chunk going through each step of the protocol together.

A lone row (worker.protocol.row) takes three Redis round trips and two Graph calls, each
waited for by its thread alone, so a worker kept hundreds of threads busy to keep Graph's
envelopes ($batch requests) full, and spent its CPU switching between them. Here one
thread takes a wave of its chunk's rows along the common way together:

    claim every row (one pipelined round trip, with the rate slots of the looks)
    look up each (GET) at its slot, then read the answers (they share envelopes)
    record the creates (POSTs) of the rows found absent (one round trip, with their slots)
    create each at its slot, then read the answers
    store every ending (one round trip)

A row that leaves the common way (its meeting is held or done elsewhere, its organizer
is a UPN or its meeting a join link, Graph answered anything but found/created/absent)
goes on alone (worker.protocol.chunk runs it as a lone row), holding its lease, from
where the lone row would be after the same answer: the protocol's rules live in
RowSteps (worker.protocol.steps), once. A 429 is reported to the limiter at once, so
every worker pauses now, not when the row's turn comes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from worker.errors import GraphError, GraphPermanent, GraphTransient
from worker.models import Operation, RowRecord, RowState
from worker.protocol.deps import BatchPaused, Deps, LeaseLost
from worker.protocol.leases import LeaseScope
from worker.protocol.steps import Attempt, RowSteps, Stored
from worker.protocol.target import Found, Place, Verdict
from worker.store.records import Ending


@dataclass(slots=True)
class _OnWay:
    """A row on the common way: its steps (token, row, lease) and what it waits for."""

    steps: RowSteps
    place: Place
    must_look: bool = True  # look before any create
    posted_before: bool = False  # this row's own earlier create may have made it
    answer: Callable[[], Found | None] | None = None


@dataclass(slots=True)
class Alone:
    """A row to go on alone, with where it goes on from: `first`, the rest of the attempt
    the answer that took it off the way left (None: a whole attempt)."""

    steps: RowSteps
    first: Attempt | None = None


class Wave:
    """Runs the common way for the rows of one wave of a create batch's chunk."""

    def __init__(
        self,
        deps: Deps,
        leases: LeaseScope,
        batch_id: str,
        operation: Operation = Operation.CREATE,
    ) -> None:
        self.deps = deps
        self.leases = leases
        self.store = deps.store
        self.target = deps.target_for(operation)
        self.batch_id = batch_id
        self.operation = operation
        self.alone: list[Alone] = []
        self._endings: list[tuple[RowSteps, Ending]] = []

    def run(self, rows: Sequence[RowRecord]) -> list[Alone]:
        """Take `rows` (not final) along the common way; returns the rows left to go on
        alone, in order, each to be run after this returns."""
        on_way: list[_OnWay] = []
        for row in rows:
            steps = RowSteps(self.deps, self.leases, self.batch_id, row, self.operation)
            place = self.target.place(row)
            verdict = self._verdict(steps) if place is not None else None
            if place is None or verdict is None:
                # A UPN or a join link to resolve first, or a webinar Graph did not show.
                self.alone.append(Alone(steps))
                continue
            steps.key = place.key
            refused = steps.refusal(verdict)
            if refused is not None:
                self._endings.append((steps, refused))
            else:
                on_way.append(_OnWay(steps, place))
        try:
            claimed = self._claim(on_way)
            to_create = self._look(claimed)
            self._create(to_create)
        finally:
            # Every answer that came is stored, whatever stopped the way (Redis failing,
            # the worker going down): a create Graph answered must not be asked again.
            self._store_endings()
        # Rows that hold their leases first: a row without one may wait for another
        # thread's, and must not do so while this thread holds leases that thread waits
        # for (two copies of a chunk, in two threads, would wait for each other forever).
        return sorted(self.alone, key=lambda alone: alone.steps.lease is not None, reverse=True)

    def _verdict(self, steps: RowSteps) -> Verdict | None:
        """Whether the row can succeed: known, or found out now (the wave's first row of a
        webinar reads it, its other rows then know); None when that read failed, and the
        row goes on alone, where the failure is met as any call's."""
        try:
            with steps.context():
                return steps.verdict()
        except (GraphError, BatchPaused):
            return None  # alone, it meets the pause (or the error) as any row does

    # The steps -----------------------------------------------------------------------------

    def _claim(self, rows: list[_OnWay]) -> list[_OnWay]:
        if not rows:
            return []
        asked_at = time.monotonic()
        results = self.store.claim_many(
            self.batch_id,
            [r.steps.claim_request(r.place.key) for r in rows],
            self.leases.lease_ms,
            slot=self.deps.limiter.slot_request(),
            get_first=rows[0].steps.gets_first,
            done_states=self.operation.done_states,
        )
        claimed = []
        for r, (claim, record, slot) in zip(rows, results, strict=True):
            try:
                got = r.steps.claimed(r.place.key, claim, record, slot, asked_at)
            except (LeaseLost, BatchPaused):
                continue  # the row is left as it is, as a lone row would leave it
            if got is None or got.done:
                self.alone.append(Alone(r.steps))  # waits for the lease, or ends `skipped`
                continue
            r.posted_before = r.steps.posted_before(got.record)
            r.must_look = r.steps.looks_first(got.record)
            claimed.append(r)
        return claimed

    def _look(self, rows: list[_OnWay]) -> list[_OnWay]:
        """Look up the rows that must look first; the rows to create."""
        looking = [r for r in rows if r.must_look]
        for r in looking:
            r.answer = self._start(r, partial(self.target.start_look, r.place, r.steps.row))
        to_create = [r for r in rows if not r.must_look]
        for r in looking:
            found = self._answer(r, r.answer)
            if isinstance(found, _Left):
                continue
            if found is None:
                to_create.append(r)
            else:
                steps = r.steps
                state = steps.found_state(found, r.posted_before)
                self._endings.append((steps, steps.success(state, found)))
        return to_create

    def _create(self, rows: list[_OnWay]) -> None:
        if not rows:
            return
        asked_at = time.monotonic()
        results = self.store.record_post_many(
            self.batch_id,
            [r.steps.post_request() for r in rows],
            slot=self.deps.limiter.slot_request(),
        )
        creating = []
        for r, (code, slot) in zip(rows, results, strict=True):
            steps = r.steps
            if not steps.post_recorded(code, slot, asked_at):
                continue  # the lease is gone, or the row final: send nothing
            row = steps.row
            r.answer = self._start(
                r,
                partial(self.target.start_create, r.place, row),
            )
            creating.append(r)
        for r in creating:
            created = self._answer(r, r.answer, creating=True)
            if not isinstance(created, _Left):
                assert created is not None  # a create answers what it made
                made = self.operation.made
                self._endings.append((r.steps, r.steps.success(made, created)))

    def _store_endings(self) -> None:
        if not self._endings:
            return
        endings, self._endings = self._endings, []
        results = self.store.finish_many(self.batch_id, [ending for _, ending in endings])
        for (steps, _), stored in zip(endings, results, strict=True):
            with steps.context():
                steps.stored(Stored(*stored))

    # One call of a step --------------------------------------------------------------------

    def _start(
        self, r: _OnWay, start: Callable[[], Callable[[], Found | None]]
    ) -> Callable[[], Found | None] | None:
        """Wait for the row's rate slot, then send its call; None if sending failed."""
        try:
            r.steps.take_slot()
            return start()
        except GraphError as exc:
            self._leave(r.steps, _raising(exc))
            return None

    def _answer(
        self, r: _OnWay, answer: Callable[[], Found | None] | None, *, creating: bool = False
    ) -> Found | _Left | None:
        """The call's answer, or _LEFT when the row left the way to go on alone, from
        where a lone row would be after the same answer."""
        if answer is None:
            return _LEFT
        steps = r.steps
        try:
            return answer()
        except GraphPermanent as exc:
            if creating and exc.status in self.target.confirm_statuses:
                # The create said "no": a look tells "already there" from a real refusal.
                self._leave(steps, partial(steps.confirm, exc, r.place, r.posted_before))
            else:
                self._leave(steps, _raising(exc))
        except GraphTransient as exc:
            if exc.throttled:
                steps.throttled(exc)  # every worker pauses now; the row tries again later
                self._leave(steps, None)
            else:
                self._leave(steps, _raising(exc))
        except GraphError as exc:
            self._leave(steps, _raising(exc))
        return _LEFT

    def _leave(self, steps: RowSteps, first: Attempt | None) -> None:
        """The row goes on alone, holding its lease, as a lone row would hold it."""
        self.alone.append(Alone(steps, first))


def _raising(error: GraphError) -> Attempt:
    def attempt() -> RowState | None:
        raise error

    return attempt


class _Left:
    """A call's answer took its row off the common way."""


_LEFT = _Left()
