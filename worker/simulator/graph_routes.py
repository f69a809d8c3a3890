"""Graph under `/beta` and `/v1.0`: route on the raw path, then authenticate, fault, and answer.

A request's path arrives already split into percent-decoded segments (see `app`), so an id
holding `/`, `?`, `#` or `..` is one segment and can only ever name what its place in the
path names (`paths` holds the route table, the same under both roots but for the
beta-only registration).

Each request: simulated latency, bearer check (401), the fault plan (scripts, rate limit,
random faults), then the operation on the state (events and subscriptions in
`calendar_routes`, Teams webinars in `webinar_routes`); commit-then-timeout and
commit-then-500 faults do the operation first and spoil the answer after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import Response

from worker.simulator.calendar_routes import CalendarRoutes
from worker.simulator.directory import NO_POLICY
from worker.simulator.errors import GraphFailure
from worker.simulator.faults import Fault
from worker.simulator.paths import WEBINAR_KINDS, GraphRoute, match_route, unknown_segment
from worker.simulator.responses import Reply
from worker.simulator.state import SimulatorState
from worker.simulator.webhooks import Webhooks
from worker.simulator.webinar_routes import WebinarRoutes

BATCH_LIMIT = 20
# A batch item's url is relative to the version, with or without a leading "/"; one with a
# scheme or a host ("https://...", "//host/...") is not.
_ABSOLUTE_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:|//)")
_JOIN_URL_FILTER = re.compile(r"^\s*(?i:joinWebUrl)\s+eq\s+'((?:[^']|'')*)'\s*$")
# Codes Graph uses for the statuses a fault can produce.
_FAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "The request is invalid."),
    401: ("InvalidAuthenticationToken", "Access token has expired or is not yet valid."),
    403: ("Forbidden", NO_POLICY),
    404: ("NotFound", "The requested resource does not exist."),
    429: ("TooManyRequests", "Too many requests; retry after the time in Retry-After."),
    500: ("UnknownError", "An internal server error occurred."),
    502: ("BadGateway", "The upstream service returned an invalid response."),
    503: ("ServiceNotAvailable", "The service is temporarily unavailable."),
    504: ("GatewayTimeout", "The upstream service did not answer in time."),
}
_EMAIL_FILTER = re.compile(r"^\s*email\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)
_CALENDAR_KINDS = frozenset({"events", "event", "subscriptions", "subscription"})


def parse_join_url_filter(expression: str) -> str:
    """The join link in `JoinWebUrl eq '...'` (OData: a quote inside is doubled).

    Raises GraphFailure 400 for any other filter.
    """
    found = _JOIN_URL_FILTER.match(expression)
    if found is None:
        raise GraphFailure(400, "BadRequest", f"Invalid filter clause: {expression!r}")
    return found.group(1).replace("''", "'")


class GraphRoutes:
    """Answers Graph requests from a SimulatorState; `stall` waits out a simulated hang."""

    def __init__(
        self,
        state: SimulatorState,
        stall: Callable[[float], Awaitable[None]],
        webhooks: Webhooks,
    ) -> None:
        self.state = state
        self.stall = stall
        self.calendar = CalendarRoutes(state, webhooks)
        self.webinars = WebinarRoutes(state)
        self._shuffle = random.Random()

    async def handle(self, request: Request, segments: list[str], raw_path: str) -> Response:
        """Answer one request whose path starts with a Graph root (/beta or /v1.0)."""
        method = request.method
        query = dict(
            parse_qsl(
                request.scope["query_string"].decode("utf-8", "replace"), keep_blank_values=True
            )
        )
        route = match_route(segments[1:], segments[0])
        if route is None:
            reply = Reply.failure(_unknown_segment(segments[1:], segments[0]))
            key = None
        else:
            key = self._key(route, query)
            body = await request.body() if method in ("POST", "PATCH", "PUT") else b""
            # A $batch envelope is not a call: its items arrive, count and throttle one by
            # one (in `_batch_item`), as Graph counts them.
            envelope = route.kind == "batch"
            if envelope:
                self.state.envelope_arrives()
            else:
                self.state.arrive(_caller_key(route, query, body, key))
            try:
                # Graph counts and acts on a request when it arrives; the latency is the
                # time its answer takes to come back. So the service's own rate limit
                # sees requests in the order and at the pace they were sent.
                reply = await self._answer(
                    method, route, query, body, _bearer(request), key, request
                )
                latency_s = self.state.latency_s()
                if latency_s:
                    await asyncio.sleep(latency_s)
            finally:
                if envelope:
                    self.state.envelope_leaves()
                else:
                    self.state.leave()
        if route is not None:
            key = _caller_key(route, query, body, key)
        self.state.record(
            method, raw_path, reply.status, key=key, retry_after_s=reply.retry_after_s
        )
        return reply.to_response(str(uuid.uuid4()), request.headers.get("client-request-id"))

    def _key(self, route: GraphRoute, query: Mapping[str, str]) -> str | None:
        """What scripts and Retry-After bookkeeping are keyed on: the meeting, event,
        subscription or webinar, else the user; the subscriptions collection is
        "subscriptions", the webinars collection "webinars"."""
        if route.kind in WEBINAR_KINDS:
            return route.item_id or "webinars"
        if route.kind in ("registration", "meeting", "event", "subscription"):
            return route.item_id
        if route.kind == "subscriptions":
            return "subscriptions"
        if route.kind == "meetings":
            try:
                return self.state.meeting_for_join_url(
                    parse_join_url_filter(query.get("$filter", ""))
                )
            except GraphFailure:
                return None
        if route.kind in ("user", "events"):
            return route.user_id
        return None

    async def _answer(
        self,
        method: str,
        route: GraphRoute,
        query: Mapping[str, str],
        body: bytes,
        token: str | None,
        key: str | None,
        request: Request,
    ) -> Reply:
        if method not in route.methods:
            return Reply(
                405, code="BadRequest", message=f"The {method} method is not allowed here."
            )
        if not self.state.token_valid(token):
            return _fault_reply(Fault(401))
        if route.kind == "batch":
            return await self._batch(body, token, request)
        fault = self.state.admit(key, method)
        if fault is not None and fault.status is not None:
            return _fault_reply(fault)
        try:
            reply = await self._operate(method, route, query, body, token, request)
        except GraphFailure as failure:
            reply = Reply.failure(failure)
        if fault is not None and fault.commit == "timeout":
            # Done, but the answer comes too late: the client's view is ambiguous.
            await self.stall(self.state.stall_s())
        elif fault is not None and fault.commit == "500":
            reply = _fault_reply(Fault(500))
        return reply

    async def _operate(
        self,
        method: str,
        route: GraphRoute,
        query: Mapping[str, str],
        body: bytes,
        token: str | None,
        request: Request,
    ) -> Reply:
        state = self.state
        base = _graph_base(request)
        acting = state.token_subject(token)  # a delegated token's user, else None
        user_id = route.user_id
        if route.me:
            if acting is None:
                raise GraphFailure(
                    400,
                    "BadRequest",
                    "/me request is only valid with delegated authentication flow.",
                )
            user_id = acting
        if route.kind in WEBINAR_KINDS:
            # Only a registration POST has a body; publish and cancel take none.
            registering = route.kind == "webinar_registrations" and method == "POST"
            payload = _json_object(body) if registering else {}
            return self.webinars.answer(method, route, query, payload, acting, base)
        if route.kind in _CALENDAR_KINDS:
            payload = _json_object(body) if method in ("POST", "PATCH") else {}
            return await self.calendar.answer(method, route, query, payload, base)
        if route.kind == "user":
            user = state.find_user(route.user_id)
            select = [f.strip() for f in query.get("$select", "").split(",") if f.strip()]
            if select:
                user = {k: v for k, v in user.items() if k in select}
            return Reply(200, {"@odata.context": f"{base}/$metadata#users/$entity", **user})
        if route.kind == "meetings":
            if "$filter" not in query:
                raise GraphFailure(400, "BadRequest", "A $filter on JoinWebUrl is required.")
            join_url = parse_join_url_filter(query["$filter"])
            meetings = state.find_meetings(user_id, join_url, acting)
            context = f"{base}/$metadata#users('{user_id}')/onlineMeetings"
            return Reply(200, {"@odata.context": context, "value": meetings})
        meeting = f"users('{user_id}')/onlineMeetings('{route.meeting_id}')"
        if route.kind == "meeting":
            found = state.get_meeting(user_id, route.meeting_id, acting)
            return Reply(200, {"@odata.context": f"{base}/$metadata#{meeting}", **found})
        state.refuse_retired_registration(acting)  # the API itself may be gone
        context = f"{base}/$metadata#{meeting}/registration"
        if method == "GET":
            return Reply(
                200,
                {
                    "@odata.context": context,
                    **state.get_registration(user_id, route.meeting_id, acting),
                },
            )
        if method == "DELETE":
            state.delete_registration(user_id, route.meeting_id, acting)
            return Reply(204)
        registration = state.register(user_id, route.meeting_id, _json_object(body), acting)
        return Reply(201, {"@odata.context": context, **registration})

    async def _batch(self, body: bytes, token: str | None, request: Request) -> Reply:
        """`POST /$batch`: at most 20 requests, each faulted and throttled on its own."""
        try:
            items = _batch_items(_json_object(body))
        except GraphFailure as failure:
            return Reply.failure(failure)
        # Graph runs a batch's items side by side (no `dependsOn` here): a stalled item
        # delays the answer, never the execution of the items beside it. Run one after the
        # other, a stall would have later items executed long after the client gave up on
        # the envelope, after its GET had looked: a late POST no client could see coming.
        responses = list(
            await asyncio.gather(*(self._batch_item(item, token, request) for item in items))
        )
        # Graph answers in any order; so does the simulator, so clients cannot rely on one.
        self._shuffle.shuffle(responses)
        return Reply(200, {"responses": responses})

    async def _batch_item(
        self, item: Mapping[str, Any], token: str | None, request: Request
    ) -> dict[str, Any]:
        method = str(item["method"]).upper()
        raw_path, _, raw_query = str(item["url"]).partition("?")
        raw_path = "/" + raw_path.removeprefix("/")  # Graph takes the url with or without it
        segments = [unquote(s, errors="replace") for s in raw_path.split("/")[1:]]
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        body = json.dumps(item["body"]).encode() if "body" in item else b""
        root = _graph_base(request).rpartition("/")[2]
        route = match_route(segments, root)
        key = None
        if route is None or route.kind == "batch":
            reply = Reply.failure(_unknown_segment(segments, root))
        else:
            key = self._key(route, query)
            self.state.arrive(_caller_key(route, query, body, key))
            try:
                reply = await self._answer(method, route, query, body, token, key, request)
            finally:
                self.state.leave()
            key = _caller_key(route, query, body, key)
        self.state.record(
            method, f"/{root}{raw_path}", reply.status, key=key, retry_after_s=reply.retry_after_s
        )
        headers, response_body = reply.render(str(uuid.uuid4()), None)
        if response_body is not None:
            headers["Content-Type"] = "application/json"
        answer: dict[str, Any] = {"id": item["id"], "status": reply.status, "headers": headers}
        if response_body is not None:
            answer["body"] = response_body
        return answer


def _caller_key(
    route: GraphRoute, query: Mapping[str, str], body: bytes, key: str | None
) -> str | None:
    """What a Retry-After is checked against: `key`, but for a webinar's registrations the
    one person a call is about (the email of a POST's body or of a lookup's filter), so
    that calls about other people of the same webinar, in flight when a 429 went out, do
    not count as the same caller coming back early."""
    if route.kind != "webinar_registrations":
        return key
    email = ""
    found = _EMAIL_FILTER.match(query.get("$filter", ""))
    if found is not None:
        email = found.group(1).replace("''", "'")
    elif body:
        with contextlib.suppress(ValueError):
            payload = json.loads(body)
            if isinstance(payload, dict) and isinstance(payload.get("email"), str):
                email = payload["email"]
    return f"{key}/{email.casefold()}" if email else key


def _unknown_segment(segments: list[str], root: str) -> GraphFailure:
    """Graph's answer to a path it has no resource for: 400, not 404."""
    name = unknown_segment(segments, root)
    return GraphFailure(400, "BadRequest", f"Resource not found for the segment '{name}'.")


