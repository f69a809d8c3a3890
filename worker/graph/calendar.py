"""The calendar side of Graph: events, and the subscriptions that announce new ones.

Event-triggered runs (docs/events.md) learn of new Teams meetings from
Outlook calendar events. These calls go to Graph's GA version (`v1.0`, see
`Settings.graph_v1_base_url`), not to the deprecated beta the registrations use, through
the same authenticated httpx client and the same error translation (`GraphClient.send`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from worker import keys
from worker.errors import ConfigError, GraphPermanent, GraphTransient
from worker.graph.auth import BearerAuth
from worker.graph.client import GraphClient, build_http_client, json_object, string_field
from worker.graph.credentials import build_token_source
from worker.settings import AuthMode, Settings

# What meetreg reads of an event: enough to decide, nothing of its subject or attendees.
EVENT_FIELDS = "id,isOnlineMeeting,onlineMeetingProvider,isOrganizer,onlineMeeting"
# Outlook event subscriptions live at most 10,080 minutes; older documentation says 4,230.
# Ask for a little less than the maximum, so clocks that disagree do not make it too long.
MAX_SUBSCRIPTION_MINUTES = 10_080
OLD_MAX_SUBSCRIPTION_MINUTES = 4_230
_EXPIRY_MARGIN = timedelta(minutes=10)
_PAGE_SIZE = 50
_MAX_PAGES = 200  # a catch-up over one mailbox: 10,000 events is past any real day


@dataclass(frozen=True, slots=True)
class Subscription:
    """A Graph subscription as Graph described it."""

    id: str
    resource: str
    expires_at: datetime


def subscription_expiry(now: datetime, max_minutes: int = MAX_SUBSCRIPTION_MINUTES) -> datetime:
    """The expiry to ask for at `now`: Graph's maximum, less a margin."""
    return now + timedelta(minutes=max_minutes) - _EXPIRY_MARGIN


def iso(moment: datetime) -> str:
    """Graph's timestamp form: UTC, seconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> datetime:
    """Graph's timestamps carry 0 to 7 fractional digits; Python reads at most 6."""
    text = value.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:digits][:6]:0<6}{rest[digits:]}"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class CalendarApi:
    """Events and event subscriptions; every method raises worker.errors' Graph errors."""

    def __init__(self, http: httpx.Client, v1_base_url: str) -> None:
        self.http = http
        self._graph = GraphClient(http, v1_base_url)

    def get_event(self, user_id: str, event_id: str) -> dict[str, Any] | None:
        """The event's deciding fields, or None when it no longer exists (404)."""
        response = self._graph.send(
            "GET",
            keys.event_path(user_id, event_id),
            query={"$select": EVENT_FIELDS},
            missing_ok=True,
        )
        if response.status_code == 404:
            return None
        return json_object(response, ambiguous=False)

    def events_changed_since(self, user_id: str, since: datetime) -> Iterator[dict[str, Any]]:
        """The user's events created or changed at or after `since`, page by page."""
        query = {
            "$filter": f"lastModifiedDateTime ge {iso(since)}",
            "$select": EVENT_FIELDS,
            "$top": str(_PAGE_SIZE),
        }
        response = self._graph.send("GET", keys.events_path(user_id), query=query)
        for _ in range(_MAX_PAGES):
            page = json_object(response, ambiguous=False)
            for event in page.get("value") or []:
                if isinstance(event, dict):
                    yield event
            next_link = page.get("@odata.nextLink")
            if not isinstance(next_link, str) or not next_link:
                return
            response = self._graph.send("GET", self._relative(next_link))

    def create_subscription(
        self,
        user_id: str,
        *,
        notification_url: str,
        lifecycle_url: str | None,
        client_state: str,
        now: datetime,
    ) -> Subscription:
        """Subscribe to the user's new and changed events, for as long as Graph allows.

        Graph validates both URLs before it answers (they must echo its token). A 400 may
        mean our expiry is past this tenant's maximum (older limits were 4,230 minutes):
        asked once more with the older maximum before the error stands.
        """
        body: dict[str, Any] = {
            "changeType": "created,updated",
            "notificationUrl": notification_url,
            "resource": keys.events_resource(user_id),
            "clientState": client_state,
        }
        if lifecycle_url:
            body["lifecycleNotificationUrl"] = lifecycle_url
        return self._with_expiry_fallback(
            lambda expiry: self._graph.send(
                "POST", keys.SUBSCRIPTIONS_PATH, body={**body, "expirationDateTime": expiry}
            ),
            now,
        )

    def renew_subscription(self, subscription_id: str, *, now: datetime) -> Subscription:
        """Push the subscription's expiry to the maximum. GraphPermanent(404) if it is gone."""
        path = keys.subscription_path(subscription_id)
        return self._with_expiry_fallback(
            lambda expiry: self._graph.send("PATCH", path, body={"expirationDateTime": expiry}),
            now,
        )

    def delete_subscription(self, subscription_id: str) -> None:
        """Delete it; one already gone counts as deleted."""
        self._graph.send("DELETE", keys.subscription_path(subscription_id), missing_ok=True)

    def _relative(self, next_link: str) -> str:
        """A nextLink as a path under our base URL. A link to any other host or version is
        not followed: our bearer token must never travel to a server we did not choose."""
        base = self._graph.base_url + "/"
        if not next_link.startswith(base):
            raise GraphTransient("Graph sent a nextLink outside the Graph base URL; not followed")
        return "/" + next_link[len(base) :]

    def _with_expiry_fallback(
        self, send: Callable[[str], httpx.Response], now: datetime
    ) -> Subscription:
        try:
            response = send(iso(subscription_expiry(now)))
        except GraphPermanent as exc:
            if exc.status != 400:
                raise
            response = send(iso(subscription_expiry(now, OLD_MAX_SUBSCRIPTION_MINUTES)))
        body = json_object(response, ambiguous=False)
        return Subscription(
            id=string_field(body, "id", response),
            resource=str(body.get("resource") or ""),
            expires_at=parse_iso(string_field(body, "expirationDateTime", response)),
        )


def require_app_only(settings: Settings) -> None:
    """Calendars are read under `/users/{id}/events` with an application token; raises
    ConfigError in delegated mode."""
    if settings.auth_mode is AuthMode.DELEGATED:
        raise ConfigError(
            "event-triggered runs read organizers' calendars with an application token: "
            "set MEETREG_AUTH to secret, certificate or managed-identity"
        )


def build_calendar_api(settings: Settings) -> CalendarApi:
    """A CalendarApi with its own application token, for a command that makes a few
    calls (`meetreg subscribe`). Raises ConfigError (credentials, delegated mode)."""
    require_app_only(settings)
    http = build_http_client(settings, BearerAuth(build_token_source(settings)))
    return CalendarApi(http, settings.graph_v1_base_url)
