"""The Graph calls meetreg makes, over an injected `httpx.Client`.

Every answer other than the expected success, and every transport failure, becomes one of
worker.errors' Graph errors in `_error_from`, the single place where httpx and HTTP
statuses are interpreted.
"""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from worker import keys
from worker.errors import (
    ConfigError,
    GraphAuthError,
    GraphError,
    GraphPermanent,
    GraphTransient,
)
from worker.graph.auth import BearerAuth
from worker.graph.batching import EnvelopeSender
from worker.graph.credentials import build_token_source
from worker.graph.delegated import DelegatedTokenSource, SignedInUser
from worker.graph.retry_after import parse_retry_after
from worker.settings import Settings
from worker.telemetry import counters

EXTERNAL_REGISTRATION = "#microsoft.graph.externalMeetingRegistration"
_ODATA_NAMESPACE = "microsoft.graph."
_MAX_MESSAGE = 300
_CONNECT_TIMEOUT_S = 10.0
# Failures before the request was written: Graph cannot have acted on it.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class Registration:
    """A meeting's registration as Graph reported it."""

    id: str
    kind: str  # "externalMeetingRegistration" (ours), "meetingRegistration", or "" if untyped
    allowed_registrant: str | None
    request_id: str | None
    status: int


@dataclass(frozen=True, slots=True)
class Deletion:
    """Graph's answer to a DELETE of a registration: `removed` (204), or nothing was there
    (404)."""

    removed: bool
    status: int
    request_id: str | None


