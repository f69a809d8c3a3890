"""`meetreg serve`: the HTTP side, an ASGI app (Starlette) under uvicorn.

    POST /graph/notifications   Graph change notifications (and its validation handshake)
    POST /graph/lifecycle       Graph lifecycle notifications (same handshake)
    POST /api/registrations     JSON intake, behind `Authorization: Bearer MEETREG_API_KEY`
    GET  /healthz               Redis reachable and a worker heartbeat seen
    GET  /metrics               Prometheus metrics (worker.metrics); no key: they hold no
                                secret

Graph wants an answer within 3 s and retries for hours after a 5xx, so the webhook does
no Graph work itself: it checks each item's clientState, records the accepted ones in
Redis, puts a task on the queue for each, and answers 202. The workers do the rest.
Every secret comparison is constant-time; every body is read up to a size limit.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from jobs.enqueue import PublishMany, enqueue_rows
from jobs.inbox import Inbox
from jobs.intake import RejectedItems, read_requests
from jobs.notifications import ChangeNotification, LifecycleNotification, read_delivery
from worker.errors import InputError, StoreError
from worker.metrics import Exposition, SharedGauges
from worker.ratelimit import RateLimiter
from worker.settings import DEFAULT_RATE_LIMIT_PER_S, Settings
from worker.store import OutcomeStore

log = logging.getLogger(__name__)

MAX_NOTIFICATION_BYTES = 1024 * 1024  # Graph sends at most a few hundred items at a time
MAX_VALIDATION_TOKEN_CHARS = 1024
_NO_SNIFF = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


class BodyTooLarge(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ServeDeps:
    """What the app needs, built once by `meetreg serve` (or by a test)."""

    store: OutcomeStore
    inbox: Inbox
    publish_rows: PublishMany
    publish_change: Callable[[ChangeNotification], None]
    publish_lifecycle: Callable[[LifecycleNotification], None]
    client_state: str | None
    api_key: str | None
    intake_max_bytes: int
    chunk_size: int
    worker_seen_within_ms: int
    rate_limit_per_s: float = DEFAULT_RATE_LIMIT_PER_S  # the limiter's cap, for its gauge


def build_app(deps: ServeDeps) -> Starlette:
    async def notifications(request: Request) -> Response:
        return await _webhook(request, deps, lifecycle_url=False)

    async def lifecycle(request: Request) -> Response:
        return await _webhook(request, deps, lifecycle_url=True)

    async def registrations(request: Request) -> Response:
        return await _intake(request, deps)

    async def healthz(request: Request) -> Response:
        return await run_in_threadpool(_health, deps)

    exposition: list[Exposition] = []  # built on the first scrape: `deps` may be absent

    async def metrics(request: Request) -> Response:
        if not exposition:
            client = deps.store.redis
            limiter = RateLimiter(client, deps.rate_limit_per_s)
            exposition.append(Exposition(SharedGauges(client, limiter)))
        accept = request.headers.get("accept", "")
        page, content_type = await run_in_threadpool(exposition[0].page, accept)  # reads Redis
        return Response(page, headers={**_NO_SNIFF, "Content-Type": content_type})

    return Starlette(
        routes=[
            Route("/graph/notifications", notifications, methods=["POST"]),
            Route("/graph/lifecycle", lifecycle, methods=["POST"]),
            Route("/api/registrations", registrations, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )


async def _webhook(request: Request, deps: ServeDeps, *, lifecycle_url: bool) -> Response:
    token = request.query_params.get("validationToken")
    if token is not None:
        # Graph checks the URL is ours: echo its token, as plain text and nothing else.
        if len(token) > MAX_VALIDATION_TOKEN_CHARS:
            return _problem(400, "validationToken is too long")
        return PlainTextResponse(token, headers=_NO_SNIFF)
    if deps.client_state is None:
        return _problem(503, "MEETREG_WEBHOOK_CLIENT_STATE is not set on this server")
    try:
        body = await _read_body(request, MAX_NOTIFICATION_BYTES)
        delivery = read_delivery(body, deps.client_state)
    except BodyTooLarge:
        return _problem(413, f"the body is larger than {MAX_NOTIFICATION_BYTES} bytes")
    except InputError as exc:
        return _problem(400, str(exc))
    if delivery.wrong_state:
        log.warning("dropped %d notification(s) with a wrong clientState", delivery.wrong_state)
    try:
        accepted = await run_in_threadpool(_accept, deps, delivery.changes, delivery.lifecycle)
    except Exception as exc:  # Redis or the broker: Graph will deliver again
        log.error("could not record notifications: %s", type(exc).__name__)
        return _problem(503, "cannot record notifications now; deliver again later")
    kind = "lifecycle" if lifecycle_url else "change"
    log.info("%s delivery: %d accepted, %d dropped", kind, accepted, delivery.wrong_state)
    return Response(status_code=202)


def _accept(
    deps: ServeDeps, changes: list[ChangeNotification], lifecycle: list[LifecycleNotification]
) -> int:
    accepted = 0
    for note in changes:
        if not deps.inbox.accept(note):
            continue  # a redelivery: its task was queued the first time
        try:
            deps.publish_change(note)
        except Exception:
            deps.inbox.forget(note)
            raise
        accepted += 1
    for event in lifecycle:
        deps.publish_lifecycle(event)
        accepted += 1
    return accepted


async def _intake(request: Request, deps: ServeDeps) -> Response:
    if deps.api_key is None:
        return _problem(503, "MEETREG_API_KEY is not set on this server")
    if not _authorized(request.headers.get("authorization", ""), deps.api_key):
        return _problem(401, "a valid API key is required", {"WWW-Authenticate": "Bearer"})
    try:
        body = await _read_body(request, deps.intake_max_bytes)
        rows = read_requests(body)
    except BodyTooLarge:
        return _problem(413, f"the body is larger than {deps.intake_max_bytes} bytes")
    except RejectedItems as exc:
        errors = [asdict(error) for error in exc.errors]
        return JSONResponse({"error": str(exc), "items": errors}, status_code=422)
    except InputError as exc:
        return _problem(400, str(exc))
    batch_id = request.query_params.get("batch_id") or None
    try:
        done = await run_in_threadpool(
            enqueue_rows,
            rows,
            store=deps.store,
            publish=deps.publish_rows,
            source="api",
            batch_id=batch_id,
            chunk_size=deps.chunk_size,
        )
    except InputError as exc:  # a batch id that is not usable, or names another batch
        return _problem(400, str(exc))
    except StoreError:
        return _problem(503, "the outcome store is unreachable; nothing was enqueued")
    payload = {"batch_id": done.batch_id, "total": done.total, "resumed": done.resumed}
    return JSONResponse(payload, status_code=202)


def _health(deps: ServeDeps) -> Response:
    try:
        deps.store.redis.ping()
        workers = deps.store.workers_seen_within(deps.worker_seen_within_ms)
    except Exception as exc:  # redis-py's errors; its message may name the host only
        return JSONResponse(
            {"ok": False, "redis": f"unreachable ({type(exc).__name__})", "workers": None},
            status_code=503,
        )
    ok = workers > 0
    return JSONResponse(
        {"ok": ok, "redis": "ok", "workers": workers}, status_code=200 if ok else 503
    )


def _authorized(header: str, api_key: str) -> bool:
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), api_key.encode())


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes `limit` (a declared or a streamed length)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise BodyTooLarge
        parts.append(part)
    return b"".join(parts)


def _problem(status: int, message: str, headers: dict[str, Any] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def serve_deps(settings: Settings, store: OutcomeStore) -> ServeDeps:
    """The app's dependencies from the settings: the worker tasks' publishers included."""
    from worker.tasks import publish_change, publish_chunks, publish_lifecycle

    def secret(value: SecretStr | None) -> str | None:
        return None if value is None else value.get_secret_value()

    return ServeDeps(
        store=store,
        inbox=Inbox(store.redis, store.retention_s),
        publish_rows=publish_chunks,
        publish_change=publish_change,
        publish_lifecycle=publish_lifecycle,
        client_state=secret(settings.webhook_client_state),
        api_key=secret(settings.api_key),
        intake_max_bytes=settings.intake_max_bytes,
        chunk_size=settings.chunk_size,
        # Three missed heartbeats: a worker busy with a long chunk still beats.
        worker_seen_within_ms=settings.lease_ms,
        rate_limit_per_s=settings.rate_limit_per_s,
    )
