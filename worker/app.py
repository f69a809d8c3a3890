"""The Celery app, configured from Settings when Celery first needs its configuration.

Nothing is read at import: `celery -A worker.app worker` reads the environment (and `.env`)
once, when the worker starts; `meetreg run` hands its own Settings over first.

`celery -A worker.app beat` sends the nightly task at MEETREG_NIGHTLY_CRON through
celery-redbeat: the schedule lives in Redis, and only the beat holding the lock in Redis
sends anything, so beat may run on several machines; a standby takes over within
MEETREG_BEAT_LOCK_TIMEOUT_S of the leader's death.

`celery worker -c N` wins over MEETREG_CONCURRENCY: the worker's Settings take Celery's
thread count before any client is built, so the Graph connection pool, the `$batch`
requests in flight and the rows each thread takes together follow the threads that run.

Logging is ours (worker.telemetry.logs, MEETREG_LOG_FORMAT and MEETREG_LOG_LEVEL): Celery's
`setup_logging` signal hands it over for the worker and beat alike, so `--loglevel` is
not what decides. Task events stay on, so Flower (`celery -A worker.app flower`) works.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery import Celery
from celery.signals import celeryd_init, setup_logging, worker_init

from worker import keys
from worker.errors import ConfigError
from worker.redis.connection import CONNECT_TIMEOUT_S, SENTINEL_OPTIONS, SOCKET_TIMEOUT_S
from worker.redis.target import RedisTarget
from worker.settings import BEAT_TICK_S, Settings, current_settings, use_settings
from worker.telemetry.logs import configure_logging

log = logging.getLogger(__name__)

# Longer than any task can take: a chunk of rows waiting out throttling for hours must
# not be handed to a second worker by the broker. Dead workers are found by the sweeper.
VISIBILITY_TIMEOUT_S = 12 * 3600

app = Celery("meetreg", include=["worker.tasks"])


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery's settings, derived from ours."""
    target = settings.require_redis()
    return {
        **broker_config(target),
        "broker_connection_retry_on_startup": True,
        # JSON only: a message is data, never a pickle that runs code on the worker.
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        # No result backend: the outcome store is the truth.
        "result_backend": None,
        "task_ignore_result": True,
        # Nor results to expire: without this, beat would schedule celery.backend_cleanup.
        "result_expires": None,
        # A message is acknowledged only when its chunk is done; a dead worker's comes back.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # Tasks are long and I/O bound: take one message per free thread, no more.
        "worker_prefetch_multiplier": 1,
        # Threads, not processes: each thread waits on Graph most of the time, and 32 of
        # them in one process keep 32 requests in flight with one token cache and one pool.
        "worker_pool": "threads",
        "worker_concurrency": settings.concurrency,
        "task_default_queue": keys.QUEUE,
        # Events for Flower and `celery events`: a few small messages per chunk of rows, sent
        # by the workers. Not a `task-sent` event per message from the producer: it doubled
        # what `meetreg enqueue` publishes (100,000 rows: 11,900 rows/s with it, see
        # bench/enqueue.py); Flower shows tasks from `received` on.
        "worker_send_task_events": True,
        "task_send_sent_event": False,
        "worker_enable_remote_control": True,
        "broker_pool_limit": max(10, settings.concurrency),
        "timezone": settings.timezone,
        "enable_utc": True,
        **beat_config(settings, target),
    }


def broker_config(target: RedisTarget) -> dict[str, Any]:
    """The broker on REDIS_URL: TLS options given explicitly, since kombu turns a bare
    `rediss://` into an unverified connection; behind Sentinel, the master's name."""
    options: dict[str, Any] = {"visibility_timeout": VISIBILITY_TIMEOUT_S}
    if target.is_sentinel:
        options["master_name"] = target.master_name
        options["sentinel_kwargs"] = SENTINEL_OPTIONS
    return {
        "broker_url": target.url,
        "broker_use_ssl": target.tls or False,
        "broker_transport_options": options,
    }


def redbeat_connection(target: RedisTarget) -> dict[str, Any]:
    """celery-redbeat's spelling of the same Redis: a `redis-sentinel` URL and the Sentinel
    list in its options, or the URL with the TLS options beside it."""
    options: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_timeout": SOCKET_TIMEOUT_S,
    }
    if not target.is_sentinel:
        return {
            "redbeat_redis_url": target.url,
            "redbeat_redis_use_ssl": target.tls,
            "redbeat_redis_options": options,
        }
    options |= {
        "sentinels": list(target.sentinels),
        "service_name": target.master_name,
        "db": target.db,
        "username": target.username,
        "password": target.password,
        "sentinel_kwargs": SENTINEL_OPTIONS,
    }
    return {"redbeat_redis_url": "redis-sentinel://", "redbeat_redis_options": options}


def beat_config(settings: Settings, target: RedisTarget) -> dict[str, Any]:
    """The schedule, and celery-redbeat's settings: its keys and its lock in our Redis."""
    return {
        "beat_scheduler": "redbeat.RedBeatScheduler",
        "beat_schedule": {
            keys.BEAT_ENTRY: {
                "task": keys.NIGHTLY_TASK,
                "schedule": settings.nightly.to_celery(),
                "options": {"queue": keys.QUEUE},
            }
        },
        # The leader renews its lock every tick; a standby tries to take it every tick.
        "beat_max_loop_interval": BEAT_TICK_S,
        # Given explicitly: redbeat would otherwise reuse the broker's transport options.
        **redbeat_connection(target),
        "redbeat_key_prefix": keys.BEAT_PREFIX,
        "redbeat_lock_key": keys.BEAT_LOCK,
        "redbeat_lock_timeout": int(settings.beat_lock_timeout_s),
    }


def _configure(sender: Celery, **_: object) -> None:
    try:
        sender.config_from_object(celery_config(current_settings()))
    except ConfigError as exc:
        _refuse(exc)


def _configure_logging(**_: object) -> None:
    """Our logging, for `celery worker` and `celery beat`: connected to `setup_logging`,
    Celery sets up none; to `celeryd_init` too, so the worker's first warnings (running
    as root, say) are log lines already."""
    try:
        configure_logging(current_settings())
    except ConfigError as exc:
        _refuse(exc)


def _follow_concurrency(sender: Any = None, **_: object) -> None:
    """At `worker_init` (the sender is the worker, `-c` parsed, no client built yet): make
    this process's Settings say the thread count Celery will run."""
    threads = getattr(sender, "concurrency", None)
    if not isinstance(threads, int) or threads < 1:
        return  # `auto`, resolved later by Celery from the CPUs: a prefork setting
    settings = current_settings()
    if threads != settings.concurrency:
        log.info(
            "%d threads (celery -c), not MEETREG_CONCURRENCY=%d: Graph connections and "
            "$batch requests in flight follow",
            threads,
            settings.concurrency,
        )
        use_settings(settings.model_copy(update={"concurrency": threads}))
        sender.app.conf.broker_pool_limit = max(10, threads)
    else:
        log.info("%d threads: Graph connections and $batch requests in flight", threads)


def _refuse(exc: ConfigError) -> None:
    # Celery would print a traceback; an operator needs one line and exit 2.
    print(f"meetreg: {exc}", file=sys.stderr)
    raise SystemExit(2) from None


app.on_configure.connect(_configure, weak=False)
setup_logging.connect(_configure_logging, weak=False)
celeryd_init.connect(_configure_logging, weak=False)
worker_init.connect(_follow_concurrency, weak=False)
