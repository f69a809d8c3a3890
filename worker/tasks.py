"""The Celery tasks: parse the message, fetch this process's clients, call a plain function.

- `meetreg.process_chunk`: rows of a batch, through the registration protocol.
- `meetreg.handle_change`: a calendar change notification `meetreg serve` accepted.
- `meetreg.handle_lifecycle`: a lifecycle notification about one of our subscriptions.
- `meetreg.nightly`: the nightly job, sent by `celery -A worker.app beat`.

Also the worker's lifecycle hooks: the sweeper starts with the worker and stops with it,
a Redis that may evict keys is reported when the worker starts, and `celery worker`
serves /metrics on MEETREG_METRICS_PORT (worker.telemetry.metrics).
"""

from __future__ import annotations

import contextlib
import logging
import random
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from celery import Task
from celery.signals import (
    celeryd_after_setup,
    task_received,
    task_revoked,
    worker_init,
    worker_ready,
    worker_shutdown,
)

from jobs.events.calendar_events import handle_change
from jobs.events.inbox import Inbox
from jobs.events.lifecycle import handle_lifecycle
from jobs.events.notifications import ChangeNotification, LifecycleNotification
from jobs.events.subscriptions import SubscriptionBook
from jobs.nightly.job import NightlyDeps, run_scheduled
from worker import keys
from worker.app import app
from worker.errors import ConfigError, GraphError, StoreError
from worker.graph.credentials import build_token_source
from worker.protocol.chunk import chunk_name, process_chunk
from worker.protocol.recovery import Sweeper
from worker.protocol.retry_policy import Retry, RetryPolicy, decide
from worker.publish import publish_chunks
from worker.redis.eviction import read_eviction_policy
from worker.runtime import close_runtime, runtime
from worker.settings import current_settings
from worker.telemetry.metrics import SharedGauges, serve_metrics

log = logging.getLogger(__name__)

# A notification's event is read within about an hour of retries (Graph's throttling and
# outages are shorter than that); after that the failure is recorded and logged.
NOTIFICATION_MAX_RETRIES = 12
NOTIFICATION_RETRY = RetryPolicy(
    max_attempts=NOTIFICATION_MAX_RETRIES + 1,  # the first try, then the retries
    backoff_base_s=5.0,
    rng=random.Random(),
    throttling_uses_attempts=True,  # Celery counts every retry
    store_errors_transient=True,  # Redis coming back is worth the wait
)


@app.task(name=keys.PROCESS_CHUNK_TASK, bind=True)
def process_chunk_task(self: Task, batch_id: str, start: int, stop: int) -> None:
    """Bring rows start..stop-1 of the batch to a final state."""
    # The message's id: the hold taken when the message came (below) passes to the work.
    process_chunk(runtime().deps, str(batch_id), int(start), int(stop), holder=self.request.id)


@app.task(name=keys.HANDLE_CHANGE_TASK, bind=True, max_retries=NOTIFICATION_MAX_RETRIES)
def handle_change_task(self: Task, note: dict[str, str]) -> None:
    """Read the notified event and enqueue its meeting if it is a Teams meeting to register."""
    change = ChangeNotification(**note)
    current = runtime()
    inbox = Inbox(current.redis, current.store.retention_s)
    try:
        outcome = handle_change(
            change, calendar=current.calendar, store=current.store, publish=publish_chunks
        )
    except (GraphError, StoreError) as exc:
        _retry_or_give_up(self, exc, lambda why: inbox.settle(change, "failed", detail=why))
        return
    inbox.settle(change, str(outcome.verdict), batch_id=outcome.batch_id, detail=outcome.detail)


@app.task(name=keys.HANDLE_LIFECYCLE_TASK, bind=True, max_retries=NOTIFICATION_MAX_RETRIES)
def handle_lifecycle_task(self: Task, note: dict[str, str]) -> None:
    """Mend one of our subscriptions if need be (renew, recreate), then catch up on its
    user's events."""
    lifecycle = LifecycleNotification(**note)
    current = runtime()
    try:
        done = handle_lifecycle(
            lifecycle,
            calendar=current.calendar,
            book=SubscriptionBook(current.redis),
            store=current.store,
            publish=publish_chunks,
            client_state=current.settings.require_client_state(),
            now=datetime.now(UTC),
        )
    except (GraphError, StoreError) as exc:
        _retry_or_give_up(self, exc, lambda _: None)
        return
    log.info("lifecycle %s for %s: %s", lifecycle.event, lifecycle.subscription_id, done)


