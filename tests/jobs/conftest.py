"""A `meetreg serve` and a worker per module, on the session's Redis and the module's
simulator: for the HTTP service's tests and the events' (notifications reach them through it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cli_helpers import command_env, meetreg, start_worker, stop
from pipeline_helpers import UPN
from serve_helpers import API_KEY, CLIENT_STATE, VIEWER_KEY, Served

from worker.simulator import SimulatorServer


@pytest.fixture(scope="module")
def serve_env(server: SimulatorServer, redis_url: str) -> dict[str, str]:
    return command_env(
        **server.env(),
        REDIS_URL=redis_url,
        MEETREG_WEBHOOK_CLIENT_STATE=CLIENT_STATE,
        MEETREG_API_KEY=API_KEY,
        MEETREG_VIEWER_KEY=VIEWER_KEY,
        MEETREG_INTAKE_MAX_BYTES="65536",
        MEETREG_RATE_LIMIT="1000",
        # Heartbeats every second, so the health check sees a worker at once after a flush.
        MEETREG_RECOVERY_S="6",
        MEETREG_CONCURRENCY="4",
        # What an intake registrant without a time zone or language gets.
        MEETREG_WEBINAR_TIMEZONE="W. Europe Standard Time",
        MEETREG_WEBINAR_LANGUAGE="de-DE",
    )


@pytest.fixture(scope="module")
def served(serve_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    running = Served(serve_env, Path(tmp_path_factory.mktemp("serve")))
    yield running
    running.close()


@pytest.fixture(scope="module")
def worker(serve_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A `celery -A worker.app worker` on the same Redis and simulator."""
    process = start_worker("serve-tests", serve_env, Path(tmp_path_factory.mktemp("worker")))
    yield
    stop(process)


@pytest.fixture
def subscribed(
    served: Served,
    worker: None,
    sim: SimulatorServer,
    serve_env: dict[str, str],
    redis_client: redis.Redis,
) -> str:
    """The organizer's calendar subscribed through `meetreg subscribe`; its id."""
    done = meetreg(
        "subscribe",
        "--user",
        UPN,
        "--notification-url",
        f"{served.url}/graph/notifications",
        "--lifecycle-url",
        f"{served.url}/graph/lifecycle",
        env=serve_env,
    )
    assert done.returncode == 0, done.stderr
    (subscription,) = sim.state.subscriptions()
    return str(subscription["id"])
