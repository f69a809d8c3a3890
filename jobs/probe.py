"""The probe before a batch is recorded: does Graph still answer the meeting registration
API, for one meeting of the batch, with the configured credentials?

Microsoft retired that API (docs/graph.md, The retirement): a tenant where it is gone, or
refused to app-only tokens, would see every row fail. One GET of one row's registration
tells, before anything is recorded or sent: `meetreg run` and `meetreg enqueue` refuse the
file then (exit 2, one line), `meetreg doctor --sample-meeting` reports the mode. What the
answer means is the target's to say (`MeetingRegistration.retirement`); a probe that cannot
tell (no credential, a transient failure, a row Graph refuses for its own reasons) says
`unknown`, and the command goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from itertools import islice

from worker.errors import ApiRetired, ConfigError, GraphError, GraphPermanent
from worker.graph.client import GraphClient, build_graph_client
from worker.protocol.targets.meeting_registration import MeetingRegistration, retired_how
from worker.settings import Settings
from worker.validation import RegistrationRequest, SourceRow, ValidRow, is_guid

log = logging.getLogger("jobs.probe")
# How far into a file to look for a row naming its organizer's objectId and its meeting id
# (one GET, nothing to resolve); past it, the first valid row is resolved instead.
SCAN_ROWS = 1000


class Mode(StrEnum):
    """What the probe found, in the words `meetreg doctor` shows."""

    LIVE = "live"
    GONE = "gone since 2024-12-12"
    APP_ONLY_REFUSED = "refused for app-only tokens"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Probe:
    """The mode, and `detail`: the operator's line when refused, why when unknown."""

    mode: Mode
    detail: str = ""

    @property
    def refused(self) -> bool:
        return self.mode in (Mode.GONE, Mode.APP_ONLY_REFUSED)


def refuse_retired(settings: Settings, rows: Iterable[SourceRow], *, graph: object = None) -> None:
    """Raise ApiRetired (one line: the reason and the way on) when the probe finds the API
    gone or refused; log why it could not tell, and return, when it is unknown. `graph`:
    a Graph client to probe through (a worker's, with its token), else one made here."""
    probe = probe_meeting_api(settings, rows, graph=graph)
    if probe.refused:
        raise ApiRetired(probe.detail)
    if probe.mode is Mode.UNKNOWN:
        log.warning("meeting registration API not checked (%s); going on", probe.detail)


def probe_meeting_api(
    settings: Settings, rows: Iterable[SourceRow], *, graph: object = None
) -> Probe:
    """Probe with one valid row of `rows`: the first naming an objectId and a meeting id
    among the first SCAN_ROWS, else the first valid row (its UPN and join link resolved)."""
    sample = _sample(rows)
    if sample is None:
        return Probe(Mode.UNKNOWN, "no valid row to probe with")
    if isinstance(graph, GraphClient):
        return _probe(graph, sample)
    return probe_meeting(settings, sample)


def probe_meeting(settings: Settings, request: RegistrationRequest) -> Probe:
    """GET the registration of `request`'s meeting with the configured credentials."""
    try:
        # One plain GET: no $batch envelope, no dispatcher thread for a single call.
        graph = build_graph_client(settings.model_copy(update={"envelope_size": 1}))
    except ConfigError as exc:
        return Probe(Mode.UNKNOWN, str(exc))
    try:
        return _probe(graph, request)
    finally:
        graph.close()


def _probe(graph: GraphClient, request: RegistrationRequest) -> Probe:
    try:
        user_id = request.user_id
        if not is_guid(user_id):
            user_id = graph.resolve_user_id(user_id)
        meeting_id = request.meeting_id or graph.find_meeting_id(
            user_id, request.join_web_url or ""
        )
    except GraphError as exc:  # not the registration API's answer: it tells nothing
        return Probe(Mode.UNKNOWN, f"finding the sample meeting: {_answer(exc)}")
    try:
        graph.get_registration(user_id, meeting_id)
    except GraphPermanent as exc:
        how = retired_how(exc)
        reason = MeetingRegistration(graph).retirement(exc)
        if how is None or reason is None:
            return Probe(Mode.UNKNOWN, f"the sample meeting's registration: {_answer(exc)}")
        return Probe(Mode(how.value), reason)
    except GraphError as exc:  # transient, or no token: the run finds out for itself
        return Probe(Mode.UNKNOWN, f"the sample meeting's registration: {_answer(exc)}")
    return Probe(Mode.LIVE)


def _sample(rows: Iterable[SourceRow]) -> RegistrationRequest | None:
    first: RegistrationRequest | None = None
    for row in islice(rows, SCAN_ROWS):
        if not isinstance(row, ValidRow) or not isinstance(row.request, RegistrationRequest):
            continue  # invalid, or a webinar registrant: nothing of the meeting API's
        request = row.request
        if is_guid(request.user_id) and request.meeting_id:
            return request
        first = first or request
    return first


def _answer(exc: GraphError) -> str:
    return f"HTTP {exc.status} {exc.describe()}" if exc.status else exc.describe()
