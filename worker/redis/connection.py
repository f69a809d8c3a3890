"""Connecting to Redis, and the one place redis-py's errors become StoreError."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import redis
from redis.sentinel import MasterNotFoundError, Sentinel

from worker.errors import StoreError
from worker.redis.target import RedisTarget

P = ParamSpec("P")
T = TypeVar("T")


SOCKET_TIMEOUT_S = 10
CONNECT_TIMEOUT_S = 5
# For the connections to the Sentinels themselves: they answer at once or are down.
SENTINEL_OPTIONS = {
    "socket_timeout": CONNECT_TIMEOUT_S,
    "socket_connect_timeout": CONNECT_TIMEOUT_S,
}


def connect(target: RedisTarget, *, max_connections: int = 64) -> redis.Redis:
    """A pooled client. Sockets time out so a dead Redis is an error, not a hang.

    Behind Sentinel, the client asks the Sentinels where the master is on every new
    connection, so it follows a failover."""
    options: dict[str, Any] = {
        "max_connections": max_connections,
        "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "health_check_interval": 30,
        "retry_on_timeout": True,
    }
    if target.is_sentinel:
        sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=SENTINEL_OPTIONS)
        master: redis.Redis = sentinel.master_for(
            str(target.master_name),
            db=target.db,
            username=target.username,
            password=target.password,
            **options,
        )
        return master
    return redis.Redis.from_url(target.url, **(target.tls or {}), **options)


def describe_failure(target: RedisTarget, exc: Exception) -> str:
    """One line saying why Redis could not be used, and what to do; never the password."""
    where = target.where
    text = str(exc)
    if isinstance(exc, redis.AuthenticationError) or "WRONGPASS" in text or "NOAUTH" in text:
        return f"Redis at {where} refused the user name or password in REDIS_URL"
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return (
            f"Redis at {where} presented a TLS certificate that is not trusted: add "
            "?ssl_ca_certs=/path/to/ca.pem to REDIS_URL, or set SSL_CERT_FILE"
        )
    if isinstance(exc, MasterNotFoundError):
        nodes = ", ".join(f"{host}:{port}" for host, port in target.sentinels)
        return (
            f"no Sentinel ({nodes}) gave the address of master {target.master_name}: "
            "none answered, or none monitors a master of that name"
        )
    return f"cannot reach Redis at {where}: {type(exc).__name__}"


def redis_now_ms(client: redis.Redis) -> float:
    """Redis' clock, not ours: deadlines set on one machine are read on another."""
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) / 1000


def store_errors(fn: Callable[P, T]) -> Callable[P, T]:
    """Turn redis-py errors into StoreError: one line, never the URL (it may hold a password)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            raise StoreError(f"Redis failed: {type(exc).__name__}: {exc}") from exc

    return wrapper
