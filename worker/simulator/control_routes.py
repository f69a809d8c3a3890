"""The control API under `/_sim/`: the state's seeding and inspection methods as JSON.

    POST /_sim/users           {"users": [{object_id, upn?, access_policy?}, ...]} or one user
    POST /_sim/meetings        {"meetings": [{organizer_id, meeting_id, join_web_url?,
                                existing?, subject?}, ...]} or one meeting
    GET  /_sim/registration?meeting_id=...
    POST /_sim/webinars        {"webinars": [{webinar_id, organizer_id, display_name?,
                                status?, audience?, capacity?, waitlist?, manual_approval?,
                                questions?, co_organizer_ids?, start?, end?}, ...]} or one
    GET  /_sim/webinar-registrations?webinar_id=...
    GET  /_sim/webinar-duplicates
    POST /_sim/webinar-conflict  {"mode": "409" | "400" | "duplicate" | "silent"}
    POST /_sim/webinar-filter    {"enabled": true | false}
    POST /_sim/events          {"events": [{user_id, teams?, organizer?, organizer_id?,
                                meeting_id?, subject?, modified_at?}, ...]} or one event
    POST /_sim/update-event    {"user_id", "event_id", "modified_at"?, "fields": {...}}
    POST /_sim/delete-event    {"user_id", "event_id"}
    GET  /_sim/subscriptions
    POST /_sim/remove-subscription   {"subscription_id"}: as Graph may, without a word
    POST /_sim/notify          {"user_id", "event_id", "change_type"?, "retries"?}
                                                                        -> deliveries made
    POST /_sim/lifecycle       {"subscription_id", "lifecycle_event", "retries"?}
                                                                        -> deliveries made
    POST /_sim/deliver         {"url", "payload", "retries"?}           -> the last attempt
    GET  /_sim/deliveries
    GET|POST /_sim/faults      a FaultConfig (POST replaces it; fields left out are off)
    POST /_sim/script          {"meeting_id": ..., "steps": [...]}
    POST /_sim/conflict        {"mode": "409" | "400" | "replace"}
    POST /_sim/registration-api  {"mode": "live" | "gone" | "app-only-refused"}
    POST /_sim/resource-form   {"form": "users" | "users@tenant" | "alternate"}
    POST /_sim/expire-tokens
    GET  /_sim/stats
    GET  /_sim/requests?limit=N
    GET  /_sim/early-retries, /_sim/early-retries-global
    POST /_sim/reset

Bad input answers 400 `{"error": "..."}`. The notify routes answer once every POST to
the subscribers has been answered (or timed out). These requests are not counted in the statistics.
`SimulatorControl` (control.py) is the client.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from worker.simulator.responses import json_response
from worker.simulator.state import SimulatorState
from worker.simulator.webhooks import Webhooks

Handler = Callable[[SimulatorState, Any, dict[str, str]], Any]
OutboundHandler = Callable[[Webhooks, Any], Awaitable[Any]]


def _users(state: SimulatorState, body: Any, query: dict[str, str]) -> Any:
    if isinstance(body, dict) and "users" in body:
        return {"added": state.add_users(body["users"])}
    return state.add_user(**body)


def _meetings(state: SimulatorState, body: Any, query: dict[str, str]) -> Any:
    if isinstance(body, dict) and "meetings" in body:
        return {"added": state.add_meetings(body["meetings"])}
    return state.add_meeting(**body)


def _webinars(state: SimulatorState, body: Any, query: dict[str, str]) -> Any:
    if isinstance(body, dict) and "webinars" in body:
        return {"added": state.add_webinars(body["webinars"])}
    return state.add_webinar(**body)


def _webinar_conflict(state: SimulatorState, body: Any, query: dict[str, str]) -> Any:
    state.set_webinar_conflict(body["mode"])
    return {"mode": state.webinar_conflict}


def _webinar_filter(state: SimulatorState, body: Any, query: dict[str, str]) -> Any:
    state.set_webinar_filter(body["enabled"])
    return {"enabled": state.webinar_filter}


def _events(state: SimulatorState, body: Any, query: dict[str, str]) -> Any:
    if isinstance(body, dict) and "events" in body:
        return {"value": [state.add_event(**event) for event in body["events"]]}
    return state.add_event(**body)


def _update_event(state: SimulatorState, body: Any, query: dict[str, str]) -> Any:
    return state.update_event(
        body["user_id"],
        body["event_id"],
        modified_at=body.get("modified_at"),
        **body.get("fields", {}),
    )


def _delete_event(state: SimulatorState, body: Any, query: dict[str, str]) -> Any:
    state.delete_event(body["user_id"], body["event_id"])
    return {}


def _set_faults(state: SimulatorState, body: Any, query: dict[str, str]) -> Any:
    return state.set_faults(**body).model_dump()


def _script(state: SimulatorState, body: Any, query: dict[str, str]) -> Any:
    state.script(body["meeting_id"], body["steps"])
    return {"queued": len(body["steps"])}


def _conflict(state: SimulatorState, body: Any, query: dict[str, str]) -> Any:
    state.set_conflict(body["mode"])
    return {"mode": state.conflict}


def _registration_api(state: SimulatorState, body: Any, query: dict[str, str]) -> Any:
    state.set_registration_api(body["mode"])
    return {"mode": state.registration_api}


def _resource_form(state: SimulatorState, body: Any, query: dict[str, str]) -> Any:
    state.set_resource_form(body["form"])
    return {"form": state.resource_form}


def _requests(state: SimulatorState, body: Any, query: dict[str, str]) -> Any:
    requests = state.requests
    limit = int(query.get("limit", len(requests)))
    return {"value": requests[-limit:] if limit else []}


def _reset(state: SimulatorState, body: Any, query: dict[str, str]) -> Any:
    state.reset()
    return {}


async def _notify(webhooks: Webhooks, body: Any) -> Any:
    made = await webhooks.notify_event(
        body["user_id"], body["event_id"], body.get("change_type", "created"), _retries(body)
    )
    return {"value": [delivery.to_json() for delivery in made]}


async def _lifecycle(webhooks: Webhooks, body: Any) -> Any:
    made = await webhooks.notify_lifecycle(
        body["subscription_id"], body["lifecycle_event"], _retries(body)
    )
    return {"value": [delivery.to_json() for delivery in made]}


async def _deliver(webhooks: Webhooks, body: Any) -> Any:
    if not isinstance(body.get("payload"), dict):
        raise ValueError("payload must be a JSON object")
    made = await webhooks.deliver(str(body["url"]), body["payload"], retries=_retries(body))
    return made[-1].to_json()


def _retries(body: Any) -> int:
    retries = body.get("retries", 0)
    if not isinstance(retries, int) or isinstance(retries, bool):
        raise ValueError(f"retries must be an integer, not {retries!r}")
    return retries


_OUTBOUND_ROUTES: dict[tuple[str, str], OutboundHandler] = {
    ("POST", "notify"): _notify,
    ("POST", "lifecycle"): _lifecycle,
    ("POST", "deliver"): _deliver,
}
_ROUTES: dict[tuple[str, str], Handler] = {
    ("POST", "users"): _users,
    ("POST", "meetings"): _meetings,
    ("GET", "registration"): lambda s, b, q: {"registration": s.registration(q["meeting_id"])},
    ("POST", "webinars"): _webinars,
    ("GET", "webinar-registrations"): lambda s, b, q: {
        "value": s.webinar_registrations(q["webinar_id"])
    },
    ("GET", "webinar-duplicates"): lambda s, b, q: {"duplicates": s.webinar_duplicates()},
    ("POST", "webinar-conflict"): _webinar_conflict,
    ("POST", "webinar-filter"): _webinar_filter,
    ("POST", "events"): _events,
    ("POST", "update-event"): _update_event,
    ("POST", "delete-event"): _delete_event,
    ("GET", "subscriptions"): lambda s, b, q: {"value": s.subscriptions()},
    ("POST", "remove-subscription"): lambda s, b, q: {
        "removed": s.remove_subscription(b["subscription_id"])
    },
    ("GET", "deliveries"): lambda s, b, q: {"value": [d.to_json() for d in s.deliveries()]},
    ("GET", "faults"): lambda s, b, q: s.faults.model_dump(),
    ("POST", "faults"): _set_faults,
    ("POST", "script"): _script,
    ("POST", "conflict"): _conflict,
    ("POST", "registration-api"): _registration_api,
    ("POST", "resource-form"): _resource_form,
    ("POST", "expire-tokens"): lambda s, b, q: {"expired": s.expire_tokens()},
    ("GET", "stats"): lambda s, b, q: s.stats(),
    ("GET", "requests"): _requests,
    ("GET", "early-retries"): lambda s, b, q: {"value": [e.to_json() for e in s.early_retries()]},
    ("GET", "early-retries-global"): lambda s, b, q: {
        "value": [e.to_json() for e in s.early_retries_global()]
    },
    ("POST", "reset"): _reset,
}


class ControlRoutes:
    """Answers `/_sim/...` requests from a SimulatorState; `webhooks` sends notifications."""

    def __init__(self, state: SimulatorState, webhooks: Webhooks) -> None:
        self.state = state
        self.webhooks = webhooks

    async def handle(self, request: Request, segments: list[str]) -> Response:
        """Answer one request whose first segment is `_sim`."""
        name = segments[1] if len(segments) == 2 else ""
        handler = _ROUTES.get((request.method, name))
        outbound = _OUTBOUND_ROUTES.get((request.method, name))
        if handler is None and outbound is None:
            return json_response(
                {"error": f"no control endpoint {request.method} /_sim/{name}"}, 404
            )
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
            if outbound is not None:
                return json_response(await outbound(self.webhooks, body))
            assert handler is not None
            # Seeding 100,000 meetings runs under the state lock; it takes well under a second.
            return json_response(handler(self.state, body, dict(request.query_params)))
        except (ValueError, TypeError, KeyError, ValidationError) as exc:
            return json_response({"error": f"{type(exc).__name__}: {exc}"}, 400)
