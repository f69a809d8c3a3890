"""The Teams webinar calls meetreg makes (Graph's virtual events), over a `GraphClient`.

A webinar, its registration questions, and its registrations: found by email, made, and
canceled; the signed-in organizer's webinars, and a draft's publication (both delegated
only). Every call raises worker.errors' Graph errors, as the client's do.

What the reference leaves open is handled every way it could go:
- an app-only POST of a registration answers 204 with no body and no id (a delegated one
  201 with the registration): a `Registrant` with an empty id stands for it;
- `$filter=email eq '...'` is a beta option; where Graph refuses it (400), the
  registrations are listed instead, page by page, and matched here;
- canceled registrations may stay listed: a look skips them, as it skips any not ours when
  one of ours is there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from worker import keys
from worker.errors import GraphPermanent
from worker.graph.client import GraphClient, json_object
from worker.graph.client import request_id as request_id_of

INACTIVE = frozenset({"canceled"})
"""A registration in one of these states no longer holds a place: a new POST may come."""
MAX_PAGES = 1_000  # a listing that long is a server going round in circles


@dataclass(frozen=True, slots=True)
class Registrant:
    """A person's registration for a webinar, as Graph showed (or made) it. `kind` is its
    status (registered, waitlisted, pendingApproval, ...), "" when Graph gave no body."""

    id: str
    kind: str
    external_id: str  # externalRegistrationInformation.registrationId: the caller's key
    email: str
    status: int  # the HTTP status of the answer
    request_id: str | None


@dataclass(frozen=True, slots=True)
class Question:
    """A registration question: `kind` is its answerInputType (text, multilineText,
    singleChoice, multiChoice, boolean; predefined questions are text)."""

    id: str
    label: str
    kind: str
    required: bool
    choices: tuple[str, ...] = ()
    predefined: bool = False  # Graph's own (city, jobTitle, ...), named by its label


@dataclass(frozen=True, slots=True)
class Webinar:
    """What a registration needs to know of its webinar."""

    id: str
    status: str  # draft, published, canceled
    audience: str  # everyone, organization
    questions: tuple[Question, ...]
    http_status: int = 200  # the answer that showed it
    request_id: str | None = None
    subject: str = ""  # its displayName


@dataclass(frozen=True, slots=True)
class Published:
    """A webinar as a publication sees it: `kind` its status (draft, published, canceled),
    the answer's HTTP status and request id (a Found, worker.protocol.target)."""

    id: str
    kind: str
    status: int
    request_id: str | None


@dataclass(frozen=True, slots=True)
class Cancellation:
    """Graph's answer to a registration's cancel: 204 canceled it; 404: nothing there."""

    removed: bool
    status: int
    request_id: str | None


