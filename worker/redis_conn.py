"""Connecting to Redis, and the one place redis-py's errors become StoreError."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import redis

from worker.errors import StoreError

P = ParamSpec("P")
T = TypeVar("T")


def connect(url: str, *, max_connections: int = 64) -> redis.Redis:
    """A pooled client. Sockets time out so a dead Redis is an error, not a hang."""
    return redis.Redis.from_url(
        url,
        max_connections=max_connections,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry_on_timeout=True,
    )


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
