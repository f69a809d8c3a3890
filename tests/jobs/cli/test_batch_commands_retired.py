"""`meetreg run` and `enqueue` when Graph has retired the meeting registration API: the
probe refuses the file before anything is recorded; a batch already running pauses at the
first such answer, and `resume` finishes it once the API answers again. The installed
command, a real Redis, Celery workers and the simulator over HTTPS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from cli_helpers import command_env, meetreg, start_worker, stop, wait_until
from pipeline_helpers import ORGANIZER, posts

from worker import keys
from worker.simulator import SimulatorServer
from worker.simulator.config import RegistrationApiMode
from worker.store.outcome_store import OutcomeStore

ROWS = 30


def write_file(sim: SimulatorServer, tmp_path: Path) -> Path:
    path = tmp_path / "meetings.csv"
    lines = ["user_id,meeting_id"]
    for i in range(ROWS):
        sim.state.add_meeting(ORGANIZER, f"m-{i}")
        lines.append(f"{ORGANIZER},m-{i}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def graph_calls(sim: SimulatorServer) -> list[tuple[str, str, int]]:
    """Graph calls, each call of a `$batch` envelope counted, not the envelope."""
    return [
        call
        for call in sim.state.requests
        if call[1].startswith("/beta") and not call[1].endswith("/$batch")
    ]


@pytest.mark.parametrize(
    ("command", "mode", "words"),
    [
        ("run", "gone", "Microsoft retired the meeting registration API on 2024-12-12"),
        ("enqueue", "gone", "Microsoft retired the meeting registration API on 2024-12-12"),
        ("run", "app-only-refused", "refuses the meeting registration API to app-only tokens"),
        ("enqueue", "app-only-refused", "to app-only tokens (the API was retired on 2024-12-12"),
    ],
)
def test_a_retired_api_is_refused_before_anything_is_recorded(
    sim: SimulatorServer,
    redis_url: str,
    redis_client: redis.Redis,
    tmp_path: Path,
    command: str,
    mode: RegistrationApiMode,
    words: str,
) -> None:
    path = write_file(sim, tmp_path)
    sim.state.set_registration_api(mode)
    env = command_env(**sim.env(), REDIS_URL=redis_url)

    result = meetreg(command, str(path), "--batch-id", "retired", env=env)

    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("meetreg: ") and words in line
    assert "register people for Teams webinars instead" in line
    assert not redis_client.exists(keys.batch("retired"))
    assert redis_client.keys("*retired*") == []  # no row, no chunk held
    assert redis_client.llen("meetreg") == 0  # nothing on the queue
    assert posts(sim) == 0
    assert [method for method, _, _ in graph_calls(sim)] == ["GET"]  # the probe's one look


def test_no_probe_enqueues_without_a_look(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    path = write_file(sim, tmp_path)
    sim.state.set_registration_api("gone")
    env = command_env(**sim.env(), REDIS_URL=redis_url)

    enqueued = meetreg("enqueue", str(path), "--batch-id", "unchecked", "--no-probe", env=env)

    assert enqueued.returncode == 0, enqueued.stderr
    assert redis_client.exists(keys.batch("unchecked"))
    assert graph_calls(sim) == []


def test_enqueue_without_a_graph_credential_stays_a_pure_producer(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    path = write_file(sim, tmp_path)
    sim.state.set_registration_api("gone")
    env = command_env(**sim.env(), REDIS_URL=redis_url)
    for name in [name for name in env if name.startswith("AZURE_")]:
        del env[name]  # no credential: this machine only enqueues

    enqueued = meetreg("enqueue", str(path), "--batch-id", "producer", env=env)

    assert enqueued.returncode == 0, enqueued.stderr
    assert "not checked" not in enqueued.stderr  # skipped on purpose, not a failure
    assert redis_client.exists(keys.batch("producer"))
    assert sim.state.requests == []


def test_a_running_batch_pauses_at_the_first_retired_answer_and_resume_finishes_it(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    path = write_file(sim, tmp_path)
    # One row at a time, so "at once" is countable: one answer, then the pause.
    env = command_env(
        **sim.env(), REDIS_URL=redis_url, MEETREG_CONCURRENCY="1", MEETREG_ENVELOPE_SIZE="1"
    )
    enqueued = meetreg("enqueue", str(path), "--batch-id", "retiring", env=env)
    assert enqueued.returncode == 0, enqueued.stderr  # the API still answered the probe
    probed = len(graph_calls(sim))
    sim.state.set_registration_api("gone")  # Microsoft switches it off meanwhile
    store = OutcomeStore(redis_client)
    worker = start_worker("retiring", env, tmp_path)
    try:
        wait_until(
            lambda: store.batch_status("retiring").paused != "", timeout_s=60, what="the pause"
        )
        status = json.loads(meetreg("status", "retiring", "--json", env=env).stdout)
        assert status["paused"] is True and status["finished"] is False
        assert "2024-12-12" in status["paused_reason"]
        assert status["counts"]["failed"] == 0
        assert status["counts"]["queued"] == ROWS  # none final, none burnt
        text = meetreg("status", "retiring", env=env).stdout
        assert "PAUSED" in text and "why: Microsoft retired" in text
        # One answer, not the safety valve's 20 failed rows.
        answered = [s for _, p, s in graph_calls(sim)[probed:] if p.endswith("/registration")]
        assert answered == [400]

        sim.state.set_registration_api("live")
        resumed = meetreg("resume", "retiring", env=env)
        assert resumed.returncode == 0, resumed.stderr
        wait_until(lambda: store.batch_status("retiring").finished, timeout_s=60, what="the rest")
    finally:
        stop(worker)
    done = json.loads(meetreg("status", "retiring", "--json", env=env).stdout)
    assert done["counts"]["created"] == ROWS
    assert sum(sim.state.creations.values()) == ROWS


def test_a_dry_run_says_the_api_is_retired_in_one_line_not_row_by_row(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    path = write_file(sim, tmp_path)
    sim.state.set_registration_api("gone")
    env = command_env(**sim.env(), REDIS_URL=redis_url)

    result = meetreg("run", "--dry-run", str(path), env=env)

    assert result.returncode == 2, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "Microsoft retired the meeting registration API on 2024-12-12" in line
    assert "would_fail" not in result.stdout
    assert posts(sim) == 0