def _graph_base(request: Request) -> str:
    """The absolute URL of the root the request came to: `https://host:port/v1.0`."""
    root = request.scope["path"].split("/")[1]
    return f"{request.url.scheme}://{request.url.netloc}/{root}"


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _fault_reply(fault: Fault) -> Reply:
    status = fault.status or 500
    code, message = _FAULT_ERRORS[status]
    return Reply(status, code=code, message=message, retry_after=fault.retry_after)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict):
        raise GraphFailure(
            400,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and "
            "payload is of valid JSON format.",
        )
    return value


def _batch_items(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Validate a batch as Graph does; raises GraphFailure 400 for the whole batch."""
    items = payload.get("requests")
    if not isinstance(items, list) or not items:
        raise GraphFailure(400, "BadRequest", "Batch request must contain a 'requests' array.")
    if len(items) > BATCH_LIMIT:
        raise GraphFailure(
            400, "BadRequest", f"Number of requests in a batch exceeds {BATCH_LIMIT}."
        )
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not {"id", "method", "url"} <= item.keys():
            raise GraphFailure(400, "BadRequest", "Each batch request needs id, method and url.")
        item_id = str(item["id"]).casefold()  # Graph compares request ids without case
        if item_id in seen:
            raise GraphFailure(400, "BadRequest", f"Batch request id '{item['id']}' is not unique.")
        seen.add(item_id)
        if _ABSOLUTE_URL.match(str(item["url"])):
            raise GraphFailure(
                400, "BadRequest", "Batch request url must be relative to the version."
            )
        headers = item.get("headers") or {}
        if "body" in item and not any(str(k).lower() == "content-type" for k in headers):
            raise GraphFailure(
                400, "BadRequest", f"Content-Type header required for request '{item['id']}'."
            )
    return items
