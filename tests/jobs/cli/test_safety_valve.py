"""The safety valve: a batch failing systemically pauses instead of burning through the file;
`resume` continues it, `cancel` ends it. Real processes, a real Redis, the simulator."""

from __future__ import annotations

import json
from pathlib import Path

import redis
from cli_helpers import command_env, meetreg, start_worker, stop, wait_until
from pipeline_helpers import posts

from worker.simulator import SimulatorServer
from worker.store.outcome_store import OutcomeStore

USERS = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(4)]
ROWS = 200


def write_batch(sim: SimulatorServer, path: Path, *, policy: bool) -> None:
    for user in USERS:
        sim.state.add_user(user, access_policy=policy)
    lines = ["user_id,meeting_id"]
    for i in range(ROWS):
        user = USERS[i % len(USERS)]
        sim.state.add_meeting(user, f"valve-{i}")
        lines.append(f"{user},valve-{i}")
    path.write_text("\n".join(lines) + "\n")


def status(env: dict[str, str], batch_id: str) -> dict:
    return json.loads(meetreg("status", batch_id, "--json", env=env).stdout)


def test_a_missing_access_policy_pauses_the_run_and_resume_finishes_it(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    path = tmp_path / "meetings.csv"
    write_batch(sim, path, policy=False)
    # At most 4 threads x 10 rows in flight when the valve shuts: the rows it cannot stop.
    env = command_env(
        **sim.env(),
        REDIS_URL=redis_url,
        MEETREG_RATE_LIMIT="1000",
        MEETREG_CONCURRENCY="4",
        MEETREG_CHUNK_SIZE="10",
    )

    result = meetreg("run", str(path), "--batch-id", "valve", env=env)
    assert result.returncode == 1
    assert "PAUSED" in result.stderr
    assert "No Application Access Policy" in result.stderr
    assert "meetreg resume valve" in result.stderr
    paused = status(env, "valve")
    assert paused["paused"] is True and paused["finished"] is False
    # It stopped early: not 200 rows burnt, only the window and the rows already in flight.
    assert 20 <= paused["counts"]["failed"] < 80
    assert posts(sim) < 80
    text = meetreg("status", "valve", env=env).stdout
    assert "PAUSED" in text and "why:" in text

    for user in USERS:  # the Teams admin grants the policy
        sim.state.add_user(user, access_policy=True)
    assert meetreg("retry", "valve", env=env).returncode == 0  # the failed ones, once more
    resumed = meetreg("resume", "valve", env=env)
    assert resumed.returncode == 0, resumed.stderr
    worker = start_worker("valve", env, tmp_path)
    try:
        wait_until(
            lambda: OutcomeStore(redis_client).batch_status("valve").finished,
            timeout_s=60,
            what="the rest",
        )
    finally:
        stop(worker)
    done = status(env, "valve")
    assert done["counts"]["created"] == ROWS
    assert done["paused"] is False
    assert sum(sim.state.creations.values()) == ROWS


def test_cancel_ends_a_paused_batch(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    path = tmp_path / "meetings.csv"
    write_batch(sim, path, policy=False)
    env = command_env(
        **sim.env(), REDIS_URL=redis_url, MEETREG_RATE_LIMIT="1000", MEETREG_CONCURRENCY="4"
    )
    assert meetreg("run", str(path), "--batch-id", "doomed", env=env).returncode == 1

    cancelled = meetreg("cancel", "doomed", env=env)
    assert cancelled.returncode == 0, cancelled.stderr
    ended = status(env, "doomed")
    assert ended["finished"] is True and ended["cancelled"] is True
    assert ended["counts"]["failed"] == ROWS
    refused = meetreg("resume", "doomed", env=env)
    assert refused.returncode == 2
    assert "cancelled" in refused.stderr


def test_a_worker_that_cannot_sign_in_pauses_the_batch_without_a_graph_call(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    path = tmp_path / "meetings.csv"
    write_batch(sim, path, policy=True)
    env = command_env(**sim.env(), REDIS_URL=redis_url, MEETREG_CONCURRENCY="4")
    enqueued = meetreg("enqueue", str(path), "--batch-id", "nosignin", env=env)
    assert enqueued.returncode == 0, enqueued.stderr
    wrong = {**env, "AZURE_CLIENT_SECRET": "not-the-secret"}
    worker = start_worker("nosignin", wrong, tmp_path)
    try:
        wait_until(
            lambda: OutcomeStore(redis_client).batch_status("nosignin").paused != "",
            timeout_s=60,
            what="a pause",
        )
    finally:
        stop(worker)
    paused = status(env, "nosignin")
    assert paused["paused_reason"].startswith("sign-in failed")
    assert "AADSTS7000215" in paused["paused_reason"]
    assert "not-the-secret" not in json.dumps(paused)
    assert paused["counts"]["failed"] == 0  # rows wait, none burnt
    assert posts(sim) == 0
