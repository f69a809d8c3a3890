"""The per-process objects a worker needs, built once per process from Settings.

Clients are expensive and pooled (an MSAL app with its token cache, an httpx pool, a
Redis pool), so they are built once per process, never per task, and rebuilt after a
fork (prefork children must not share their parent's sockets).
"""

from __future__ import annotations

import gc
import logging
import os
import random
import threading
from dataclasses import dataclass
from typing import Protocol

import redis

from worker.errors import ConfigError, GraphError
from worker.graph import build_graph_client
from worker.graph.calendar import CalendarApi, require_app_only
from worker.graph.client import GraphClient
from worker.graph.webinars import WebinarClient
from worker.protocol.deps import Deps, Policy
from worker.protocol.leases import LeaseKeeper
from worker.protocol.targets.meeting_registration import MeetingRegistration, RegistrationApi
from worker.protocol.targets.webinar_publication import WebinarPublication
from worker.protocol.targets.webinar_registration import WebinarRegistration
from worker.ratelimit.limiter import RateLimiter
from worker.settings import Settings, current_settings
from worker.store.outcome_store import OutcomeStore, open_store

log = logging.getLogger(__name__)


class WorkerGraph(RegistrationApi, Protocol):
    """The Graph calls a worker makes for meetings (webinars' go through `GraphClient`)."""


@dataclass(slots=True)
class Runtime:
    settings: Settings
    redis: redis.Redis
    store: OutcomeStore
    deps: Deps

    @property
    def calendar(self) -> CalendarApi:
        """Events and subscriptions, on the registration client's connections and token."""
        require_app_only(self.settings)
        graph = self.deps.graph
        if not isinstance(graph, GraphClient):
            raise ConfigError("this process has no Graph client for calendar events")
        return CalendarApi(graph.http, self.settings.graph_v1_base_url)

    def close(self) -> None:
        self.deps.leases.stop()
        self.deps.limiter.close()
        close_graph = getattr(self.deps.graph, "close", None)
        if close_graph is not None:
            close_graph()
        self.redis.close()


def build_runtime(
    settings: Settings, graph: WorkerGraph | None = None, *, must_sign_in: bool = False
) -> Runtime:
    """Everything `process_chunk` needs. Raises ConfigError for missing credentials, and
    with `must_sign_in` for a sign-in Entra refuses (one line: a wrong secret, tenant...)."""
    store = open_store(settings)
    client = store.redis
    if graph is None:
        client_ = build_graph_client(settings)
        try:
            client_.sign_in()
        except GraphError as exc:
            if must_sign_in:
                client_.close()
                client.close()
                raise ConfigError(exc.describe() if exc.code is None else exc.message) from None
            # A worker keeps going: the rows meet the error one by one and say so.
            log.warning("could not sign in yet: %s", exc.describe())
        graph = client_
    leases = LeaseKeeper(store, settings.lease_ms)
    leases.start()
    webinars = WebinarClient(graph) if isinstance(graph, GraphClient) else None
    deps = Deps(
        store=store,
        graph=graph,
        target=MeetingRegistration(graph),
        webinars=WebinarRegistration(webinars) if webinars is not None else None,
        publications=WebinarPublication(webinars) if webinars is not None else None,
        limiter=RateLimiter(client, settings.rate_limit_per_s),
        leases=leases,
        policy=Policy(
            max_attempts=settings.max_attempts,
            get_before_post=settings.get_before_post,
            backoff_base_s=settings.backoff_base_s,
            in_waves=settings.envelope_size > 1,
            wave_size=settings.chunk_size,
            threads=settings.concurrency,
        ),
        rng=random.Random(),
    )
    return Runtime(settings=settings, redis=client, store=store, deps=deps)


_lock = threading.Lock()
_current: tuple[int, Runtime] | None = None


def runtime(*, must_sign_in: bool = False) -> Runtime:
    """This process's Runtime, built on first use (see `build_runtime`)."""
    global _current
    with _lock:
        if _current is None or _current[0] != os.getpid():
            built = build_runtime(current_settings(), must_sign_in=must_sign_in)
            _current = (os.getpid(), built)
            # What start-up made (modules, Celery's app, the clients) lives as long as the
            # process: keep it out of the collector's full passes. Each full pass over it
            # stopped every thread for 60-120 ms, and requests held up so long leave
            # together, a clump over a per-second limit.
            gc.freeze()
        return _current[1]


def close_runtime() -> None:
    global _current
    with _lock:
        if _current is not None and _current[0] == os.getpid():
            _current[1].close()
        _current = None
