"""The private Redis of `meetreg run`/`demo` without REDIS_URL: it answers on its URL while
its block runs, keeps appended writes across a crash, says in redis-server's own words why
it did not start, and is gone, folder and all, after its block."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from worker.errors import ConfigError
from worker.redis.embedded import EmbeddedRedis


def test_it_answers_while_its_block_runs_and_is_gone_after() -> None:
    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url, socket_connect_timeout=1)
        assert client.ping()
        folder = Path(client.config_get("dir")["dir"])
        assert folder.is_dir()
    with pytest.raises(redis.ConnectionError):
        client.ping()
    client.close()
    assert not folder.exists()


def test_with_appendonly_a_write_outlives_a_crash() -> None:
    with EmbeddedRedis(appendonly=True) as server:
        client = redis.Redis.from_url(server.url)
        client.set("kept", "yes")
        server.restart()  # SIGKILL, then the same port and folder
        assert client.get("kept") == b"yes"
        client.close()


def test_a_server_that_will_not_start_is_a_config_error_with_its_words() -> None:
    server = EmbeddedRedis(args=["--maxmemory", "not-a-size"])
    try:
        with pytest.raises(ConfigError) as refused:
            server.start()
    finally:
        server.close()
    said = str(refused.value)
    assert said.startswith("embedded redis-server did not start: ")
    assert "argument must be a memory value" in said
