"""The image's health check (deploy/healthcheck.py), run as the image runs it, against a
real worker and a real beat on the session's Redis: healthy while the role does its job,
not healthy when it does not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import redis
from cli_helpers import command_env, free_port, start_beat, start_worker, stop, wait_until
from deploy_helpers import HEALTHCHECK

from worker import keys
from worker.simulator import SimulatorServer


def check(role: str, env: dict[str, str]) -> int:
    done = subprocess.run(
        [sys.executable, str(HEALTHCHECK), role],
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.returncode


def test_a_worker_is_healthy_while_its_metrics_port_takes_connections(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = command_env(
        **sim.env(),
        REDIS_URL=redis_url,
        MEETREG_CONCURRENCY="2",
        MEETREG_METRICS_PORT=str(free_port()),
        MEETREG_METRICS_HOST="127.0.0.1",
    )
    assert check("worker", env) == 1  # none runs yet
    worker = start_worker("health", env, tmp_path)
    try:
        wait_until(lambda: check("worker", env) == 0, timeout_s=30, what="a healthy worker")
    finally:
        stop(worker)
    assert check("worker", env) == 1


def test_beat_is_healthy_while_the_schedule_is_kept_or_redis_is_away(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = command_env(REDIS_URL=redis_url)
    assert check("beat", env) == 1  # Redis answers, and no beat holds the schedule
    beat = start_beat(env, tmp_path, tmp_path / "beat.log")
    try:
        wait_until(lambda: check("beat", env) == 0, timeout_s=30, what="beat to take its lock")
        assert redis_client.exists(keys.BEAT_LOCK)
    finally:
        stop(beat)  # SIGTERM: beat gives its lock back
    assert check("beat", env) == 1
    # Redis away: restarting beat would not bring it back, so beat stays "healthy".
    away = command_env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert check("beat", away) == 0


def test_a_role_it_does_not_know_is_refused(tmp_path: Path) -> None:
    assert check("scheduler", command_env()) == 2
