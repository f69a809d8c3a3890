"""A client for the control API of a simulator running in another process.

    with SimulatorControl("https://127.0.0.1:8443", ca_path) as control:
        control.add_meetings([{"organizer_id": oid, "meeting_id": mid}])
        control.set_faults(latency_ms=100, rate_limit_per_s=50)
        event = control.add_event(oid)
        control.notify_event(oid, event["id"])
        print(control.stats()["requests_by_status"])

Method names and arguments are those of SimulatorState. Raises httpx.HTTPStatusError when
the simulator refuses (a bad step or field: 400 with the reason in the body).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from worker.simulator.tls import ssl_context


class SimulatorControl:
    """Seed, script and inspect a simulator over HTTP(S)."""

    def __init__(
        self, base_url: str, ca_path: str | Path | None = None, timeout_s: float = 60.0
    ) -> None:
        verify = ssl_context(ca_path) if ca_path is not None else True
        self._http = httpx.Client(
            base_url=f"{base_url.rstrip('/')}/_sim", verify=verify, timeout=timeout_s
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(
        self, method: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        response = self._http.request(method, path, json=body, params=params)
        response.raise_for_status()
        return response.json()

    def add_user(
        self, object_id: str, upn: str | None = None, access_policy: bool = True
    ) -> dict[str, Any]:
        """Add or replace a user; returns it as Graph shows it."""
        return self._call(
            "POST", "/users", {"object_id": object_id, "upn": upn, "access_policy": access_policy}
        )

    def add_users(self, users: Iterable[Mapping[str, Any]]) -> int:
        """Add many users (mappings of add_user's arguments); returns how many."""
        return int(self._call("POST", "/users", {"users": list(users)})["added"])

    def add_meeting(
        self,
        organizer_id: str,
        meeting_id: str,
        join_web_url: str | None = None,
        existing: str | None = None,
        subject: str | None = None,
    ) -> dict[str, Any]:
        """Add or replace a meeting; returns it as Graph shows it, with its joinWebUrl."""
        body = {
            "organizer_id": organizer_id,
            "meeting_id": meeting_id,
            "join_web_url": join_web_url,
            "existing": existing,
            "subject": subject,
        }
        return self._call("POST", "/meetings", body)

    def add_meetings(self, meetings: Iterable[Mapping[str, Any]]) -> int:
        """Add many meetings (mappings of add_meeting's arguments); returns how many."""
        return int(self._call("POST", "/meetings", {"meetings": list(meetings)})["added"])

    def registration(self, meeting_id: str) -> dict[str, Any] | None:
        """The meeting's registration as a GET would show it, or None."""
        return self._call("GET", "/registration", params={"meeting_id": meeting_id})["registration"]

    def add_webinar(self, webinar_id: str, organizer_id: str, **options: Any) -> dict[str, Any]:
        """Add or replace a webinar (options as SimulatorState.add_webinar); returns it as
        Graph shows it."""
        return self._call(
            "POST", "/webinars", {"webinar_id": webinar_id, "organizer_id": organizer_id, **options}
        )

    def add_webinars(self, webinars: Iterable[Mapping[str, Any]]) -> int:
        """Add many webinars (mappings of add_webinar's arguments); returns how many."""
        return int(self._call("POST", "/webinars", {"webinars": list(webinars)})["added"])

    def webinar_registrations(self, webinar_id: str) -> list[dict[str, Any]]:
        """The webinar's registrations as Graph shows them, canceled ones too."""
        params = {"webinar_id": webinar_id}
        return list(self._call("GET", "/webinar-registrations", params=params)["value"])

    def webinar_duplicates(self) -> int:
        """(webinar, email) pairs registered again while registered: 0 when exactly once."""
        return int(self._call("GET", "/webinar-duplicates")["duplicates"])

    def set_webinar_conflict(self, mode: str) -> None:
        """What a registration POST does for an email already registered: "409", "400",
        "duplicate" (a second registration) or "silent" (success, nothing new)."""
        self._call("POST", "/webinar-conflict", {"mode": mode})

    def set_webinar_filter(self, enabled: bool) -> None:
        """Allow `$filter` on webinar registrations, or answer it 400."""
        self._call("POST", "/webinar-filter", {"enabled": enabled})

    def add_event(self, user_id: str, **options: Any) -> dict[str, Any]:
        """Add an event (options as SimulatorState.add_event); returns its Graph JSON."""
        return self._call("POST", "/events", {"user_id": user_id, **options})

    def add_events(self, events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Add many events (mappings of add_event's arguments); returns them."""
        return list(self._call("POST", "/events", {"events": list(events)})["value"])

    def update_event(
        self, user_id: str, event_id: str, *, modified_at: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Change an event's fields (Graph names); returns it with its new etag."""
        body = {"user_id": user_id, "event_id": event_id, "modified_at": modified_at}
        return self._call("POST", "/update-event", {**body, "fields": fields})

    def delete_event(self, user_id: str, event_id: str) -> None:
        self._call("POST", "/delete-event", {"user_id": user_id, "event_id": event_id})

    def subscriptions(self) -> list[dict[str, Any]]:
        """The live subscriptions as Graph shows them."""
        return list(self._call("GET", "/subscriptions")["value"])

    def remove_subscription(self, subscription_id: str) -> bool:
        """Drop a subscription as Graph may on its own; whether it existed."""
        body = {"subscription_id": subscription_id}
        return bool(self._call("POST", "/remove-subscription", body)["removed"])

    def notify_event(
        self, user_id: str, event_id: str, change_type: str = "created", retries: int = 0
    ) -> list[dict[str, Any]]:
        """Notify the subscriptions to the user's events, sending again up to `retries`
        times on 5xx or no answer; returns every attempt made."""
        body = {
            "user_id": user_id,
            "event_id": event_id,
            "change_type": change_type,
            "retries": retries,
        }
        return list(self._call("POST", "/notify", body)["value"])

    def notify_lifecycle(
        self, subscription_id: str, lifecycle_event: str, retries: int = 0
    ) -> list[dict[str, Any]]:
        """Send a lifecycle notification (with redeliveries as notify_event); returns every
        attempt made."""
        body = {
            "subscription_id": subscription_id,
            "lifecycle_event": lifecycle_event,
            "retries": retries,
        }
        return list(self._call("POST", "/lifecycle", body)["value"])

    def deliver(self, url: str, payload: Mapping[str, Any], retries: int = 0) -> dict[str, Any]:
        """POST any JSON payload to `url` as Graph would (with redeliveries as notify_event);
        returns the last attempt."""
        body = {"url": url, "payload": dict(payload), "retries": retries}
        return self._call("POST", "/deliver", body)

    def deliveries(self) -> list[dict[str, Any]]:
        """Every POST made to subscribers (handshakes too): kind, url, status, elapsed_s, ..."""
        return list(self._call("GET", "/deliveries")["value"])

    @property
    def faults(self) -> dict[str, Any]:
        """The current fault configuration."""
        return self._call("GET", "/faults")

    def set_faults(self, **fields: Any) -> dict[str, Any]:
        """Replace the fault configuration with `fields` (others off)."""
        return self._call("POST", "/faults", fields)

    def script(self, meeting_id: str, steps: Iterable[Mapping[str, Any]]) -> None:
        """Queue fault steps for the next requests about `meeting_id`."""
        self._call("POST", "/script", {"meeting_id": meeting_id, "steps": list(steps)})

    def set_conflict(self, mode: str) -> None:
        """Change what POST does on a meeting that already has a registration."""
        self._call("POST", "/conflict", {"mode": mode})

    def set_registration_api(self, mode: str) -> None:
        """How the meeting registration API answers: "live", "gone" (retired: 400 for the
        segment) or "app-only-refused" (403 to application tokens)."""
        self._call("POST", "/registration-api", {"mode": mode})

    def set_resource_form(self, form: str) -> None:
        """Change how change notifications spell their resource: "users" (`Users/{id}/...`),
        "users@tenant" (`users/{id}@{tenantId}/...`) or "alternate"."""
        self._call("POST", "/resource-form", {"form": form})

    def expire_tokens(self) -> int:
        """Expire every token issued so far; returns how many were live."""
        return int(self._call("POST", "/expire-tokens")["expired"])

    def stats(self) -> dict[str, Any]:
        """The simulator's statistics (see SimulatorState.stats)."""
        return self._call("GET", "/stats")

    def requests(self, limit: int | None = None) -> list[tuple[str, str, int]]:
        """(method, raw path, status) of the last `limit` requests, oldest first."""
        params = {"limit": limit} if limit is not None else None
        return [tuple(row) for row in self._call("GET", "/requests", params=params)["value"]]

    def early_retries(self) -> list[dict[str, Any]]:
        """Requests that came before their meeting's Retry-After ended."""
        return self._call("GET", "/early-retries")["value"]

    def early_retries_global(self) -> list[dict[str, Any]]:
        """Requests that came before the latest Retry-After ended."""
        return self._call("GET", "/early-retries-global")["value"]

    def reset(self) -> None:
        """Forget everything (webinars too); faults and modes return to the start-up values."""
        self._call("POST", "/reset")