class GraphClient:
    """The registration, user and meeting calls; every method raises GraphError subclasses.

    `http` carries authentication, timeouts and limits (see `build_http_client`);
    `base_url` is GRAPH_BASE_URL, e.g. https://graph.microsoft.com/beta.

    With `signed_in` (a delegated token), meeting calls go to `/me/...`: a row's user_id
    must name the signed-in organizer, else the call raises GraphPermanent
    (`NotSignedInOrganizer`) without reaching Graph, so no row is ever sent on behalf of
    someone it does not name.
    """

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        *,
        batch: EnvelopeSender | None = None,
        signed_in: Callable[[], SignedInUser] | None = None,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.batch = batch  # when set, calls travel as items of $batch requests
        self.signed_in = signed_in

    def create_registration(
        self, user_id: str, meeting_id: str, allowed_registrant: str
    ) -> Registration:
        """POST an external registration; Graph's 200/201 as a Registration.

        Raises GraphPermanent (409 or 400 when one exists, 403 without the access policy,
        404 ...), GraphTransient (ambiguous when Graph may have created it, an unreadable
        2xx included), GraphAuthError.
        """
        return self.start_create_registration(user_id, meeting_id, allowed_registrant)()

    def get_registration(self, user_id: str, meeting_id: str) -> Registration | None:
        """The meeting's registration, or None when Graph answers 404."""
        return self.start_get_registration(user_id, meeting_id)()

    def start_create_registration(
        self, user_id: str, meeting_id: str, allowed_registrant: str
    ) -> Callable[[], Registration]:
        """`create_registration`, sent now (queued for a `$batch`, with batching on) and
        answered when the returned function is called: many calls from one thread share
        envelopes. Raises what `create_registration` raises, from either call."""
        body = {"@odata.type": EXTERNAL_REGISTRATION, "allowedRegistrant": allowed_registrant}
        path = keys.registration_path(user_id, meeting_id, me=self._as_me(user_id))
        answer = self.start("POST", path, body=body)

        def created() -> Registration:
            response = answer()
            if response.status_code not in (200, 201):
                raise _unexpected(response, ambiguous=True)
            return _registration(response, ambiguous=True)

        return created

    def start_get_registration(
        self, user_id: str, meeting_id: str
    ) -> Callable[[], Registration | None]:
        """`get_registration`, sent now and answered later (see start_create_registration)."""
        path = keys.registration_path(user_id, meeting_id, me=self._as_me(user_id))
        answer = self.start("GET", path, missing_ok=True)

        def found() -> Registration | None:
            response = answer()
            if response.status_code == 404:
                return None
            return _registration(response, ambiguous=False)

        return found

    def delete_registration(self, user_id: str, meeting_id: str) -> Deletion:
        """DELETE the meeting's registration: removed (204), or none there (404).

        DELETE is idempotent, so a repeat after an ambiguous failure does no harm.
        Raises GraphPermanent (403, 400, ...), GraphTransient, GraphAuthError.
        """
        response = self.send(
            "DELETE",
            keys.registration_path(user_id, meeting_id, me=self._as_me(user_id)),
            missing_ok=True,
        )
        return Deletion(
            removed=response.status_code != 404,
            status=response.status_code,
            request_id=request_id(response),
        )

    def meeting_exists(self, user_id: str, meeting_id: str) -> bool:
        """Whether the organizer has this meeting (GET the onlineMeeting; 404: no). A 404 on
        the registration cannot tell "no registration" from "no meeting"; this can."""
        response = self.send(
            "GET",
            keys.online_meeting_path(user_id, meeting_id, me=self._as_me(user_id)),
            query={"$select": "id"},
            missing_ok=True,
        )
        return response.status_code != 404

    def resolve_user_id(self, upn: str) -> str:
        """The objectId of the user with this UPN (404 GraphPermanent if there is none).

        Delegated, the signed-in organizer's own, without a call (reading other users
        needs a permission delegated mode does not ask for).
        """
        if self.signed_in is not None:
            self._as_me(upn)
            return self.signed_in().object_id
        response = self.send("GET", keys.user_path(upn), query={"$select": "id"})
        return string_field(json_object(response, ambiguous=False), "id", response)

    def find_meeting_id(self, user_id: str, join_web_url: str) -> str:
        """The id of the organizer's meeting with this join link.

        Raises GraphPermanent(404, "MeetingNotFound") when the organizer has none.
        """
        quoted = join_web_url.replace("'", "''")  # OData string literal
        response = self.send(
            "GET",
            keys.online_meetings_path(user_id, me=self._as_me(user_id)),
            query={"$filter": f"JoinWebUrl eq '{quoted}'"},
        )
        meetings = json_object(response, ambiguous=False).get("value")
        if not isinstance(meetings, list):
            raise _unexpected(response, ambiguous=False)
        if not meetings:
            raise GraphPermanent(
                "no meeting with this join link under this organizer",
                status=404,
                code="MeetingNotFound",
                request_id=request_id(response),
            )
        first = meetings[0]
        if not isinstance(first, dict):
            raise _unexpected(response, ambiguous=False)
        return string_field(first, "id", response)

    def _as_me(self, user_id: str) -> bool:
        """Whether calls about this organizer go to `/me`; raises GraphPermanent when a
        delegated token would act for someone other than the row's organizer."""
        if self.signed_in is None:
            return False
        user = self.signed_in()
        if not user.matches(user_id):
            raise GraphPermanent(
                f"the row's organizer {user_id} is not the signed-in user {user}; with "
                "MEETREG_AUTH=delegated every row must be a meeting of whoever ran "
                "`meetreg login`",
                code="NotSignedInOrganizer",
            )
        return True

    def sign_in(self) -> None:
        """Get the first token now, before any request: 32 threads must not find out
        together, then send together (a burst a per-second limit would count)."""
        auth = self.http.auth
        if isinstance(auth, BearerAuth):
            auth.source.token()

    def close(self) -> None:
        """Close the connections, and the token source's login session if it has one."""
        if self.batch is not None:
            self.batch.close()
        self.http.close()
        auth = self.http.auth
        if isinstance(auth, BearerAuth):
            auth.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
        missing_ok: bool = False,
    ) -> httpx.Response:
        """Any Graph call, `path` relative to `base_url`; a 2xx answer (or a 404 with
        `missing_ok`), else the GraphError it means."""
        return self.start(method, path, body=body, query=query, missing_ok=missing_ok)()

    def start(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
        missing_ok: bool = False,
    ) -> Callable[[], httpx.Response]:
        """`send`, answered by the returned function. With batching on the call is queued
        for a `$batch` now; without, it is made when the function is called."""
        if query:
            # Spaces as %20, not "+": OData servers differ on "+" in a query string.
            path += "?" + "&".join(
                f"{name}={quote(value, safe='')}" for name, value in query.items()
            )
        client_request_id = str(uuid.uuid4())
        started = time.monotonic()
        queued = (
            self.batch.submit(method, path, body, client_request_id)
            if self.batch is not None
            else None
        )

        def answer() -> httpx.Response:
            try:
                if queued is not None:
                    response = queued.result()
                else:
                    response = self.http.request(
                        method,
                        self.base_url + path,
                        json=body,
                        headers={"client-request-id": client_request_id},
                    )
            except httpx.RequestError as exc:  # transport errors, and undecodable bodies
                seconds = time.monotonic() - started
                counters.count_graph_call(method, None, seconds, throttled=False)
                raise _error_from(exc, client_request_id) from exc
            return self._checked(response, method, started, client_request_id, missing_ok)

        return answer

    @staticmethod
    def _checked(
        response: httpx.Response,
        method: str,
        started: float,
        client_request_id: str,
        missing_ok: bool,
    ) -> httpx.Response:
        seconds = _elapsed_s(response, started)
        if response.is_success or (missing_ok and response.status_code == 404):
            counters.count_graph_call(method, response.status_code, seconds, throttled=False)
            return response
        error = _error_from(response, client_request_id)
        throttled = isinstance(error, GraphTransient) and error.throttled
        counters.count_graph_call(method, response.status_code, seconds, throttled=throttled)
        raise error


