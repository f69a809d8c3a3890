"""Answers for the calendar side of Graph: a user's events, and subscriptions to them.

    GET    /users/{id}/events/{eventId}?$select=...
    GET    /users/{id}/events?$filter=lastModifiedDateTime ge ...&$select=...&$top=N
    POST   /subscriptions            validates notificationUrl (and lifecycleNotificationUrl)
                                     by Graph's handshake before it answers 201
    GET    /subscriptions, /subscriptions/{id}
    PATCH  /subscriptions/{id}       {"expirationDateTime": ...}
    DELETE /subscriptions/{id}

`graph_routes` routes, authenticates and faults the request first, as for any Graph call.
An events list is cut into pages of `$top` (default 10); `@odata.nextLink` is an absolute
URL on the same root carrying `$skip`, as Outlook's is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import quote

from worker.simulator.calendar import EVENT_PROPERTIES, Comparison, TimeField, TimeFilter
from worker.simulator.errors import GraphFailure
from worker.simulator.paths import GraphRoute
from worker.simulator.responses import Reply
from worker.simulator.state import SimulatorState
from worker.simulator.timestamps import parse_time
from worker.simulator.webhooks import Webhooks

DEFAULT_TOP = 10
MAX_TOP = 1000
# Graph takes a DateTimeOffset bare (`ge 2026-11-27T00:00:00Z`); a quoted one is read too.
_TIME_FILTER = re.compile(
    r"^\s*(createdDateTime|lastModifiedDateTime)\s+(eq|ge|gt|le|lt)\s+('?)([^'\s]+)\3\s*$",
    re.IGNORECASE,
)
_PROPERTIES = {name.lower(): name for name in EVENT_PROPERTIES}
_ALWAYS = ("@odata.etag", "id")  # Graph returns these whatever $select says


def parse_time_filter(expression: str) -> TimeFilter:
    """`lastModifiedDateTime ge 2026-11-27T00:00:00Z` (or createdDateTime; eq/gt/le/lt).

    Raises GraphFailure 400 for any other filter."""
    found = _TIME_FILTER.match(expression)
    moment = None
    if found is not None:
        try:
            moment = parse_time(found.group(4))
        except ValueError:
            moment = None
    if found is None or moment is None:
        raise GraphFailure(400, "BadRequest", f"Invalid filter clause: {expression!r}")
    field = cast(TimeField, _PROPERTIES[found.group(1).lower()])
    return TimeFilter(field, cast(Comparison, found.group(2).lower()), moment)


def parse_select(query: Mapping[str, str]) -> list[str]:
    """The properties `$select` names (case as Graph spells them); [] for all.

    Raises GraphFailure 400 for a property events do not have."""
    selected = []
    for name in (part.strip() for part in query.get("$select", "").split(",")):
        if not name:
            continue
        known = _PROPERTIES.get(name.lower())
        if known is None:
            raise GraphFailure(
                400,
                "BadRequest",
                f"Could not find a property named '{name}' on type 'microsoft.graph.event'.",
            )
        selected.append(known)
    return selected


def _selected(event: dict[str, Any], select: list[str]) -> dict[str, Any]:
    if not select:
        return event
    return {k: v for k, v in event.items() if k in _ALWAYS or k in select}


def _count(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not text.strip().isdigit() or not low <= int(text) <= high:
        raise GraphFailure(400, "BadRequest", f"Invalid value for {name}: {text!r}.")
    return int(text)


class CalendarRoutes:
    """Answers event and subscription requests from a SimulatorState; `webhooks` makes the
    handshake a new subscription needs."""

    def __init__(self, state: SimulatorState, webhooks: Webhooks) -> None:
        self.state = state
        self.webhooks = webhooks

    async def answer(
        self,
        method: str,
        route: GraphRoute,
        query: Mapping[str, str],
        payload: Mapping[str, Any],
        base: str,
    ) -> Reply:
        """The answer to one authenticated request; raises GraphFailure."""
        if route.kind == "event":
            return self._event(route, query, base)
        if route.kind == "events":
            return self._events(route, query, base)
        if route.kind == "subscriptions":
            if method == "GET":
                context = f"{base}/$metadata#subscriptions"
                return Reply(200, {"@odata.context": context, "value": self.state.subscriptions()})
            return await self._subscribe(payload, base)
        return self._subscription(method, route.item_id, payload, base)

    def _event(self, route: GraphRoute, query: Mapping[str, str], base: str) -> Reply:
        select = parse_select(query)
        event = _selected(self.state.get_event(route.user_id, route.item_id), select)
        context = f"{base}/$metadata#users('{route.user_id}')/events/$entity"
        return Reply(200, {"@odata.context": context, **event})

    def _events(self, route: GraphRoute, query: Mapping[str, str], base: str) -> Reply:
        select = parse_select(query)
        expression = query.get("$filter")
        time_filter = parse_time_filter(expression) if expression is not None else None
        top = _count(query, "$top", DEFAULT_TOP, 1, MAX_TOP)
        skip = _count(query, "$skip", 0, 0, 10**9)
        events = self.state.find_events(route.user_id, time_filter)
        columns = f"({','.join(select)})" if select else ""
        page: dict[str, Any] = {
            "@odata.context": f"{base}/$metadata#users('{route.user_id}')/events{columns}",
            "value": [_selected(e, select) for e in events[skip : skip + top]],
        }
        if skip + top < len(events):
            # Spaces as %20: a client may pass the link on as it is.
            rest = "&".join(
                f"{name}={quote(value, safe='')}"
                for name, value in {**query, "$top": str(top), "$skip": str(skip + top)}.items()
            )
            user = quote(route.user_id, safe="")
            page["@odata.nextLink"] = f"{base}/users/{user}/events?{rest}"
        return Reply(200, page)

    async def _subscribe(self, payload: Mapping[str, Any], base: str) -> Reply:
        draft = self.state.draft_subscription(payload)
        # Graph keeps the subscription only once both URLs have echoed its token.
        await self.webhooks.validate(draft.notification_url)
        if draft.lifecycle_url is not None:
            await self.webhooks.validate(draft.lifecycle_url)
        created = self.state.create_subscription(draft)
        return Reply(201, {"@odata.context": f"{base}/$metadata#subscriptions/$entity", **created})

    def _subscription(
        self, method: str, subscription_id: str, payload: Mapping[str, Any], base: str
    ) -> Reply:
        context = f"{base}/$metadata#subscriptions/$entity"
        if method == "DELETE":
            self.state.delete_subscription(subscription_id)
            return Reply(204)
        if method == "PATCH":
            renewed = self.state.renew_subscription(subscription_id, payload)
            return Reply(200, {"@odata.context": context, **renewed})
        return Reply(
            200, {"@odata.context": context, **self.state.get_subscription(subscription_id)}
        )
