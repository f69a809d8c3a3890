"""The simulator's whole in-memory world, behind one lock: the thread-safe facade.

`SimulatorState` composes the directory (users, meetings, registrations), the calendars,
the subscriptions, the token issuer, the fault plan, the traffic log and the log of
notifications sent. The server thread calls it for every request, and a test thread may
seed, script and inspect it at the same time: every method takes the one lock, briefly,
and returns copies, never live containers.

Seeding and inspection (also offered as JSON under `/_sim/`, see `control_routes`):

    add_user / add_users, add_meeting / add_meetings, registration(meeting_id)
    add_event, update_event, delete_event, event(user_id, event_id)
    subscriptions(), remove_subscription(subscription_id), deliveries()
    add_webinar / add_webinars, webinar_registrations(webinar_id), webinar_duplicates()
    set_faults, script(key, steps), set_conflict, set_resource_form, expire_tokens
    set_webinar_conflict, set_webinar_filter
    set_registration_api (the retired registration API: live, gone, app-only-refused)
    sign_in_as, revoke_refresh_tokens (the delegated sign-in)
    stats(), requests, creations, arrivals(), early_retries(), early_retries_global(), reset()

Sending notifications is the server's (`SimulatorServer.notify_event`, ...): it takes the
event loop, which the state does not have.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from worker.simulator import subscriptions
from worker.simulator.calendar import Calendar, TimeFilter
from worker.simulator.config import (
    DELIVERY_LOG_SIZE,
    ConflictMode,
    FaultConfig,
    RegistrationApiMode,
    ResourceForm,
    SimulatorConfig,
    WebinarConflict,
)
from worker.simulator.directory import Directory, RegistrationKind, refuse_retired
from worker.simulator.errors import GraphFailure
from worker.simulator.faults import Fault, FaultPlan
from worker.simulator.identity import Flavour, IdentityAnswer, ManagedIdentities
from worker.simulator.notifications import LIFECYCLE_EVENTS, Delivery, change_item, lifecycle_item
from worker.simulator.sign_in import DELEGATED_GRANTS, SignIn
from worker.simulator.subscriptions import Subscription, Subscriptions
from worker.simulator.timestamps import utc_now
from worker.simulator.tokens import TokenIssuer
from worker.simulator.traffic import Arrivals, EarlyRetry, Traffic
from worker.simulator.webinars import Webinars

T = TypeVar("T")


class SimulatorState:
    """Users, meetings, registrations, tokens, faults and statistics of one simulator."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self._lock = threading.Lock()
        self._jitter = (
            random.Random()
        )  # apart from the fault RNG: concurrency must not shift faults
        self._build()

    def _build(self) -> None:
        config = self.config
        self._conflict: ConflictMode = config.conflict
        self._registration_api: RegistrationApiMode = config.registration_api
        self._resource_form: ResourceForm = config.resource_form
        self._changes_notified = 0  # items sent so far: the turn of an alternating form
        self._directory = Directory(config.tenant_id)
        self._calendar = Calendar(self._directory)
        self._subscriptions = Subscriptions()
        self._deliveries: deque[Delivery] = deque(maxlen=DELIVERY_LOG_SIZE)
        self._tokens = TokenIssuer(
            config.tenant_id,
            config.client_id,
            config.client_secret,
            config.client_certificates,
            config.token_ttl_s,
        )
        self._sign_in = SignIn(
            self._tokens,
            self._directory,
            config.device_user_id,
            config.device_user_upn,
            config.device_code_pending_polls,
        )
        self._identities = ManagedIdentities(
            self._tokens, config.identity_header, config.user_assigned_identities
        )
        self._faults = FaultPlan(config.faults)
        self._traffic = Traffic()
        self._webinars = Webinars(config.tenant_id, config.webinar_conflict, config.webinar_filter)

    # Seeding ------------------------------------------------------------------------------

    def add_user(
        self, object_id: str, upn: str | None = None, access_policy: bool = True
    ) -> dict[str, Any]:
        """Add or replace a user; returns it as Graph shows it."""
        with self._lock:
            return self._directory.add_user(object_id, upn, access_policy).to_graph()

    def add_users(self, users: Iterable[Mapping[str, Any]]) -> int:
        """Add many users, each a mapping of `add_user`'s arguments; returns how many."""
        with self._lock:
            count = 0
            for user in users:
                self._directory.add_user(**user)
                count += 1
            return count

    def add_meeting(
        self,
        organizer_id: str,
        meeting_id: str,
        join_web_url: str | None = None,
        existing: RegistrationKind | None = None,
        subject: str | None = None,
    ) -> dict[str, Any]:
        """Add or replace a meeting (and its organizer, if unknown, with the access policy).

        `existing` ("external" or "microsoft") seeds a registration it already has; replacing
        a meeting resets its registration to that. Returns the meeting as Graph shows it,
        with its `joinWebUrl`.
        """
        with self._lock:
            meeting = self._directory.add_meeting(
                organizer_id, meeting_id, join_web_url, existing, subject
            )
            return meeting.to_graph()

    def add_meetings(self, meetings: Iterable[Mapping[str, Any]]) -> int:
        """Add many meetings, each a mapping of `add_meeting`'s arguments; returns how many."""
        with self._lock:
            count = 0
            for meeting in meetings:
                self._directory.add_meeting(**meeting)
                count += 1
            return count

    def registration(self, meeting_id: str) -> dict[str, Any] | None:
        """The meeting's registration as a GET would show it, or None."""
        with self._lock:
            registration = self._directory.registrations.get(meeting_id)
            return None if registration is None else registration.to_graph()

    def add_event(
        self,
        user_id: str,
        *,
        teams: bool = True,
        organizer: bool = True,
        organizer_id: str | None = None,
        meeting_id: str | None = None,
        subject: str = "Project sync",
        modified_at: datetime | str | None = None,
    ) -> dict[str, Any]:
        """Add an event to the calendar of `user_id` (objectId or UPN); returns its Graph JSON.

        A Teams event (`teams`) links by its joinUrl to the online meeting `meeting_id`
        (created when unknown; a new id when None) under its organizer: the user when
        `organizer`, else `organizer_id` (a new user when None). `modified_at` (default now)
        is both createdDateTime and lastModifiedDateTime. No notification is sent: call the
        server's `notify_event`. Raises ValueError when the meeting's organizer contradicts
        `organizer` / `organizer_id`, or a UPN names nobody.
        """
        with self._lock:
            return self._calendar.add(
                user_id,
                teams=teams,
                organizer=organizer,
                organizer_id=organizer_id,
                meeting_id=meeting_id,
                subject=subject,
                modified_at=modified_at,
            ).to_graph()

    def update_event(
        self,
        user_id: str,
        event_id: str,
        *,
        modified_at: datetime | str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Change an event's fields (Graph names: subject, onlineMeetingProvider, ...), with a
        new lastModifiedDateTime (`modified_at`, default now) and etag; returns it.
        Raises ValueError for an unknown event or a field that cannot be changed."""
        with self._lock:
            try:
                event = self._calendar.update(user_id, event_id, fields, modified_at)
            except GraphFailure:
                raise ValueError(f"no event {event_id!r} for user {user_id!r}") from None
            return event.to_graph()

    def delete_event(self, user_id: str, event_id: str) -> None:
        """Remove an event (notify "deleted" after, if wanted); raises ValueError if unknown."""
        with self._lock:
            try:
                self._calendar.delete(user_id, event_id)
            except GraphFailure:
                raise ValueError(f"no event {event_id!r} for user {user_id!r}") from None

    def event(self, user_id: str, event_id: str) -> dict[str, Any] | None:
        """The event as a GET would show it, or None."""
        with self._lock:
            try:
                return self._calendar.get(user_id, event_id).to_graph()
            except GraphFailure:
                return None

    def subscriptions(self) -> list[dict[str, Any]]:
        """The live subscriptions as Graph shows them, oldest first."""
        with self._lock:
            return [s.to_graph() for s in self._subscriptions.live(utc_now())]

    def remove_subscription(self, subscription_id: str) -> bool:
        """Drop a subscription as Graph may on its own (no notification); whether it existed."""
        with self._lock:
            return self._subscriptions.remove(subscription_id) is not None

    def deliveries(self) -> list[Delivery]:
        """The last 10,000 POSTs made to subscribers (handshakes too), oldest first."""
        with self._lock:
            return list(self._deliveries)

    def add_webinar(self, webinar_id: str, organizer_id: str, **options: Any) -> dict[str, Any]:
        """Add or replace a webinar (`Webinars.add`'s options: display_name, status,
        audience, capacity, waitlist, manual_approval, questions, co_organizer_ids, start,
        end); returns it as Graph shows it. Raises ValueError for a bad option."""
        with self._lock:
            return self._webinars.add(webinar_id, organizer_id, **options).to_graph()

    def add_webinars(self, webinars: Iterable[Mapping[str, Any]]) -> int:
        """Add many webinars, each a mapping of `add_webinar`'s arguments; returns how many."""
        with self._lock:
            count = 0
            for webinar in webinars:
                self._webinars.add(**webinar)
                count += 1
            return count

    def webinar_registrations(self, webinar_id: str) -> list[dict[str, Any]]:
        """The webinar's registrations as Graph shows them, canceled ones too, oldest first;
        raises ValueError for an unknown webinar."""
        with self._lock:
            webinar = self._webinars.by_id.get(webinar_id)
            if webinar is None:
                raise ValueError(f"no webinar {webinar_id!r}")
            return [r.to_graph() for r in webinar.registrations]

    def webinar_duplicates(self) -> int:
        """How many (webinar, email) pairs were given a registration while they already had
        one not canceled: what exactly-once must keep at 0."""
        with self._lock:
            return len(self._webinars.duplicated)

    # Behaviour ----------------------------------------------------------------------------

    @property
    def faults(self) -> FaultConfig:
        with self._lock:
            return self._faults.config

    def set_faults(self, faults: FaultConfig | None = None, **fields: Any) -> FaultConfig:
        """Replace the fault configuration: `faults`, or one built from `fields` (others off).

        Raises pydantic.ValidationError for a bad field.
        """
        config = faults if faults is not None else FaultConfig(**fields)
        with self._lock:
            self._faults.configure(config)
        return config

    def script(self, meeting_id: str, steps: Iterable[Mapping[str, Any]]) -> None:
        """Queue steps for the next requests about `meeting_id`; each request consumes one.
        Raises ValueError for a bad step. Other requests' keys: a user lookup's and an
        events list's is the UPN or id it asks for, an event's its id, a subscription's its
        id, and the `/subscriptions` collection's (POST, GET) is "subscriptions".

        Steps: `{"status": 429, "retry_after": "0.5"}`, `{"status": 500|502|503|504}`
        (nothing committed), `{"status": 400|403|404}`, `{"status": 401}` (as if the token
        had expired; the token stays valid), `{"action": "commit_then_timeout"}`,
        `{"action": "commit_then_500"}`, `{"action": "answer"}` (answer normally: a
        script's way to fault the second request about a meeting, not the first).
        """
        with self._lock:
            self._faults.script(meeting_id, steps)

    @property
    def conflict(self) -> ConflictMode:
        return self._conflict

    def set_conflict(self, mode: ConflictMode) -> None:
        """Change what POST does on a meeting that already has a registration."""
        if mode not in ("409", "400", "replace"):
            raise ValueError(f"conflict mode must be 409, 400 or replace, not {mode!r}")
        with self._lock:
            self._conflict = mode

    @property
    def webinar_conflict(self) -> WebinarConflict:
        return self._webinars.conflict

    def set_webinar_conflict(self, mode: WebinarConflict) -> None:
        """Change what a registration POST does for an email already registered."""
        if mode not in ("409", "400", "duplicate", "silent"):
            raise ValueError(f"webinar conflict must be 409, 400, duplicate or silent: {mode!r}")
        with self._lock:
            self._webinars.conflict = mode

    @property
    def webinar_filter(self) -> bool:
        return self._webinars.filter_allowed

    def set_webinar_filter(self, enabled: bool) -> None:
        """Allow `$filter` on a webinar's registrations, or answer it 400."""
        if not isinstance(enabled, bool):
            raise ValueError(f"webinar filter must be true or false, not {enabled!r}")
        with self._lock:
            self._webinars.filter_allowed = enabled

    @property
    def registration_api(self) -> RegistrationApiMode:
        return self._registration_api

    def set_registration_api(self, mode: RegistrationApiMode) -> None:
        """Change how the meeting registration API answers (see RegistrationApiMode)."""
        if mode not in ("live", "gone", "app-only-refused"):
            raise ValueError(f"registration api must be live, gone or app-only-refused: {mode!r}")
        with self._lock:
            self._registration_api = mode

    @property
    def resource_form(self) -> ResourceForm:
        return self._resource_form

    def set_resource_form(self, form: ResourceForm) -> None:
        """Change how change notifications spell their resource (see SimulatorConfig)."""
        if form not in ("users", "users@tenant", "alternate"):
            raise ValueError(f"resource form must be users, users@tenant or alternate: {form!r}")
        with self._lock:
            self._resource_form = form

    def issued_tokens(self) -> list[str]:
        """The bearer and refresh tokens this simulator has handed out (for leak checks)."""
        with self._lock:
            return self._tokens.tokens() + self._sign_in.secrets_issued()

    def sign_in_as(self, user_id: str, upn: str) -> None:
        """Approve the device codes polled from now on as this user (added when unknown)."""
        with self._lock:
            self._sign_in.sign_in_as(user_id, upn)

    def revoke_refresh_tokens(self) -> int:
        """Revoke every refresh token (a sign-in that has lapsed); returns how many."""
        with self._lock:
            return self._sign_in.revoke_refresh_tokens()

    def expire_tokens(self) -> int:
        """Expire every token issued so far (clients' caches still hold them); returns how many."""
        with self._lock:
            return self._tokens.expire_all()

    def reset(self) -> None:
        """Forget everything: data (webinars too), tokens, scripts, statistics; faults,
        conflict modes, webinar filter, registration API mode and resource form go back to
        the construction-time configuration."""
        with self._lock:
            self._build()

    # Inspection ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """(method, raw path, status) of the last 100,000 requests, oldest first (not /_sim/)."""
        with self._lock:
            return list(self._traffic.requests)

    @property
    def creations(self) -> Counter[str]:
        """meeting id -> registrations created by POST (replacements included)."""
        with self._lock:
            return Counter(self._directory.creations)

    def arrivals(self) -> Arrivals:
        """When the last 100,000 Graph requests arrived, in `time.monotonic()` seconds of this
        process: `arrivals().between(start).sustained_per_s()`, `.busiest(1.0)`, ..."""
        with self._lock:
            return self._traffic.arrival_log()

    def early_retries(self) -> list[EarlyRetry]:
        """Requests about a meeting that came before that meeting's last Retry-After ended."""
        with self._lock:
            return list(self._traffic.early)

    def early_retries_global(self) -> list[EarlyRetry]:
        """Graph requests of any caller that came before the latest Retry-After ended."""
        with self._lock:
            return list(self._traffic.early_global)

    def stats(self) -> dict[str, Any]:
        """A JSON-able summary: creations, duplicates, requests_by_status, tokens_issued, ..."""
        now = time.monotonic()
        with self._lock:
            creations = {k: n for k, n in self._directory.creations.items() if n}
            traffic = self._traffic
            return {
                "creations": creations,
                "duplicates": sorted(k for k, n in creations.items() if n > 1),
                "registrations": len(self._directory.registrations),
                "users": len(self._directory.users),
                "meetings": len(self._directory.meetings),
                "events": len(self._calendar),
                "subscriptions": len(self._subscriptions.by_id),
                "deliveries": len(self._deliveries),
                "requests_by_status": dict(traffic.by_status),
                "login_requests_by_status": dict(traffic.login_by_status),
                "tokens_issued": self._tokens.issued,
                "device_code_grants": self._sign_in.device_code_grants,
                "refresh_grants": self._sign_in.refresh_grants,
                "managed_identity_tokens": dict(self._identities.issued),
                "arrivals": traffic.arrivals,
                "in_flight": traffic.in_flight,
                "in_flight_max": traffic.in_flight_max,
                "envelopes_in_flight_max": traffic.envelopes_in_flight_max,
                "requests_per_s": traffic.requests_per_s(now),
                "throttled": len(traffic.throttles),
                "faults_injected": dict(self._faults.injected),
                "early_retries": len(traffic.early),
                "early_retries_global": len(traffic.early_global),
                **self._webinars.stats(),
            }

    # Used by the routes, one call per step of a request ----------------------------------

    def knows_tenant(self, tenant: str) -> bool:
        return self._tokens.knows_tenant(tenant)

    def issue_token(
        self, tenant: str, form: Mapping[str, str], issuer_url: str = ""
    ) -> dict[str, Any]:
        """The token endpoint's answer (`issuer_url` goes into id tokens); raises
        LoginFailure."""
        with self._lock:
            if form.get("grant_type") in DELEGATED_GRANTS:
                return self._sign_in.redeem(tenant, form, issuer_url)
            return self._tokens.issue(tenant, form)

    def start_device_flow(
        self, tenant: str, form: Mapping[str, str], base_url: str
    ) -> dict[str, Any]:
        """The device-code endpoint's answer; raises LoginFailure."""
        with self._lock:
            return self._sign_in.start(tenant, form, base_url)

    def managed_identity_token(
        self, flavour: Flavour, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> IdentityAnswer:
        with self._lock:
            return self._identities.answer(flavour, headers, query)

    def token_valid(self, token: str | None) -> bool:
        with self._lock:
            return self._tokens.valid(token)

    def token_subject(self, token: str | None) -> str | None:
        """The user a delegated token acts for; None for an application token."""
        with self._lock:
            return self._tokens.subject(token)

    def latency_s(self) -> float:
        """This call's simulated latency: the configured mean, jittered 0.5x-1.5x."""
        mean_ms = self._faults.config.latency_ms
        return mean_ms * self._jitter.uniform(0.5, 1.5) / 1000 if mean_ms else 0.0

    def stall_s(self) -> float:
        return self._faults.config.stall_s

    def meeting_for_join_url(self, join_web_url: str) -> str | None:
        with self._lock:
            return self._directory.by_join_url.get(join_web_url)

    def arrive(self, key: str | None) -> None:
        with self._lock:
            self._traffic.arrive(key, time.monotonic())

    def leave(self) -> None:
        with self._lock:
            self._traffic.leave()

    def envelope_arrives(self) -> None:
        with self._lock:
            self._traffic.envelope_arrives()

    def envelope_leaves(self) -> None:
        with self._lock:
            self._traffic.envelope_leaves()

    def admit(self, key: str | None, method: str) -> Fault | None:
        """The fault this authenticated Graph request meets, or None."""
        with self._lock:
            return self._faults.decide(key, method, time.monotonic())

    def record(
        self,
        method: str,
        raw_path: str,
        status: int,
        *,
        graph: bool = True,
        key: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        with self._lock:
            self._traffic.record(
                method,
                raw_path,
                status,
                time.monotonic(),
                graph=graph,
                key=key,
                retry_after_s=retry_after_s,
            )

    def find_user(self, upn_or_id: str) -> dict[str, Any]:
        """`GET /users/{upnOrId}`; raises GraphFailure."""
        with self._lock:
            return self._directory.find_user(upn_or_id).to_graph()

    # `acting`: the objectId a delegated token acts for (None: an application token).

    def find_meetings(
        self, user_id: str, join_web_url: str, acting: str | None = None
    ) -> list[dict[str, Any]]:
        """`GET /users/{id}/onlineMeetings?$filter=JoinWebUrl eq ...`; raises GraphFailure."""
        with self._lock:
            found = self._directory.find_meetings(user_id, join_web_url, acting)
            return [m.to_graph() for m in found]

    def refuse_retired_registration(self, acting: str | None = None) -> None:
        """A registration call's refusal by the API itself (gone, or app-only refused);
        raises GraphFailure, returns when the call goes on."""
        with self._lock:
            refuse_retired(self._registration_api, acting)

    def register(
        self, user_id: str, meeting_id: str, body: Mapping[str, Any], acting: str | None = None
    ) -> dict[str, Any]:
        """`POST .../registration`; raises GraphFailure."""
        with self._lock:
            directory = self._directory
            return directory.register(user_id, meeting_id, body, self._conflict, acting).to_graph()

    def get_meeting(
        self, user_id: str, meeting_id: str, acting: str | None = None
    ) -> dict[str, Any]:
        """`GET /users/{id}/onlineMeetings/{id}`; raises GraphFailure 403 / 404."""
        with self._lock:
            return self._directory.get_meeting(user_id, meeting_id, acting).to_graph()

    def get_registration(
        self, user_id: str, meeting_id: str, acting: str | None = None
    ) -> dict[str, Any]:
        """`GET .../registration`; raises GraphFailure."""
        with self._lock:
            return self._directory.get_registration(user_id, meeting_id, acting).to_graph()

    def delete_registration(self, user_id: str, meeting_id: str, acting: str | None = None) -> None:
        """`DELETE .../registration`; raises GraphFailure."""
        with self._lock:
            self._directory.delete_registration(user_id, meeting_id, acting)

    def get_event(self, user_id: str, event_id: str) -> dict[str, Any]:
        """`GET /users/{id}/events/{eventId}`; raises GraphFailure."""
        with self._lock:
            return self._calendar.get(user_id, event_id).to_graph()

    def find_events(self, user_id: str, time_filter: TimeFilter | None) -> list[dict[str, Any]]:
        """`GET /users/{id}/events?$filter=...`, every page; raises GraphFailure."""
        with self._lock:
            return [e.to_graph() for e in self._calendar.find(user_id, time_filter)]

    def draft_subscription(self, body: Mapping[str, Any]) -> Subscription:
        """`POST /subscriptions` checked but not kept (the handshake comes first); raises
        GraphFailure."""
        with self._lock:
            return subscriptions.draft(
                body,
                self._directory,
                now=utc_now(),
                max_minutes=self.config.max_subscription_minutes,
                application_id=self.config.client_id,
            )

    def create_subscription(self, subscription: Subscription) -> dict[str, Any]:
        """Keep a drafted subscription whose URLs passed the handshake."""
        with self._lock:
            self._subscriptions.add(subscription)
            return subscription.to_graph()

    def get_subscription(self, subscription_id: str) -> dict[str, Any]:
        """`GET /subscriptions/{id}`; raises GraphFailure."""
        with self._lock:
            return self._subscriptions.get(subscription_id, utc_now()).to_graph()

    def renew_subscription(self, subscription_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """`PATCH /subscriptions/{id}`; raises GraphFailure."""
        with self._lock:
            now = utc_now()
            self._subscriptions.get(subscription_id, now)  # 404 before judging the body
            expires_at = subscriptions.renewal(
                body, now=now, max_minutes=self.config.max_subscription_minutes
            )
            return self._subscriptions.renew(subscription_id, expires_at, now).to_graph()

    def delete_subscription(self, subscription_id: str) -> None:
        """`DELETE /subscriptions/{id}`; raises GraphFailure."""
        with self._lock:
            self._subscriptions.get(subscription_id, utc_now())
            self._subscriptions.remove(subscription_id)

    def change_notifications(
        self, user_id: str, event_id: str, change_type: str
    ) -> list[tuple[str, dict[str, Any]]]:
        """(notificationUrl, payload) for each subscription to be told of this change.

        A deleted event may be notified as "deleted" (without an etag). Raises ValueError
        for an unknown user, change type, or (unless "deleted") event."""
        if change_type not in subscriptions.CHANGE_TYPES:
            raise ValueError(f"change_type must be created, updated or deleted: {change_type!r}")
        with self._lock:
            try:
                owner = self._directory.find_user(user_id)
            except GraphFailure:
                raise ValueError(f"no user {user_id!r}") from None
            event = self._calendar.events.get(owner.object_id, {}).get(event_id)
            if event is None and change_type != "deleted":
                raise ValueError(f"no event {event_id!r} for user {user_id!r}")
            etag = event.etag if event is not None else None
            tenant_id = self.config.tenant_id
            made = []
            for s in self._subscriptions.for_change(owner.object_id, change_type, utc_now()):
                item = change_item(s, tenant_id, change_type, event_id, etag, self._next_form())
                made.append((s.notification_url, {"value": [item]}))
            return made

    def _next_form(self) -> ResourceForm:
        """The resource form of the next change item (the lock held)."""
        form = self._resource_form
        if form == "alternate":
            form = "users@tenant" if self._changes_notified % 2 else "users"
        self._changes_notified += 1
        return form

    def lifecycle_notification(
        self, subscription_id: str, lifecycle_event: str
    ) -> tuple[str, dict[str, Any]] | None:
        """(lifecycleNotificationUrl, payload), or None when the subscription has no such URL.
        `subscriptionRemoved` deletes the subscription. Raises ValueError for an unknown
        subscription or lifecycle event."""
        if lifecycle_event not in LIFECYCLE_EVENTS:
            raise ValueError(
                f"lifecycle_event must be one of {sorted(LIFECYCLE_EVENTS)}: {lifecycle_event!r}"
            )
        with self._lock:
            try:
                subscription = self._subscriptions.get(subscription_id, utc_now())
            except GraphFailure:
                raise ValueError(f"no subscription {subscription_id!r}") from None
            if lifecycle_event == "subscriptionRemoved":
                self._subscriptions.remove(subscription_id)
            if subscription.lifecycle_url is None:
                return None
            item = lifecycle_item(subscription, self.config.tenant_id, lifecycle_event)
            return subscription.lifecycle_url, {"value": [item]}

    def webinar_call(self, operation: Callable[[Webinars], T]) -> T:
        """One webinar operation (`webinar_routes`) with the lock held; `operation` must
        return copies (Graph JSON), never the live records. Raises what it raises."""
        with self._lock:
            return operation(self._webinars)

    def record_delivery(self, delivery: Delivery) -> None:
        with self._lock:
            self._deliveries.append(delivery)
