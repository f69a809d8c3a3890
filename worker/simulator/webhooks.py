"""Graph calling out: the validation handshake, and notifications POSTed to subscribers.

Everything here runs in the simulator's event loop with one `httpx.AsyncClient`, never
blocking it: the receiver may live in the same process as the simulator (a test's
webhook, `meetreg serve` in a thread), and while a `POST /subscriptions` awaits its
handshake the loop must go on serving, other Graph calls included. Every POST made is
recorded in the state as a `Delivery` (url, status, elapsed time, attempt).

Graph redelivers a notification the receiver answered with 5xx, or did not answer, for
up to four hours with growing pauses. Here `retries` says how many more POSTs to make,
one straight after another: enough to see a receiver handle the same item twice.

Proxies from the environment are ignored (`trust_env=False`): Graph reaches a webhook
directly, and a loopback receiver must not be sent through a developer's proxy.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from worker.simulator.errors import GraphFailure
from worker.simulator.notifications import Delivery, DeliveryKind
from worker.simulator.state import SimulatorState

VALIDATION_TIMEOUT_S = 10.0  # Graph's own limit for the handshake answer
DELIVERY_TIMEOUT_S = 10.0  # answers past 3 s are "slow" to Graph; past this, none
VALIDATION_FAILED = (
    "Subscription validation request failed. Notification endpoint must respond with "
    "200 OK to validation request."
)


def validation_token() -> str:
    """A token like Graph's: spaces and `:` in it, so a receiver must decode the query."""
    return (
        "Validation: Testing client application reachability for subscription "
        f"Request-Id: {uuid.uuid4()}"
    )


class Webhooks:
    """Graph's outbound HTTP, recorded in `state`."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        # Made on first use, inside the loop that will use it; `aclose` at loop end. Each
        # POST names its timeout: httpx's default of 5 s would cut Graph's 10 s short.
        if self._http is None:
            self._http = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        return self._http

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    async def validate(self, url: str) -> None:
        """Graph's handshake: POST `?validationToken=...` with an empty body; the answer must
        come within 10 s, be 200 and `text/plain`, and be exactly the decoded token.

        Raises GraphFailure 400 `ValidationError` otherwise."""
        token = validation_token()
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        ok = False
        try:
            response = await asyncio.wait_for(
                self._client().post(
                    url,
                    params={"validationToken": token},
                    headers={"Content-Type": "text/plain; charset=utf-8"},
                    content=b"",
                    timeout=VALIDATION_TIMEOUT_S,
                ),
                VALIDATION_TIMEOUT_S,
            )
            status = response.status_code
            media_type = response.headers.get("content-type", "").lower()
            ok = status == 200 and media_type.startswith("text/plain") and response.text == token
        except (httpx.HTTPError, TimeoutError) as exc:
            error = type(exc).__name__
        self.state.record_delivery(
            Delivery("validation", url, status, time.monotonic() - started, None, error)
        )
        if not ok:
            raise GraphFailure(400, "ValidationError", VALIDATION_FAILED)

    async def deliver(
        self, url: str, payload: dict[str, Any], kind: DeliveryKind = "raw", retries: int = 0
    ) -> list[Delivery]:
        """POST `payload` as JSON to `url`, again (up to `retries` times) while the answer
        is 5xx or none; every attempt made, each also recorded. Raises ValueError for a
        negative `retries`."""
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, not {retries}")
        made = [await self._post(url, payload, kind, 1)]
        while made[-1].redeliverable and len(made) <= retries:
            made.append(await self._post(url, payload, kind, len(made) + 1))
        return made

    async def _post(
        self, url: str, payload: dict[str, Any], kind: DeliveryKind, attempt: int
    ) -> Delivery:
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            response = await asyncio.wait_for(
                self._client().post(
                    url,
                    json=payload,
                    headers={"Content-Type": "application/json"},
                    timeout=DELIVERY_TIMEOUT_S,
                ),
                DELIVERY_TIMEOUT_S,
            )
            status = response.status_code
        except (httpx.HTTPError, TimeoutError) as exc:
            error = type(exc).__name__
        delivery = Delivery(kind, url, status, time.monotonic() - started, payload, error, attempt)
        self.state.record_delivery(delivery)
        return delivery

    async def notify_event(
        self, user_id: str, event_id: str, change_type: str = "created", retries: int = 0
    ) -> list[Delivery]:
        """Notify every subscription to the user's events that covers `change_type`, one POST
        each (plus redeliveries), concurrently; every attempt made. Raises ValueError for an
        unknown user, event or change type, or a negative `retries`."""
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, not {retries}")
        targets = self.state.change_notifications(user_id, event_id, change_type)
        made = await asyncio.gather(
            *(self.deliver(url, body, "change", retries) for url, body in targets)
        )
        return [delivery for attempts in made for delivery in attempts]

    async def notify_lifecycle(
        self, subscription_id: str, lifecycle_event: str, retries: int = 0
    ) -> list[Delivery]:
        """POST a lifecycle notification to the subscription's lifecycleNotificationUrl (none
        made when it has none), plus redeliveries; every attempt made. `subscriptionRemoved`
        deletes the subscription first. Raises ValueError for an unknown subscription or
        lifecycle event, or a negative `retries`."""
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, not {retries}")
        target = self.state.lifecycle_notification(subscription_id, lifecycle_event)
        if target is None:
            return []
        url, body = target
        return await self.deliver(url, body, "lifecycle", retries)