@app.task(name=keys.NIGHTLY_TASK)
def nightly_task() -> None:
    """The nightly job, once per scheduled slot however often beat's message comes."""
    current = runtime()
    settings = current.settings
    deps = NightlyDeps(
        settings=settings,
        store=current.store,
        publish=publish_chunks,
        calendar=lambda: contextlib.nullcontext(current.calendar),
    )
    report = run_scheduled(deps, now=datetime.now(settings.zone))
    if report is not None:
        for level, line in report.log_lines():
            log.log(level, "%s", line)


def _retry_or_give_up(
    task: Task, exc: GraphError | StoreError, give_up: Callable[[str], None]
) -> None:
    """Try a transient failure (Graph's, or Redis') again later, after Graph's Retry-After
    if it gave one; record and log one that is permanent, or that outlasted the retries."""
    attempt = int(task.request.retries or 0) + 1
    decision = decide(exc, attempt, NOTIFICATION_RETRY)
    if isinstance(decision, Retry):
        raise task.retry(countdown=decision.wait_s, exc=exc)
    why = exc.describe() if isinstance(exc, GraphError) else str(exc)
    log.error("%s gave up: %s", task.name, why)
    with contextlib.suppress(StoreError):  # Redis may be what failed
        give_up(why)


_sweeper: Sweeper | None = None


@task_received.connect
def _hold_received_chunk(request: Any, **_: Any) -> None:
    """Hold a chunk from the moment this worker takes its message, not only once a thread
    starts it: a worker killed with messages reserved but not started would otherwise
    leave their rows to the broker's visibility timeout (12 h). Held, they lapse with the
    worker's heartbeat and the sweeper sends them again within MEETREG_RECOVERY_S."""
    if request.name != keys.PROCESS_CHUNK_TASK:
        return
    try:
        batch_id, start, stop = request.args
        chunk = chunk_name(str(batch_id), int(start), int(stop))
        runtime().deps.leases.hold_chunk(chunk, holder=request.id)
    except Exception as exc:  # a hook never stops the worker; the task holds it again
        log.warning("could not hold a received chunk: %s", exc)


@task_revoked.connect
def _let_go_of_revoked_chunk(sender: Any, request: Any, **_: Any) -> None:
    """A message revoked (from Flower, say) never runs: the chunk held when it came must
    not be renewed for ever. Left to lapse, it is sent again if its rows are not final."""
    # `request` is the task's context here, not the worker's request: no name on it.
    if getattr(sender, "name", None) != keys.PROCESS_CHUNK_TASK:
        return
    try:
        batch_id, start, stop = request.args
        chunk = chunk_name(str(batch_id), int(start), int(stop))
        runtime().deps.leases.abandon_chunk(chunk, holder=request.id)
    except Exception as exc:  # a hook never stops the worker
        log.warning("could not let go of a revoked chunk: %s", exc)


@worker_init.connect
def _check_configuration(**_: Any) -> None:
    """Refuse to start without what every task will need: one line, exit 2."""
    try:
        # Built and dropped: a certificate or token cache that cannot be used is refused
        # now, before the worker takes any row (no network call is made).
        build_token_source(current_settings()).close()
    except ConfigError as exc:
        print(f"meetreg: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


@celeryd_after_setup.connect
def _serve_metrics(**_: Any) -> None:
    """`celery worker` only (the signal is the command's, not `meetreg run`'s worker): one
    /metrics per worker process, for its threads and for the shared gauges."""
    try:
        current = runtime()
        settings = current.settings
        serve_metrics(
            settings.worker_metrics_port,
            settings.metrics_host,
            SharedGauges(current.store, current.deps.limiter),
        )
    except Exception as exc:  # metrics are worth a warning, never a worker
        log.warning("metrics: not served: %s", exc)


@worker_ready.connect
def _start_sweeper(**_: Any) -> None:
    global _sweeper
    current = runtime()
    settings = current.settings
    _sweeper = Sweeper(
        current.store, publish_chunks, settings.lease_ms, settings.sweep_interval_s
    ).start()


@worker_ready.connect
def _warn_if_keys_may_be_evicted(**_: Any) -> None:
    """A Redis that may evict keys loses rows without a word: say so where operators look."""
    try:
        policy = read_eviction_policy(runtime().redis)
    except Exception as exc:  # a hook never stops the worker
        log.warning("could not check Redis' maxmemory-policy: %s", type(exc).__name__)
        return
    if policy.may_evict:
        log.warning("Redis %s", policy.describe())
    elif not policy.known:  # managed Redis, ACL users: expected, not alarming
        log.info("Redis %s", policy.describe())


@worker_shutdown.connect
def _stop_sweeper(**_: Any) -> None:
    if _sweeper is not None:
        _sweeper.stop()
    close_runtime()
