"""`meetreg serve`: the HTTP side, an ASGI app (Starlette) under uvicorn.

    POST /graph/notifications   Graph change notifications (and its validation handshake)
    POST /graph/lifecycle       Graph lifecycle notifications (same handshake)
    POST /api/registrations     JSON intake, behind `Authorization: Bearer MEETREG_API_KEY`
    GET  /healthz               Redis reachable and a worker heartbeat seen
    GET  /readyz                Redis reachable: serve can take requests (no worker needed,
                                so a worker outage does not take the webhook out of service)
    GET  /                      the status page: recent batches, live (jobs.http.status_page)
    GET  /batches/{id}          one batch: counts, failures by Graph error, throughput
    GET  /batches/{id}/report.csv, .json    `meetreg report`, as a download
    POST /batches/{id}/retry    `meetreg retry`, behind the API key (header or form field)
    GET  /api/batches, /api/batches/{id}    the JSON the page polls (read-only)
    GET  /metrics               Prometheus metrics (worker.telemetry.metrics); no key, as on every
                                worker: counts and batch ids, no UPN, meeting or key

Graph wants an answer within 3 s and retries for hours after a 5xx, so the webhook does
no Graph work itself: it checks each item's clientState, keeps the items of subscriptions
meetreg made (their organizer from meetreg's record), records the accepted ones in Redis,
puts a task on the queue for each, and answers 202. The workers do the rest. Items it
drops (a wrong clientState, a subscription it does not know, nothing to act on) are
counted in the log and still answered 202: an answer tells a forger nothing, and Graph
would only deliver them again.
Every secret comparison is constant-time; every body is read up to a size limit.
Reading (the status page, the batch JSON, the reports: every organizer's UPN and
meeting) needs a credential (jobs.http.auth): the viewer key as an HTTP Basic password,
which a browser asks for once, or the API key; MEETREG_PUBLIC_PAGES opens them to
whoever reaches the port, for a trusted network. Graph's webhook (its clientState is
its credential) and /healthz stay open.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from typing import IO, Any, TypeVar, cast
from urllib.parse import parse_qs

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from jobs.enqueue import PublishMany, enqueue_rows, requeue_failed
from jobs.events.inbox import Inbox
from jobs.events.notifications import (
    ChangeNotification,
    Delivery,
    LifecycleNotification,
    read_delivery,
    tie_to_subscriptions,
)
from jobs.events.subscriptions import SubscriptionBook
from jobs.http import status_page
from jobs.http.auth import BASIC_CHALLENGE, holds_api_key, may_read, same_key
from jobs.http.status_view import RECENT_BATCHES, batch_detail, batch_summary
from jobs.report import FORMATS, write_report
from jobs.sources.intake import RejectedItems, operation_of, read_requests
from worker.errors import BatchConflict, InputError, StoreError, UnknownBatchError
from worker.ratelimit.limiter import RateLimiter
from worker.registrants import DEFAULTS, Defaults
from worker.settings import DEFAULT_RATE_LIMIT_PER_S, DEFAULT_SERVE_BODY_TIMEOUT_S, Settings
from worker.store.outcome_store import OutcomeStore
from worker.telemetry.metrics import Exposition, SharedGauges

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_NOTIFICATION_BYTES = 1024 * 1024  # Graph sends at most a few hundred items at a time
# A larger body is parsed in a thread: 1 MiB of notifications takes ~30 ms to read, which
# on the event loop is one stretch every other request (Graph's handshake, /healthz)
# waits out; in a thread the loop runs between the reader's Python steps.
PARSE_ON_LOOP_BYTES = 16 * 1024
MAX_VALIDATION_TOKEN_CHARS = 1024
_NO_SNIFF = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
MAX_COUNT_DIGITS = 9  # a row count shown back on the page, never more
MAX_FORM_BYTES = 4096  # the retry form holds the API key and nothing else
REPORT_IN_MEMORY_BYTES = 4 * 1024 * 1024  # a larger report is spooled to a temporary file
_REPORT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
# The page's own script is the only one a browser will run (its hash), and the page may
# not be framed: the retry button cannot be clicked through another site.
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(status_page.SCRIPT.encode()).digest()).decode()
_PAGE_HEADERS = {
    **_NO_SNIFF,
    "Content-Security-Policy": (
        f"default-src 'none'; script-src 'sha256-{_SCRIPT_HASH}'; style-src 'unsafe-inline'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class BodyTooLarge(Exception):
    pass


class BodyLate(Exception):
    """The body did not arrive within the deadline (a slow or stalled client)."""


@dataclass(frozen=True, slots=True)
class ServeDeps:
    """What the app needs, built once by `meetreg serve` (or by a test)."""

    store: OutcomeStore
    inbox: Inbox
    subscriptions: SubscriptionBook
    publish_rows: PublishMany
    publish_change: Callable[[ChangeNotification], None]
    publish_lifecycle: Callable[[LifecycleNotification], None]
    client_state: str | None
    api_key: str | None
    intake_max_bytes: int
    chunk_size: int
    worker_seen_within_ms: int
    rate_limit_per_s: float = DEFAULT_RATE_LIMIT_PER_S  # the limiter's cap, for its gauge
    body_timeout_s: float = DEFAULT_SERVE_BODY_TIMEOUT_S  # a body must arrive within this
    viewer_key: str | None = None  # reading pages, as an HTTP Basic password
    public_pages: bool = False  # reading needs no credential (a trusted network)
    registrant_defaults: Defaults = DEFAULTS  # an intake registrant's time zone, language


Handler = Callable[[Request], Awaitable[Response]]


def build_app(deps: ServeDeps) -> Starlette:
    def reading(handler: Handler, *, page: bool = False) -> Handler:
        """`handler` behind the reading credential (a `page` refuses with a page)."""

        async def guarded(request: Request) -> Response:
            refusal = _reading_refusal(request, deps, page=page)
            return refusal if refusal is not None else await handler(request)

        return guarded

    async def notifications(request: Request) -> Response:
        return await _webhook(request, deps, lifecycle_url=False)

    async def lifecycle(request: Request) -> Response:
        return await _webhook(request, deps, lifecycle_url=True)

    async def registrations(request: Request) -> Response:
        return await _intake(request, deps)

    async def healthz(request: Request) -> Response:
        return await run_in_threadpool(_health, deps)

    async def readyz(request: Request) -> Response:
        return await run_in_threadpool(_ready, deps)

    async def batches_page(request: Request) -> Response:
        return await run_in_threadpool(_batches_page, deps)

    async def batch_page(request: Request) -> Response:
        shown = _count(request.query_params.get("retried", ""))
        return await run_in_threadpool(_batch_page, deps, request.path_params["batch_id"], shown)

    async def batches_json(request: Request) -> Response:
        return await run_in_threadpool(_batches_json, deps)

    async def batch_json(request: Request) -> Response:
        return await run_in_threadpool(_batch_json, deps, request.path_params["batch_id"])

    async def report(request: Request) -> Response:
        params = request.path_params
        return await run_in_threadpool(_report, deps, params["batch_id"], params["fmt"])

    async def retry(request: Request) -> Response:
        return await _retry(request, deps)

    exposition: list[Exposition] = []  # built on the first scrape: `deps` may be absent

    async def metrics(request: Request) -> Response:
        if not exposition:
            limiter = RateLimiter(deps.store.redis, deps.rate_limit_per_s)
            exposition.append(Exposition(SharedGauges(deps.store, limiter)))
        accept = request.headers.get("accept", "")
        page, content_type = await run_in_threadpool(exposition[0].page, accept)  # reads Redis
        return Response(page, headers={**_NO_SNIFF, "Content-Type": content_type})

    return Starlette(
        routes=[
            Route("/graph/notifications", notifications, methods=["POST"]),
            Route("/graph/lifecycle", lifecycle, methods=["POST"]),
            Route("/api/registrations", registrations, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/", reading(batches_page, page=True), methods=["GET"]),
            Route("/batches/{batch_id}", reading(batch_page, page=True), methods=["GET"]),
            Route("/batches/{batch_id}/report.{fmt}", reading(report), methods=["GET"]),
            Route("/batches/{batch_id}/retry", retry, methods=["POST"]),
            Route("/api/batches", reading(batches_json), methods=["GET"]),
            Route("/api/batches/{batch_id}", reading(batch_json), methods=["GET"]),
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
        body = await _read_body(request, MAX_NOTIFICATION_BYTES, deps.body_timeout_s)
        delivery = await _parse(partial(read_delivery, client_state=deps.client_state), body)
    except BodyTooLarge:
        return _problem(413, f"the body is larger than {MAX_NOTIFICATION_BYTES} bytes")
    except BodyLate:
        return _late(deps)
    except InputError as exc:
        return _problem(400, str(exc))
    if delivery.wrong_state:
        log.warning("dropped %d notification(s) with a wrong clientState", delivery.wrong_state)
    try:
        delivery, accepted = await run_in_threadpool(_accept, deps, delivery)
    except Exception as exc:  # Redis or the broker: Graph will deliver again
        log.error("could not record notifications: %s", type(exc).__name__)
        return _problem(503, "cannot record notifications now; deliver again later")
    if delivery.unknown_subscription:
        log.warning(
            "dropped %d notification(s) of subscriptions meetreg did not make",
            delivery.unknown_subscription,
        )
    dropped = delivery.wrong_state + delivery.unknown_subscription + delivery.unreadable
    kind = "lifecycle" if lifecycle_url else "change"
    log.info("%s delivery: %d accepted, %d dropped", kind, accepted, dropped)
    return Response(status_code=202)


def _accept(deps: ServeDeps, delivery: Delivery) -> tuple[Delivery, int]:
    """Tie the items to our subscriptions, then record and queue them: the delivery as
    kept, and how many were accepted (a redelivered change is not)."""
    delivery = tie_to_subscriptions(delivery, deps.subscriptions.organizer_of)
    accepted = 0
    for note in delivery.changes:
        if not deps.inbox.accept(note):
            continue  # a redelivery: its task was queued the first time
        try:
            deps.publish_change(note)
        except Exception:
            deps.inbox.forget(note)
            raise
        accepted += 1
    for event in delivery.lifecycle:
        deps.publish_lifecycle(event)
        accepted += 1
    return delivery, accepted


async def _intake(request: Request, deps: ServeDeps) -> Response:
    if deps.api_key is None:
        return _problem(503, "MEETREG_API_KEY is not set on this server")
    if not holds_api_key(request.headers.get("authorization", ""), deps.api_key):
        return _problem(401, "a valid API key is required", {"WWW-Authenticate": "Bearer"})
    try:
        body = await _read_body(request, deps.intake_max_bytes, deps.body_timeout_s)
        rows = await _parse(partial(read_requests, defaults=deps.registrant_defaults), body)
    except BodyTooLarge:
        return _problem(413, f"the body is larger than {deps.intake_max_bytes} bytes")
    except BodyLate:
        return _late(deps)
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
            operation=operation_of(rows),
        )
    except BatchConflict as exc:  # the batch id names a batch of other rows
        return _problem(409, str(exc))
    except InputError as exc:  # a batch id that is not usable, or names an undo batch
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
        return _redis_unreachable(exc, workers=None)
    ok = workers > 0
    return JSONResponse(
        {"ok": ok, "redis": "ok", "workers": workers}, status_code=200 if ok else 503
    )


def _ready(deps: ServeDeps) -> Response:
    """Serve can take requests when Redis answers: what it accepts is recorded there, and
    workers take it up whenever they run."""
    try:
        deps.store.redis.ping()
    except Exception as exc:  # redis-py's errors; its message may name the host only
        return _redis_unreachable(exc)
    return JSONResponse({"ok": True, "redis": "ok"})


def _redis_unreachable(exc: Exception, **more: object) -> Response:
    return JSONResponse(
        {"ok": False, "redis": f"unreachable ({type(exc).__name__})", **more}, status_code=503
    )


def _count(text: str) -> int | None:
    """A count from a query string: ASCII digits only (str.isdigit() also takes '²',
    which int() refuses), and few of them (int() refuses 5,000 digits too)."""
    if not (0 < len(text) <= MAX_COUNT_DIGITS and text.isascii() and text.isdigit()):
        return None
    return int(text)


def _reading_refusal(request: Request, deps: ServeDeps, *, page: bool) -> Response | None:
    """None when the request may read; else the answer: 401 with the Basic challenge
    (a browser asks its user for the key), or 503 when no key could open it."""
    if deps.public_pages:
        return None
    if deps.viewer_key is None and deps.api_key is None:
        message = "set MEETREG_VIEWER_KEY (or MEETREG_PUBLIC_PAGES=true) on this server"
        return _page_problem(503, "Closed", message) if page else _problem(503, message)
    header = request.headers.get("authorization", "")
    if may_read(header, viewer_key=deps.viewer_key, api_key=deps.api_key):
        return None
    message = "sign in with the viewer key (any user name) or the API key"
    challenge = {"WWW-Authenticate": BASIC_CHALLENGE}
    if page:
        return _page_problem(401, "Sign-in needed", message, headers=challenge)
    return _problem(401, message, challenge)


# The status page ----------------------------------------------------------------------------


def _batches_page(deps: ServeDeps) -> Response:
    try:
        batches = [batch_summary(status) for status in deps.store.recent_batches(RECENT_BATCHES)]
    except StoreError:
        return _page_problem(503, "Unavailable", "The outcome store is unreachable.")
    return HTMLResponse(status_page.batches_page(batches), headers=_PAGE_HEADERS)


def _batch_page(deps: ServeDeps, batch_id: str, retried: int | None) -> Response:
    try:
        detail = batch_detail(deps.store.batch_status(batch_id), deps.store.batch_stats(batch_id))
    except UnknownBatchError:
        return _page_problem(404, "Unknown batch", f"No batch {batch_id!r} is kept.")
    except StoreError:
        return _page_problem(503, "Unavailable", "The outcome store is unreachable.")
    return HTMLResponse(status_page.batch_page(detail, retried), headers=_PAGE_HEADERS)


def _batches_json(deps: ServeDeps) -> Response:
    try:
        batches = [batch_summary(status) for status in deps.store.recent_batches(RECENT_BATCHES)]
    except StoreError:
        return _problem(503, "the outcome store is unreachable")
    return JSONResponse({"batches": batches}, headers=_NO_SNIFF)


def _batch_json(deps: ServeDeps, batch_id: str) -> Response:
    try:
        detail = batch_detail(deps.store.batch_status(batch_id), deps.store.batch_stats(batch_id))
    except UnknownBatchError as exc:
        return _problem(404, str(exc))
    except StoreError:
        return _problem(503, "the outcome store is unreachable")
    return JSONResponse(detail, headers=_NO_SNIFF)


def _report(deps: ServeDeps, batch_id: str, fmt: str) -> Response:
    """`meetreg report` as a download, spooled first: a store failure half-way is a 503,
    not a truncated file that looks whole."""
    if fmt not in FORMATS:
        return _problem(404, f"reports are .csv or .json, not .{fmt}")
    # Closed by _drain once sent, not by a `with`: the response outlives this function.
    spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115
        max_size=REPORT_IN_MEMORY_BYTES, mode="w+", encoding="utf-8", newline=""
    )
    try:
        write_report(deps.store, batch_id, fmt, cast(Any, spool))
    except (UnknownBatchError, StoreError) as exc:
        spool.close()
        if isinstance(exc, UnknownBatchError):
            return _problem(404, str(exc))
        return _problem(503, "the outcome store is unreachable")
    spool.seek(0)
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in batch_id)
    headers = {**_NO_SNIFF, "Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
    return StreamingResponse(_drain(spool), media_type=_REPORT_TYPES[fmt], headers=headers)


def _drain(spool: IO[str]) -> Iterator[bytes]:
    try:
        while part := spool.read(64 * 1024):
            yield part.encode()
    finally:
        spool.close()


async def _retry(request: Request, deps: ServeDeps) -> Response:
    """`meetreg retry` for the page's button (the key in a form field; answered with the
    batch page again) or for a script (the key as a bearer token; answered in JSON)."""
    batch_id = request.path_params["batch_id"]
    from_form = request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    )
    back = status_page.batch_url(batch_id)
    if deps.api_key is None:
        return _refusal(from_form, 503, "MEETREG_API_KEY is not set on this server", back)
    if from_form:
        try:
            body = await _read_body(request, MAX_FORM_BYTES, deps.body_timeout_s)
        except BodyTooLarge:
            return _problem(413, f"the body is larger than {MAX_FORM_BYTES} bytes")
        except BodyLate:
            return _late(deps)
        form = parse_qs(body.decode(errors="replace"))
        allowed = same_key(form.get("api_key", [""])[0], deps.api_key)
    else:
        allowed = holds_api_key(request.headers.get("authorization", ""), deps.api_key)
    if not allowed:
        return _refusal(from_form, 401, "a valid API key is required", back)
    try:
        retried = await run_in_threadpool(
            requeue_failed,
            deps.store,
            batch_id,
            publish=deps.publish_rows,
            chunk_size=deps.chunk_size,
        )
    except UnknownBatchError as exc:
        return _refusal(from_form, 404, str(exc), "/")
    except StoreError:
        return _refusal(
            from_form, 503, "the outcome store is unreachable; nothing was enqueued", back
        )
    log.info("batch %s: %d failed rows enqueued again from the status page", batch_id, retried)
    if from_form:  # post, redirect, get: a reload does not retry again
        return RedirectResponse(f"{back}?retried={retried}", status_code=303)
    return JSONResponse({"batch_id": batch_id, "retried": retried}, headers=_NO_SNIFF)


def _refusal(for_page: bool, status: int, message: str, back: str) -> Response:
    if for_page:
        return _page_problem(status, "Refused" if status == 401 else "Not done", message, back)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return _problem(status, message, headers)


def _page_problem(
    status: int,
    title: str,
    message: str,
    back: str = "/",
    headers: dict[str, str] | None = None,
) -> Response:
    page = status_page.message_page(title, message, back)
    return HTMLResponse(page, status_code=status, headers={**_PAGE_HEADERS, **(headers or {})})


async def _read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The body, refused as soon as it passes `limit` (a declared or a streamed length),
    or once `timeout_s` has passed (BodyLate) however slowly it was still coming."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for part in request.stream():
                size += len(part)
                if size > limit:
                    raise BodyTooLarge
                parts.append(part)
    except TimeoutError:
        raise BodyLate from None
    return b"".join(parts)


def _late(deps: ServeDeps) -> Response:
    # Closed after the answer: the rest of the body may still be on its way.
    message = f"the body did not arrive within {deps.body_timeout_s:g} s"
    return _problem(408, message, {"Connection": "close"})


async def _parse(parse: Callable[[bytes], T], body: bytes) -> T:
    """`parse(body)`: on the event loop if the body is small, else in a thread."""
    if len(body) <= PARSE_ON_LOOP_BYTES:
        return parse(body)
    return await run_in_threadpool(parse, body)


def _problem(status: int, message: str, headers: dict[str, Any] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def serve_deps(settings: Settings, store: OutcomeStore) -> ServeDeps:
    """The app's dependencies from the settings: the worker tasks' publishers included."""
    from worker.publish import publish_change, publish_chunks, publish_lifecycle

    def secret(value: SecretStr | None) -> str | None:
        return None if value is None else value.get_secret_value()

    return ServeDeps(
        store=store,
        inbox=Inbox(store.redis, store.retention_s),
        subscriptions=SubscriptionBook(store.redis),
        publish_rows=publish_chunks,
        publish_change=publish_change,
        publish_lifecycle=publish_lifecycle,
        client_state=secret(settings.webhook_client_state),
        api_key=secret(settings.api_key),
        viewer_key=secret(settings.viewer_key),
        public_pages=settings.public_pages,
        intake_max_bytes=settings.intake_max_bytes,
        chunk_size=settings.chunk_size,
        # Three missed heartbeats: a worker busy with a long chunk still beats.
        worker_seen_within_ms=settings.lease_ms,
        rate_limit_per_s=settings.rate_limit_per_s,
        body_timeout_s=settings.serve_body_timeout_s,
        registrant_defaults=settings.registrant_defaults,
    )
