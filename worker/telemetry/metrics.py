"""Prometheus metrics: what this process counted (worker.telemetry.counters), and what
Redis says for all processes.

Counted by this process (sum them across processes: `sum(rate(...))`):

    meetreg_rows_total{outcome}                  rows that reached a final state, counted
                                                 by the process that recorded it, once
    meetreg_graph_requests_total{method,status}  Graph calls by their answer (`error`: no
                                                 answer, a timeout or a reset); a $batch
                                                 item counts as the call it carries
    meetreg_graph_request_seconds                each call's time (a $batch item: its
                                                 envelope's)
    meetreg_graph_throttled_total                answers that said "slow down" (429, or
                                                 503 with Retry-After)

Read from Redis when scraped (`SharedGauges`): every process reports the same shared
value (aggregate with `max`, not `sum`), and nothing is read while nobody scrapes.

    meetreg_rate_limit_effective                 the shared limiter's rate (requests/s)
    meetreg_queue_depth                          chunk messages waiting in the Celery queue
    meetreg_batches_in_progress                  batches with rows not final yet (paused
                                                 ones included)

Per batch in progress, for the BATCH_SERIES most recently opened (a bounded set of series):

    meetreg_batch_oldest_running_seconds{batch_id}
                                                 how long its oldest row running or
                                                 retrying has been so (0: none is)
    meetreg_batch_stalled{batch_id}              1 when rows are in workers' hands but
                                                 none of the batch's rows changed state
                                                 for longer than MEETREG_RECOVERY_S
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from worker import keys
from worker.errors import StoreError
from worker.ratelimit.limiter import RateLimiter
from worker.redis.connection import store_errors
from worker.store.outcome_store import OutcomeStore
from worker.store.records import BatchStatus

log = logging.getLogger(__name__)

# Batches with series of their own, the most recently opened first: as many as the status
# page lists, so a backlog of old unfinished batches cannot grow the page without bound.
BATCH_SERIES = 50


class SharedGauges(Collector):
    """The gauges every process reads from Redis at scrape time. A scrape while Redis is
    unreachable leaves them out (and logs why) rather than fail the whole page."""

    def __init__(self, store: OutcomeStore, limiter: RateLimiter) -> None:
        self.store = store
        self.redis = store.redis
        self.limiter = limiter

    def collect(self) -> Iterator[Metric]:
        try:
            rate = self.limiter.rate_now()
            depth, in_progress = self._counts()
            batches = self.store.open_batches(BATCH_SERIES)
        except StoreError as exc:
            log.warning("metrics: cannot read Redis: %s", exc)
            return
        yield _gauge(
            "meetreg_rate_limit_effective",
            "Graph requests per second the shared limiter allows now, all workers together.",
            rate,
        )
        yield _gauge("meetreg_queue_depth", "Messages waiting in the Celery queue.", depth)
        yield _gauge("meetreg_batches_in_progress", "Batches with rows not final yet.", in_progress)
        yield from _batch_gauges(batches)

    @store_errors
    def _counts(self) -> tuple[int, int]:
        pipe = self.redis.pipeline(transaction=False)
        for name in keys.QUEUE_LISTS:
            pipe.llen(name)
        pipe.zcard(keys.OPEN_BATCHES)
        *depths, in_progress = pipe.execute()
        return sum(int(depth) for depth in depths), int(in_progress)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _batch_gauges(batches: list[BatchStatus]) -> Iterator[GaugeMetricFamily]:
    oldest = GaugeMetricFamily(
        "meetreg_batch_oldest_running_seconds",
        "How long the batch's oldest row running or retrying has been so (0: none is).",
        labels=["batch_id"],
    )
    stalled = GaugeMetricFamily(
        "meetreg_batch_stalled",
        "1 when rows are in workers' hands but none moved for longer than the recovery time.",
        labels=["batch_id"],
    )
    for batch in batches:
        oldest.add_metric([batch.batch_id], batch.oldest_running_s or 0.0)
        stalled.add_metric([batch.batch_id], 1.0 if batch.stalled else 0.0)
    yield oldest
    yield stalled


class Exposition(Collector):
    """What a /metrics page shows: this process's registry, then the shared gauges."""

    def __init__(self, shared: SharedGauges) -> None:
        self.shared = shared

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()
        yield from self.shared.collect()

    def page(self, accept: str = "") -> tuple[bytes, str]:
        """The page and its content type, in the format the scraper's Accept header asks
        for (Prometheus' text format, or OpenMetrics), as the workers' /metrics does."""
        encode, content_type = choose_encoder(accept)
        return encode(self), content_type


def serve_metrics(port: int, host: str, shared: SharedGauges) -> bool:
    """Serve /metrics on host:port from a daemon thread; False when `port` is 0 or taken
    (logged: a second worker on the same host needs MEETREG_METRICS_PORT of its own)."""
    if port == 0:
        return False
    try:
        start_http_server(port, addr=host, registry=Exposition(shared))
    except OSError as exc:
        log.warning(
            "metrics: cannot listen on %s:%d (%s); this process serves no /metrics. "
            "Give each worker on a host its own MEETREG_METRICS_PORT",
            host,
            port,
            exc.strerror or exc,
        )
        return False
    log.info("metrics on http://%s:%d/metrics", host, port)
    return True
