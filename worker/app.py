"""The Celery app, configured from Settings when Celery first needs its configuration.

Nothing is read at import: `celery -A worker.app worker` reads the environment (and `.env`)
once, when the worker starts; `meetreg run` hands its own Settings over first.
"""

from __future__ import annotations

import sys
from typing import Any

from celery import Celery

from worker import keys
from worker.errors import ConfigError
from worker.runtime import current_settings
from worker.settings import Settings

# Longer than any task can take: a chunk of rows waiting out throttling for hours must
# not be handed to a second worker by the broker. Dead workers are found by the sweeper.
VISIBILITY_TIMEOUT_S = 12 * 3600

app = Celery("meetreg", include=["worker.tasks"])


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery's settings, derived from ours."""
    settings.require_redis()
    return {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_S},
        # JSON only: a message is data, never a pickle that runs code on the worker.
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        # No result backend: the outcome store is the truth.
        "result_backend": None,
        "task_ignore_result": True,
        # A message is acknowledged only when its chunk is done; a dead worker's comes back.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # Tasks are long and I/O bound: take one message per free thread, no more.
        "worker_prefetch_multiplier": 1,
        # Threads, not processes: each thread waits on Graph most of the time, and 32 of
        # them in one process keep 32 requests in flight with one token cache and one pool.
        "worker_pool": "threads",
        "worker_concurrency": settings.worker_threads,
        "task_default_queue": keys.QUEUE,
        "worker_send_task_events": False,
        "worker_enable_remote_control": True,
        "broker_pool_limit": max(10, settings.concurrency),
    }


def _configure(sender: Celery, **_: object) -> None:
    try:
        sender.config_from_object(celery_config(current_settings()))
    except ConfigError as exc:
        # Celery would print a traceback; an operator needs one line and exit 2.
        print(f"meetreg: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


app.on_configure.connect(_configure, weak=False)
