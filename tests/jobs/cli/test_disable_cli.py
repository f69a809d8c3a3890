"""`meetreg disable --batch ID`: the installed command undoes a batch against the simulator."""

from __future__ import annotations

import json
from pathlib import Path

import redis
from cli_helpers import command_env, meetreg
from pipeline_helpers import ORGANIZER

from worker import keys
from worker.simulator import SimulatorServer

UNDO_COUNTS = ["queued", "running", "retrying", "disabled", "already_disabled", "changed"]


def deletes(sim: SimulatorServer) -> list[str]:
    return sorted(path for method, path, _ in sim.state.requests if method == "DELETE")


def run_source(sim: SimulatorServer, env: dict[str, str], tmp_path: Path) -> None:
    """Batch `src`: creates m-0..m-2's registrations, finds p-0's."""
    for i in range(3):
        sim.state.add_meeting(ORGANIZER, f"m-{i}")
    sim.state.add_meeting(ORGANIZER, "p-0", existing="external")
    path = tmp_path / "meetings.csv"
    lines = [f"{ORGANIZER},{m}" for m in ("m-0", "p-0", "m-1", "m-2")]
    path.write_text("user_id,meeting_id\n" + "\n".join(lines) + "\n", encoding="utf-8")
    assert meetreg("run", str(path), "--batch-id", "src", env=env).returncode == 0


def test_disable_deletes_what_the_batch_created_and_a_second_run_nothing_more(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = command_env(**sim.env(), REDIS_URL=redis_url)
    run_source(sim, env, tmp_path)
    pre_existing = sim.state.registration("p-0")

    result = meetreg("disable", "--batch", "src", "--batch-id", "src-undo", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "src-undo"
    assert "disabled" in result.stdout and "Traceback" not in result.stderr
    created = sorted("/beta" + keys.registration_path(ORGANIZER, f"m-{i}") for i in range(3))
    assert deletes(sim) == created
    assert sim.state.registration("p-0") == pre_existing

    report = json.loads(meetreg("report", "src-undo", "--format", "json", env=env).stdout)
    assert [(r["line"], r["meeting_id"], r["status"]) for r in report] == [
        (2, "m-0", "disabled"),
        (4, "m-1", "disabled"),
        (5, "m-2", "disabled"),
    ]
    status = json.loads(meetreg("status", "src-undo", "--json", env=env).stdout)
    assert list(status["counts"])[:6] == UNDO_COUNTS
    assert (status["operation"], status["undoes"], status["finished"]) == ("disable", "src", True)

    again = meetreg("disable", "--batch", "src", env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0] == "src-undo"  # the same undo batch, resumed
    assert deletes(sim) == created  # nothing more sent


def test_disable_exits_1_when_graph_refuses_a_delete(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = command_env(**sim.env(), REDIS_URL=redis_url)
    run_source(sim, env, tmp_path)
    sim.state.script("m-1", [{"action": "answer"}, {"status": 403}])
    result = meetreg("disable", "--batch", "src", env=env)
    assert result.returncode == 1, result.stderr
    assert sim.state.registration("m-1") is not None
    assert sim.state.registration("m-0") is None


def test_disable_refuses_an_unknown_or_unfinished_batch_in_one_line(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = command_env(**sim.env(), REDIS_URL=redis_url)
    unknown = meetreg("disable", "--batch", "nope", env=env)
    assert (unknown.returncode, unknown.stdout) == (2, "")
    assert unknown.stderr.strip().splitlines() == ["meetreg: unknown batch 'nope'"]

    path = tmp_path / "meetings.csv"
    path.write_text(f"user_id,meeting_id\n{ORGANIZER},m-9\n", encoding="utf-8")
    assert meetreg("enqueue", str(path), "--batch-id", "busy", env=env).returncode == 0
    running = meetreg("disable", "--batch", "busy", env=env)
    assert running.returncode == 2
    assert len(running.stderr.strip().splitlines()) == 1
    assert "still running" in running.stderr
    assert deletes(sim) == []


def test_disable_no_wait_leaves_the_undo_batch_to_the_workers(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = command_env(**sim.env(), REDIS_URL=redis_url)
    run_source(sim, env, tmp_path)
    redis_client.delete(keys.QUEUE)
    result = meetreg("disable", "--batch", "src", "--no-wait", env=env)
    assert result.returncode == 0, result.stderr
    undo_id = result.stdout.strip()
    status = json.loads(meetreg("status", undo_id, "--json", env=env).stdout)
    assert (status["total"], status["counts"]["queued"]) == (3, 3)
    assert redis_client.llen(keys.QUEUE) == 1  # one chunk message for the workers
    assert deletes(sim) == []
