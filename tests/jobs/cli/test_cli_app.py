"""The command line as scripts use it: `meetreg --version`, and `--json` on the commands
that act (one JSON document on stdout, whatever the command printed for a person)."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis
from cli_helpers import command_env, meetreg
from pipeline_helpers import ORGANIZER

from worker.simulator import SimulatorServer


def document(result: Any) -> Any:
    """stdout as exactly one JSON document (json.loads refuses two)."""
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def meetings(tmp_path: Path, sim: SimulatorServer, *ids: str) -> Path:
    for meeting in ids:
        if not meeting.startswith("gone"):
            sim.state.add_meeting(ORGANIZER, meeting)
    path = tmp_path / "meetings.csv"
    lines = [f"{ORGANIZER},{meeting}" for meeting in ids]
    path.write_text("user_id,meeting_id\n" + "\n".join(lines) + "\n")
    return path


def test_version_prints_the_installed_version() -> None:
    result = meetreg("--version", env=command_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"meetreg {version('meetreg')}"
    assert re.fullmatch(r"meetreg \d+\.\d+.*", result.stdout.strip())


def test_doctor_json_is_one_document_with_every_check(sim: SimulatorServer, redis_url: str) -> None:
    result = meetreg("doctor", "--json", env=command_env(**sim.env(), REDIS_URL=redis_url))
    shown = document(result)
    assert shown["ok"] is (result.returncode == 0)
    names = [check["name"] for check in shown["checks"]]
    assert "configuration" in names and "redis" in names
    assert all(set(check) == {"name", "status", "detail"} for check in shown["checks"])


def test_run_json_is_the_batch_status(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = command_env(**sim.env(), REDIS_URL=redis_url)
    path = meetings(tmp_path, sim, "m-1", "m-2", "gone-1")
    result = meetreg("run", str(path), "--batch-id", "j-run", "--json", env=env)
    assert result.returncode == 1  # a row failed
    shown = document(result)
    assert (shown["batch_id"], shown["total"], shown["finished"]) == ("j-run", 3, True)
    assert (shown["counts"]["created"], shown["counts"]["failed"]) == (2, 1)
    assert shown["elapsed_s"] >= 0

    human = meetreg("run", str(path), "--batch-id", "j-run-2", env=env)
    assert "report: meetreg report j-run-2" in human.stdout  # without --json, as before


def test_enqueue_retry_resume_and_cancel_json(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = command_env(**sim.env(), REDIS_URL=redis_url)
    path = meetings(tmp_path, sim, "m-1", "m-2", "m-3")
    enqueued = document(meetreg("enqueue", str(path), "--batch-id", "j-1", "--json", env=env))
    assert enqueued == {
        "batch_id": "j-1",
        "total": 3,
        "chunks": 1,
        "resumed": False,
        "counts": enqueued["counts"],
    }
    assert enqueued["counts"]["queued"] == 3
    again = document(meetreg("enqueue", str(path), "--batch-id", "j-1", "--json", env=env))
    assert again["resumed"] is True

    retried = document(meetreg("retry", "j-1", "--json", env=env))
    assert retried == {"batch_id": "j-1", "retried": 0}
    resumed = document(meetreg("resume", "j-1", "--json", env=env))
    assert resumed["batch_id"] == "j-1" and resumed["chunks"] >= 0
    cancelled = document(meetreg("cancel", "j-1", "--json", env=env))
    assert cancelled == {"batch_id": "j-1", "cancelled": True, "ended": 3}

    human = meetreg("cancel", "j-1", env=env)
    assert human.stdout.strip() == "j-1: cancelled, 0 unfinished rows ended"


def test_disable_json_is_the_undo_batchs_status(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = command_env(**sim.env(), REDIS_URL=redis_url)
    path = meetings(tmp_path, sim, "m-1", "m-2")
    assert meetreg("run", str(path), "--batch-id", "src", env=env).returncode == 0
    result = meetreg("disable", "--batch", "src", "--batch-id", "undo", "--json", env=env)
    assert result.returncode == 0, result.stderr
    shown = document(result)
    assert (shown["batch_id"], shown["undoes"], shown["finished"]) == ("undo", "src", True)
    assert shown["counts"]["disabled"] == 2

    queued = meetreg("disable", "--batch", "src", "--no-wait", "--json", env=env)
    assert document(queued)["batch_id"] == "undo"  # resumed, left to the workers
