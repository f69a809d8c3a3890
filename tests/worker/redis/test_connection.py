"""Connecting to Redis: a client on REDIS_URL, Redis' own clock, and every failure said in
one line that names what to do and never the password. Real Redis, real closed ports."""

from __future__ import annotations

import time

import pytest
import redis
from cli_helpers import free_port

from worker.errors import StoreError
from worker.redis.connection import connect, describe_failure, redis_now_ms, store_errors
from worker.redis.target import parse_redis_url

SECRET = "pw-7f3a9c"


def failure(url: str, **options: str) -> str:
    """What `describe_failure` says when a client on `url` cannot be used."""
    target = parse_redis_url(url, **options)
    client = connect(target)
    try:
        with pytest.raises(redis.RedisError) as failed:
            client.ping()
    finally:
        client.close()
    said = describe_failure(target, failed.value)
    assert "\n" not in said and SECRET not in said
    return said


def test_a_client_on_the_url_answers_and_reads_redis_clock(redis_url: str) -> None:
    client = connect(parse_redis_url(redis_url))
    try:
        assert client.ping()
        # The same machine here: Redis' clock and ours agree to within a second.
        assert abs(redis_now_ms(client) - time.time() * 1000) < 1000
    finally:
        client.close()


def test_a_password_redis_refuses_is_said_so(redis_url: str) -> None:
    with_password = redis_url.replace("redis://", f"redis://someone:{SECRET}@", 1)
    assert failure(with_password).endswith("refused the user name or password in REDIS_URL")


def test_a_redis_nobody_listens_for_is_named_by_where_and_what_failed() -> None:
    port = free_port()
    assert failure(f"redis://u:{SECRET}@127.0.0.1:{port}/0") == (
        f"cannot reach Redis at 127.0.0.1:{port}: ConnectionError"
    )


def test_sentinels_that_do_not_answer_are_each_named_with_the_master() -> None:
    ports = free_port(), free_port()
    url = ";".join(f"sentinel://127.0.0.1:{port}" for port in ports)
    said = failure(url, sentinel_master="mymaster")
    assert said.startswith(f"no Sentinel (127.0.0.1:{ports[0]}, 127.0.0.1:{ports[1]})")
    assert "master mymaster" in said


def test_a_redis_error_in_a_store_call_becomes_one_store_error(redis_url: str) -> None:
    client = connect(parse_redis_url(redis_url))

    @store_errors
    def wrong_type() -> object:
        client.set("meetreg-test:string", "x")
        return client.lpush("meetreg-test:string", "y")  # not a list: WRONGTYPE

    try:
        with pytest.raises(StoreError, match=r"^Redis failed: ResponseError: WRONGTYPE"):
            wrong_type()
    finally:
        client.delete("meetreg-test:string")
        client.close()
