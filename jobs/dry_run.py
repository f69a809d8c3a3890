"""`--dry-run`: what a file would do, row by row, without a single POST.

Each row is validated as for a real run, its UPN and join link resolved, and its meeting's
registration read (GET), through the same Graph client and the same shared rate limit as
the workers; then it is forecast:

    would_create     no registration yet: a run would POST and create one
    already_enabled  the meeting has a registration (a Microsoft-hosted one says so)
    would_fail       Graph refused a read (404 no such meeting, 403 no access policy, ...)
    skipped          a duplicate row of the file, or a meeting an earlier batch did
    invalid          the row itself is wrong

Nothing is recorded and nothing is enqueued. A credential Graph refuses ends the dry run
as a configuration error: every row would say the same.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from itertools import islice
from typing import TextIO, TypeVar

from jobs.enqueue import to_records
from jobs.report import neutralised
from worker.errors import ApiRetired, GraphError, GraphPermanent, GraphTransient
from worker.graph.client import GraphClient
from worker.models import Operation, RowRecord, RowState
from worker.protocol.deps import Deps
from worker.protocol.retry_policy import Attempts, GiveUp, GiveUpReason
from worker.validation import SourceRow

T = TypeVar("T")

WINDOW_ROWS = 1_000  # rows forecast at once: memory stays flat in the file's size


class Forecast(StrEnum):
    WOULD_CREATE = "would_create"
    ALREADY_ENABLED = "already_enabled"
    WOULD_REGISTER = "would_register"  # a webinar registrant's row
    ALREADY_REGISTERED = "already_registered"
    WOULD_FAIL = "would_fail"
    SKIPPED = "skipped"
    INVALID = "invalid"


_WOULD_MAKE = {Operation.CREATE: Forecast.WOULD_CREATE, Operation.REGISTER: Forecast.WOULD_REGISTER}
_FOUND = {
    Operation.CREATE: Forecast.ALREADY_ENABLED,
    Operation.REGISTER: Forecast.ALREADY_REGISTERED,
}
DRY_RUN = "dry-run"  # the batch a dry run's webinars are read for, once


@dataclass(frozen=True, slots=True)
class RowForecast:
    line: int
    user_id: str
    meeting_id: str
    forecast: Forecast
    http_status: int | None = None
    reason: str = ""
    request_id: str = ""


COLUMNS = ("line", "user_id", "meeting_id", "forecast", "http_status", "reason", "request_id")
# A registrant's row: its person and webinar in the places of the user and the meeting.
REGISTRANT_COLUMNS = ("line", "email", "webinar_id", *COLUMNS[3:])


def forecast_rows(rows: Iterable[SourceRow], deps: Deps, *, threads: int) -> Iterator[RowForecast]:
    """Forecast every row, in the file's order, `threads` Graph reads at a time."""
    records = to_records(rows)
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="dry-run") as pool:
        while window := list(islice(records, WINDOW_ROWS)):
            yield from pool.map(lambda record: forecast_row(record, deps), window)


def forecast_row(record: RowRecord, deps: Deps) -> RowForecast:
    """One row's forecast. Raises GraphAuthError (no token, or a fresh one refused), and
    ApiRetired when Graph answers that the target's API is retired: every row would say so."""
    who, what = _names(record)
    if record.status is RowState.INVALID:
        return RowForecast(record.line, who, what, Forecast.INVALID, reason=record.error)
    if record.status is RowState.SKIPPED:
        return RowForecast(record.line, who, what, Forecast.SKIPPED, reason=record.error)
    attempts, policy = Attempts(), deps.retry_policy
    while True:
        try:
            return _read(record, deps)
        except (GraphPermanent, GraphTransient) as exc:
            operation = _operation(record)
            if retired := deps.target_for(operation).retirement(exc):
                raise ApiRetired(retired) from None
            decision = attempts.decide(exc, policy)
            if isinstance(decision, GiveUp):
                reason = exc.describe()
                if decision.reason is GiveUpReason.ATTEMPTS_USED_UP:
                    reason = f"Graph kept failing: {reason}"
                return _would_fail(record, exc, reason)
            if isinstance(exc, GraphTransient) and decision.throttled:
                deps.limiter.throttled(decision.wait_s, about_rate=exc.about_rate)
            else:
                deps.sleep(decision.wait_s)


def _would_fail(record: RowRecord, exc: GraphError, reason: str) -> RowForecast:
    who, what = _names(record)
    return RowForecast(
        record.line,
        who,
        what,
        Forecast.WOULD_FAIL,
        exc.status,
        reason,
        exc.request_id or "",
    )


class _Paced:
    """Graph reads made at the shared rate limit's pace (a `Caller`)."""

    def __init__(self, deps: Deps) -> None:
        self.limiter = deps.limiter
        self.store = deps.store

    def call(self, request: Callable[[], T]) -> T:
        self.limiter.acquire()
        return request()


def _read(record: RowRecord, deps: Deps) -> RowForecast:
    operation = _operation(record)
    target, paced = deps.target_for(operation), _Paced(deps)
    meeting_given = bool(record.meeting_id)  # not found from a join link, which proves it
    place = target.locate(record, paced)
    who, what = _names(record)
    what = what if record.webinar_id else place.item
    if deps.store.meeting(place.key).succeeded:
        return RowForecast(
            record.line, who, what, Forecast.SKIPPED, reason="done by an earlier batch"
        )
    verdict = target.judge(DRY_RUN, record, paced)
    if verdict.state is not None:
        forecast = Forecast.INVALID if verdict.state is RowState.INVALID else Forecast.WOULD_FAIL
        return RowForecast(record.line, who, what, forecast, reason=verdict.reason)
    graph = deps.graph
    if (
        meeting_given
        and isinstance(graph, GraphClient)
        and not paced.call(lambda: graph.meeting_exists(place.owner, place.item))
    ):
        return RowForecast(
            record.line,
            who,
            what,
            Forecast.WOULD_FAIL,
            404,
            "no such meeting under this organizer",
        )
    found = paced.call(lambda: target.look(place, record))
    if found is None:
        return RowForecast(record.line, who, what, _WOULD_MAKE[operation])
    return RowForecast(
        record.line,
        who,
        what,
        _FOUND[operation],
        found.status,
        target.mismatch(found),
        found.request_id or "",
    )


def _operation(record: RowRecord) -> Operation:
    """What a real run would do with the row: register a person, or create a registration."""
    return Operation.REGISTER if record.webinar_id else Operation.CREATE


def _names(record: RowRecord) -> tuple[str, str]:
    """The row's two names, as the forecast's columns show them: user and meeting (a
    registrant's: email and webinar)."""
    if record.webinar_id or record.email:
        return record.email, record.webinar_id
    return record.user_id, record.meeting_id or record.join_web_url


def write_forecasts(
    forecasts: Iterable[RowForecast], out: TextIO, *, registrants: bool = False
) -> dict[Forecast, int]:
    """The forecasts as CSV (cells a spreadsheet would run are neutralised); the counts.
    `registrants`: the file's rows are webinar registrants, and the columns say so."""
    counts = dict.fromkeys(Forecast, 0)
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(REGISTRANT_COLUMNS if registrants else COLUMNS)
    for item in forecasts:
        counts[item.forecast] += 1
        cells = (
            item.line,
            item.user_id,
            item.meeting_id,
            str(item.forecast),
            item.http_status,
            item.reason,
            item.request_id,
        )
        writer.writerow([neutralised("" if cell is None else cell) for cell in cells])
    return counts