class WebinarClient:
    """The webinar calls, over `graph` (its auth, `$batch` envelopes, error mapping)."""

    def __init__(self, graph: GraphClient) -> None:
        self.graph = graph

    def webinar(self, webinar_id: str) -> Webinar | None:
        """The webinar (its questions not yet read); None when Graph does not know it."""
        return self.start_webinar(webinar_id)()

    def start_webinar(self, webinar_id: str) -> Callable[[], Webinar | None]:
        """`webinar`, sent now and answered by the function returned."""
        answer = self.graph.start("GET", keys.webinar_path(webinar_id), missing_ok=True)

        def found() -> Webinar | None:
            response = answer()
            if response.status_code == 404:
                return None
            body = json_object(response, ambiguous=False)
            return _webinar(body, webinar_id, response)

        return found

    def my_webinars(self, role: str = "organizer") -> list[Webinar]:
        """The signed-in user's webinars in `role` (organizer, coOrganizer), every page;
        delegated only (Graph refuses an application token)."""
        found = []
        for response in self._pages(keys.webinars_by_role_path(role)):
            for item in _items(json_object(response, ambiguous=False)):
                if isinstance(item, dict) and _text(item.get("id")):
                    found.append(_webinar(item, _text(item.get("id")), response))
        return found

    def publish(self, webinar_id: str) -> Published:
        return self.start_publish(webinar_id)()

    def start_publish(self, webinar_id: str) -> Callable[[], Published]:
        """POST .../webinars/{id}/publish (no body, 204); delegated, the organizer only.
        Raises GraphPermanent for a refusal (403 not the organizer, 400 canceled)."""
        answer = self.graph.start("POST", keys.webinar_publish_path(webinar_id))

        def published() -> Published:
            response = answer()
            return Published(webinar_id, "published", response.status_code, _rid(response))

        return published

    def questions(self, webinar_id: str) -> tuple[Question, ...]:
        """The webinar's registration questions, predefined and custom."""
        path = keys.webinar_path(webinar_id) + "/registrationConfiguration/questions"
        body = json_object(self.graph.send("GET", path), ambiguous=False)
        return tuple(_question(item) for item in _items(body) if isinstance(item, dict))

    def find_registration(self, webinar_id: str, email: str, ours: str = "") -> Registrant | None:
        return self.start_find_registration(webinar_id, email, ours)()

    def start_find_registration(
        self, webinar_id: str, email: str, ours: str = ""
    ) -> Callable[[], Registrant | None]:
        """The person's registration that holds a place (ours, `ours` being its external
        id, before any other), or None. Sent now, answered by the function returned."""
        path = keys.webinar_registrations_path(webinar_id)
        quoted = email.replace("'", "''")
        answer = self.graph.start("GET", path, query={"$filter": f"email eq '{quoted}'"})

        def found() -> Registrant | None:
            try:
                response = answer()
            except GraphPermanent as exc:
                if exc.status != 400:
                    raise
                # $filter refused (v1.0 takes no OData options): list them all.
                return _pick(self._listed(path), email, ours)
            return _pick(_registrants(response), email, ours)

        return found

    def _listed(self, path: str) -> Iterator[Registrant]:
        for response in self._pages(path):
            yield from _registrants(response)

    def _pages(self, path: str) -> Iterator[httpx.Response]:
        """A listing's pages, following `@odata.nextLink` on this client's root only."""
        response = self.graph.send("GET", path)
        for _ in range(MAX_PAGES):
            yield response
            link = json_object(response, ambiguous=False).get("@odata.nextLink")
            if not isinstance(link, str) or not link.startswith(self.graph.base_url + "/"):
                return
            response = self.graph.send("GET", link.removeprefix(self.graph.base_url))

    def register(self, webinar_id: str, body: dict[str, Any]) -> Registrant:
        return self.start_register(webinar_id, body)()

    def start_register(self, webinar_id: str, body: dict[str, Any]) -> Callable[[], Registrant]:
        """POST the registration; 204 (app-only: no body) or 201 (delegated) as a
        Registrant. Raises GraphPermanent for a refusal, GraphTransient (ambiguous) when
        Graph may have registered the person without saying so."""
        answer = self.graph.start("POST", keys.webinar_registrations_path(webinar_id), body=body)
        external = body.get("externalRegistrationInformation", {}).get("registrationId", "")
        email = str(body.get("email", ""))

        def registered() -> Registrant:
            response = answer()
            if response.status_code == 204 or not response.content:
                return Registrant("", "", external, email, response.status_code, _rid(response))
            made = _registrant(json_object(response, ambiguous=True), response)
            if not made.id:
                raise GraphPermanent(
                    "Graph answered the registration without its id",
                    status=response.status_code,
                    request_id=_rid(response),
                )
            return made

        return registered

    def cancel_registration(self, webinar_id: str, registration_id: str) -> Cancellation:
        """POST .../registrations/{id}/cancel: 204 canceled, 404 nothing there."""
        path = keys.webinar_registration_path(webinar_id, registration_id) + "/cancel"
        response = self.graph.send("POST", path, missing_ok=True)
        return Cancellation(response.status_code != 404, response.status_code, _rid(response))


def _webinar(body: dict[str, Any], webinar_id: str, response: httpx.Response) -> Webinar:
    return Webinar(
        webinar_id,
        _text(body.get("status")),
        _text(body.get("audience")),
        (),
        http_status=response.status_code,
        request_id=_rid(response),
        subject=_text(body.get("displayName")),
    )


def _rid(response: httpx.Response) -> str | None:
    return request_id_of(response)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _items(body: dict[str, Any]) -> list[Any]:
    value = body.get("value")
    return value if isinstance(value, list) else []


def _question(item: dict[str, Any]) -> Question:
    choices = item.get("answerChoices")
    return Question(
        id=_text(item.get("id")),
        label=_text(item.get("displayName")) or _text(item.get("label")),
        kind=_text(item.get("answerInputType")) or "text",
        required=item.get("isRequired") is True,
        predefined="Predefined" in _text(item.get("@odata.type")) or "label" in item,
        choices=tuple(c for c in choices if isinstance(c, str))
        if isinstance(choices, list)
        else (),
    )


def _registrant(item: dict[str, Any], response: httpx.Response) -> Registrant:
    external = item.get("externalRegistrationInformation")
    return Registrant(
        id=_text(item.get("id")),
        kind=_text(item.get("status")),
        external_id=_text(external.get("registrationId")) if isinstance(external, dict) else "",
        email=_text(item.get("email")),
        status=response.status_code,
        request_id=_rid(response),
    )


def _registrants(response: httpx.Response) -> Iterator[Registrant]:
    for item in _items(json_object(response, ambiguous=False)):
        if isinstance(item, dict):
            yield _registrant(item, response)


def _pick(registrants: Iterator[Registrant], email: str, ours: str) -> Registrant | None:
    """The registration that holds the person's place: ours first, else the first."""
    wanted = email.casefold()
    first = None
    for registrant in registrants:
        if registrant.email.casefold() != wanted or registrant.kind in INACTIVE:
            continue
        if ours and registrant.external_id == ours:
            return registrant
        first = first or registrant
    return first