def _elapsed_s(response: httpx.Response, started: float) -> float:
    """The request's own time: httpx's, or for a $batch item its envelope's (EnvelopeSender
    sets it); else since `started`."""
    try:
        return response.elapsed.total_seconds()
    except RuntimeError:  # httpx: not set on a response built by hand
        return time.monotonic() - started


def _error_from(outcome: httpx.Response | httpx.RequestError, client_request_id: str) -> GraphError:
    """The one translation from an httpx failure or a non-2xx answer to the error tree."""
    if isinstance(outcome, httpx.RequestError):
        kind = type(outcome).__name__
        detail = _one_line(str(outcome)) or "no detail"
        return GraphTransient(
            f"Graph request failed ({kind}: {detail})",
            request_id=client_request_id,
            ambiguous=not isinstance(outcome, _NOT_SENT),
        )
    status = outcome.status_code
    code, message, body_request_id = _error_body(outcome)
    fields: dict[str, Any] = {
        "status": status,
        "code": code,
        "request_id": outcome.headers.get("request-id") or body_request_id or client_request_id,
    }
    message = message or f"HTTP {status} {outcome.reason_phrase}".strip()
    retry_after_s = parse_retry_after(outcome.headers.get("Retry-After"))
    if status == 429:
        return GraphTransient(message, **fields, retry_after_s=retry_after_s, throttled=True)
    if status >= 500:
        # 500/502/503/504 and their rarer siblings may come after Graph acted; a 503 with
        # Retry-After is throttling too.
        throttled = status == 503 and retry_after_s is not None
        return GraphTransient(
            message, **fields, retry_after_s=retry_after_s, throttled=throttled, ambiguous=True
        )
    if status == 401:
        return GraphAuthError(message, **fields)
    return GraphPermanent(message, **fields)


