"""The simulator's settings: who may sign in, how a second registration is answered, faults.

Both are data (frozen pydantic models), so the control API validates the JSON form of a
`FaultConfig` the same way the Python caller's keyword arguments are validated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ConflictMode = Literal["409", "400", "replace"]
"""What POST does when the meeting already has a registration (undocumented by Microsoft)."""

RegistrationApiMode = Literal["live", "gone", "app-only-refused"]
"""How the meeting registration API answers: as it did ("live"), as a path Graph no longer
knows ("gone": 400 for the segment 'registration', since Microsoft retired it on
2024-12-12), or refusing app-only tokens (403; delegated /me calls still work)."""

ResourceForm = Literal["users", "users@tenant", "alternate"]
"""How a change notification spells its `resource`: `Users/{id}/Events/{id}`, or as in
Microsoft's delivery samples `users/{id}@{tenantId}/events/{id}`, or each in turn."""

WebinarConflict = Literal["409", "400", "duplicate", "silent"]
"""What POST does for an email already registered (not canceled) for the webinar, which
Microsoft does not document: 409 Conflict, 400 BadRequest, a second registration made, or
success and nothing new."""

RetryAfterStyle = Literal["int", "float"]
"""How `Retry-After` is spelled: "2" (rounded up) or "2.128" (Graph has been seen sending both)."""

DEFAULT_TENANT_ID = "7d3f1e2a-5b6c-4d8e-9f01-23456789abcd"
DEFAULT_CLIENT_ID = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
DEFAULT_CLIENT_SECRET = "meetreg-simulator-secret"  # noqa: S105 - a simulator's well-known secret
DEFAULT_TOKEN_TTL_S = 3600.0
# Who the device-code flow signs in as (added to the directory when unknown).
DEFAULT_DEVICE_USER_ID = "5e7c1d2a-3b4f-4a6e-9c8d-7f6e5d4c3b2a"
DEFAULT_DEVICE_USER_UPN = "organizer.delegated@contoso.example"
# What the App Service flavour of the managed-identity endpoint expects in X-IDENTITY-HEADER.
DEFAULT_IDENTITY_HEADER = "meetreg-simulator-identity-header"
DEFAULT_STALL_S = 60.0
DEFAULT_THROTTLE_RETRY_AFTER_S = 1.0
REQUEST_LOG_SIZE = 100_000
DELIVERY_LOG_SIZE = 10_000
# Outlook event subscriptions live at most 7 days (4,230 minutes in older documentation).
DEFAULT_MAX_SUBSCRIPTION_MINUTES = 10_080
# Entra says 3599 s whatever the server-side lifetime is, like the real service.
TOKEN_EXPIRES_IN_S = 3599


class FaultConfig(BaseModel):
    """Everything the simulator does wrong on purpose; all off by default.

    Probabilities are per Graph request and drawn from one RNG seeded with `seed`, so a
    sequential test sees the same faults on every run.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_ms: float = Field(default=0.0, ge=0)  # mean; each call sleeps 0.5x-1.5x of it
    rate_limit_per_s: float | None = Field(
        default=None, gt=0
    )  # the service's own limit, all callers
    retry_after_style: RetryAfterStyle = "int"
    throttle_probability: float = Field(default=0.0, ge=0, le=1)
    # Retry-After of random 429s, and of random 503s (which may carry one, as Graph's
    # throttling docs say).
    throttle_retry_after_s: float = Field(default=DEFAULT_THROTTLE_RETRY_AFTER_S, ge=0)
    error_5xx_probability: float = Field(default=0.0, ge=0, le=1)  # nothing committed
    commit_then_timeout_probability: float = Field(default=0.0, ge=0, le=1)  # POST, DELETE
    commit_then_500_probability: float = Field(default=0.0, ge=0, le=1)  # POST, DELETE
    stall_s: float = Field(default=DEFAULT_STALL_S, ge=0)  # how long commit_then_timeout stalls
    seed: int | None = None


class SimulatorConfig(BaseModel):
    """One simulator: its tenant and client app, its Graph behaviour, its listeners.

    `client_certificates` are PEM certificates; when any is given, a client assertion must
    be signed by one of their keys (with none, any well-formed assertion is accepted).
    The device-code flow signs in as `device_user_id` / `device_user_upn` once it has
    answered `authorization_pending` to `device_code_pending_polls` polls (the user
    "typing the code" meanwhile). The managed-identity endpoints serve the system-assigned
    identity and the user-assigned ones whose client ids are `user_assigned_identities`.
    `tls_dir` keeps the generated CA and server certificate there instead of a temporary
    directory removed on stop. `max_subscription_minutes` is how far ahead a subscription's
    expirationDateTime may be (4230 mimics the older limit). `resource_form` is how change
    notifications name the event; by default the two forms alternate, so that a receiver
    meets both. `webinar_conflict` and `webinar_filter` are the webinar modes (`webinars`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str = DEFAULT_TENANT_ID
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    client_certificates: tuple[str, ...] = ()
    conflict: ConflictMode = "409"
    registration_api: RegistrationApiMode = "live"
    resource_form: ResourceForm = "alternate"
    webinar_conflict: WebinarConflict = "409"
    webinar_filter: bool = True  # False: registrations' $filter answers 400, as v1.0 may
    token_ttl_s: float = Field(default=DEFAULT_TOKEN_TTL_S, gt=0)
    faults: FaultConfig = FaultConfig()
    max_subscription_minutes: int = Field(default=DEFAULT_MAX_SUBSCRIPTION_MINUTES, gt=0)
    https_port: int = Field(default=0, ge=0, le=65535)  # 0: any free port
    plain_http: bool = False
    http_port: int = Field(default=0, ge=0, le=65535)
    tls_dir: Path | None = None
    device_user_id: str = DEFAULT_DEVICE_USER_ID
    device_user_upn: str = DEFAULT_DEVICE_USER_UPN
    device_code_pending_polls: int = Field(default=1, ge=0, le=100)
    identity_header: str = DEFAULT_IDENTITY_HEADER
    user_assigned_identities: tuple[str, ...] = ()
