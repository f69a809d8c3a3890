"""A worker process's objects: built once per process from its settings, rebuilt once
closed; a sign-in Entra refuses stops a command that must sign in, not a worker. On the
simulator over HTTPS and real Redis."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
import redis
from pipeline_helpers import fast_settings

from worker.errors import ConfigError
from worker.graph.calendar import CalendarApi
from worker.runtime import Runtime, build_runtime, close_runtime, runtime
from worker.settings import AuthMode
from worker.simulator import SimulatorServer


@pytest.fixture
def process_runtime(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The process's runtime, as `celery worker` builds it, from the environment."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    # Read from this environment, and forgotten after: a later test's simulator is another.
    monkeypatch.setattr("worker.settings._settings", None)
    yield
    close_runtime()
    gc.unfreeze()  # building it froze the collector for a worker's life, not this session's


def test_a_process_has_one_runtime_until_it_is_closed(process_runtime: None) -> None:
    first = runtime()
    assert runtime() is first
    close_runtime()
    assert runtime() is not first


def test_a_refused_sign_in_stops_a_command_that_must_sign_in_but_not_a_worker(
    sim: SimulatorServer, redis_url: str
) -> None:
    wrong = fast_settings(redis_url, client_secret="not-the-secret")
    with pytest.raises(ConfigError) as refused:
        build_runtime(wrong, must_sign_in=True)
    assert "\n" not in str(refused.value) and "not-the-secret" not in str(refused.value)

    worker = build_runtime(wrong)  # its rows will meet the refusal one by one
    worker.close()


def test_calendars_are_read_with_the_registration_clients_application_token(
    runtime: Runtime,
) -> None:
    assert isinstance(runtime.calendar, CalendarApi)
    delegated = Runtime(
        settings=runtime.settings.model_copy(update={"auth": AuthMode.DELEGATED}),
        redis=runtime.redis,
        store=runtime.store,
        deps=runtime.deps,
    )
    with pytest.raises(ConfigError, match="with an application token"):
        _ = delegated.calendar