def _error_body(response: httpx.Response) -> tuple[str | None, str, str | None]:
    """Graph's error `code`, `message` (one line, short) and `innerError.request-id`."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):  # not JSON, or JSON but not an object
        return None, "", None
    if not isinstance(error, dict):
        return None, "", None
    code = error.get("code")
    message = error.get("message")
    inner = error.get("innerError")
    request_id = inner.get("request-id") if isinstance(inner, dict) else None
    return (
        code if isinstance(code, str) and code else None,
        _one_line(message) if isinstance(message, str) else "",
        request_id if isinstance(request_id, str) and request_id else None,
    )


def _registration(response: httpx.Response, *, ambiguous: bool) -> Registration:
    body = json_object(response, ambiguous=ambiguous)
    registration_id = body.get("id")
    if not isinstance(registration_id, str) or not registration_id:
        raise _unexpected(response, ambiguous=ambiguous)
    odata_type = body.get("@odata.type")
    registrant = body.get("allowedRegistrant")
    return Registration(
        id=registration_id,
        kind=_kind(odata_type),
        allowed_registrant=registrant if isinstance(registrant, str) else None,
        request_id=request_id(response),
        status=response.status_code,
    )


def _kind(odata_type: object) -> str:
    """ "#microsoft.graph.meetingRegistration" -> "meetingRegistration"; "" when absent."""
    if not isinstance(odata_type, str):
        return ""
    return odata_type.removeprefix("#").removeprefix(_ODATA_NAMESPACE)


def json_object(response: httpx.Response, *, ambiguous: bool) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:  # not JSON, or not UTF-8
        body = None
    if not isinstance(body, dict):
        raise _unexpected(response, ambiguous=ambiguous)
    return body


def string_field(body: dict[str, Any], name: str, response: httpx.Response) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _unexpected(response, ambiguous=False)
    return value


def _unexpected(response: httpx.Response, *, ambiguous: bool) -> GraphTransient:
    """A success Graph would not send (no JSON, no id): a proxy or a broken gateway, most
    likely; worth another try, after a look if it may have acted."""
    return GraphTransient(
        f"unexpected answer from Graph: HTTP {response.status_code} "
        f"{response.headers.get('content-type', 'without content type')}",
        status=response.status_code,
        request_id=request_id(response),
        ambiguous=ambiguous,
    )


def request_id(response: httpx.Response) -> str | None:
    """Graph's request-id, else the client-request-id we sent (support can search both)."""
    found: str | None = response.headers.get("request-id") or response.request.headers.get(
        "client-request-id"
    )
    return found


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 1] + "…"


def build_http_client(settings: Settings, auth: httpx.Auth | None) -> httpx.Client:
    """The production httpx client: explicit timeouts, a pool as large as the concurrency,
    trusting Settings.graph_ca (SSL_CERT_FILE or SSL_CERT_DIR, from the environment or a
    `.env`). Raises ConfigError when that CA cannot be read.

    `trust_env` keeps HTTPS_PROXY / NO_PROXY working.
    """
    timeout_s = settings.request_timeout_s
    size = settings.concurrency
    return httpx.Client(
        auth=auth,
        verify=_trust(settings.graph_ca),
        timeout=httpx.Timeout(timeout_s, connect=min(_CONNECT_TIMEOUT_S, timeout_s)),
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
        trust_env=True,
        headers={"Accept": "application/json", "User-Agent": f"meetreg/{_version()}"},
    )


def _trust(ca: Path | None) -> ssl.SSLContext | bool:
    if ca is None:
        return True  # httpx's own bundle
    try:
        if ca.is_dir():
            return ssl.create_default_context(capath=str(ca))
        return ssl.create_default_context(cafile=str(ca))
    except (OSError, ssl.SSLError) as exc:
        name = "SSL_CERT_DIR" if ca.is_dir() else "SSL_CERT_FILE"
        raise ConfigError(f"{name}: cannot read {ca} as CA certificates ({exc})") from None


def build_graph_client(settings: Settings) -> GraphClient:
    """A GraphClient with the configured tokens (MEETREG_AUTH). Raises ConfigError."""
    source = build_token_source(settings)
    http = build_http_client(settings, BearerAuth(source))
    envelopes = None
    if settings.envelope_size > 1:
        envelopes = EnvelopeSender(
            http,
            settings.graph_base_url,
            max_items=settings.envelope_size,
            max_in_flight=settings.concurrency,
        )
    return GraphClient(
        http, settings.graph_base_url, batch=envelopes, signed_in=signed_in_user(source)
    )


def signed_in_user(source: object) -> Callable[[], SignedInUser] | None:
    """Who a delegated source's tokens act for (None for app-only tokens): what the
    GraphClient checks rows against and sends to `/me`."""
    return source.signed_in_user if isinstance(source, DelegatedTokenSource) else None


def _version() -> str:
    try:
        return version("meetreg")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0"
