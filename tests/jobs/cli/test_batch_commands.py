"""`meetreg run`, `status`, `report`: the installed command against the simulator."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import redis
from cli_helpers import command_env, meetreg
from pipeline_helpers import NO_POLICY_USER, ORGANIZER, posts

from worker.simulator import SimulatorServer

REPORT_COLUMNS = [
    "line",
    "user_id",
    "meeting_id",
    "allowed_registrant",
    "status",
    "registration_id",
    "http_status",
    "error",
    "attempts",
    "request_id",
    "updated_at",
]


def write_csv(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "meetings.csv"
    path.write_text("userId;meetingId;allowedRegistrant\r\n" + body, encoding="utf-8-sig")
    return path


def test_run_without_redis_url_uses_an_embedded_redis_and_exits_0(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    for i in range(5):
        sim.state.add_meeting(ORGANIZER, f"m-{i}")
    path = write_csv(tmp_path, "".join(f"{ORGANIZER};m-{i};\r\n" for i in range(5)))
    result = meetreg("run", str(path), env=command_env(**sim.env()))
    assert result.returncode == 0, result.stderr
    created_line = next(line for line in result.stdout.splitlines() if "created" in line)
    assert created_line.split()[-2] == "5"
    assert sum(sim.state.creations.values()) == 5
    assert "Traceback" not in result.stderr


def test_run_exits_1_when_a_row_fails_and_the_report_says_why(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    sim.state.add_meeting(ORGANIZER, "m-ok")
    sim.state.add_meeting(NO_POLICY_USER, "m-forbidden")
    path = write_csv(
        tmp_path,
        f"{ORGANIZER};m-ok;organization\r\n{NO_POLICY_USER};m-forbidden;\r\n=HYPERLINK(1);m-x;\r\n",
    )
    env = command_env(**sim.env(), REDIS_URL=redis_url)
    result = meetreg("run", str(path), "--batch-id", "nightly-1", env=env)
    assert result.returncode == 1, result.stderr

    status = json.loads(meetreg("status", "nightly-1", "--json", env=env).stdout)
    assert status["batch_id"] == "nightly-1"
    assert status["total"] == 3 and status["finished"] is True
    assert status["counts"] == {
        "queued": 0,
        "running": 0,
        "retrying": 0,
        "created": 1,
        "already_enabled": 0,
        "skipped": 0,
        "failed": 1,
        "invalid": 1,
    }

    records = json.loads(meetreg("report", "nightly-1", "--format", "json", env=env).stdout)
    assert [r["line"] for r in records] == [2, 3, 4]
    assert all(list(r) == REPORT_COLUMNS for r in records)
    ok, forbidden, invalid = records
    assert (ok["status"], ok["http_status"], ok["allowed_registrant"]) == (
        "created",
        201,
        "organization",
    )
    assert (forbidden["status"], forbidden["http_status"]) == ("failed", 403)
    assert "No Application Access Policy" in forbidden["error"] and forbidden["request_id"]
    assert invalid["status"] == "invalid" and invalid["http_status"] is None

    out = tmp_path / "report.csv"
    assert (
        meetreg("report", "nightly-1", "--format", "csv", "--output", str(out), env=env).returncode
        == 0
    )
    table = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert table[0] == REPORT_COLUMNS
    assert table[3][1] == "'=HYPERLINK(1)"  # a spreadsheet shows it, never runs it


def test_same_file_run_twice_sends_no_post_for_rows_already_done(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    for i in range(3):
        sim.state.add_meeting(ORGANIZER, f"m-{i}")
    path = write_csv(tmp_path, "".join(f"{ORGANIZER};m-{i};\r\n" for i in range(3)))
    env = command_env(**sim.env(), REDIS_URL=redis_url)
    assert meetreg("run", str(path), env=env).returncode == 0
    sent = posts(sim)
    again = meetreg("run", str(path), "--batch-id", "second", env=env)
    assert again.returncode == 0, again.stderr
    assert posts(sim) == sent == 3
    status = json.loads(meetreg("status", "second", "--json", env=env).stdout)
    assert status["counts"]["skipped"] == 3


def test_enqueue_prints_the_batch_id_and_status_shows_it_queued(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    path = write_csv(tmp_path, f"{ORGANIZER};m-1;\r\n{ORGANIZER};m-1;\r\n")
    env = command_env(REDIS_URL=redis_url)
    result = meetreg("enqueue", str(path), "--batch-id", "b-7", env=env)
    assert (result.returncode, result.stdout) == (0, "b-7\n")
    status = json.loads(meetreg("status", "b-7", "--json", env=env).stdout)
    assert (status["total"], status["finished"]) == (2, False)
    assert (status["counts"]["queued"], status["counts"]["skipped"]) == (1, 1)
    assert redis_client.llen("meetreg") == 1  # one chunk message for the workers


def test_enqueue_follows_a_link_the_operator_names(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # Unlike the drop folder's files, a path on the command line is the operator's choice.
    link = tmp_path / "tonight.csv"
    link.symlink_to(write_csv(tmp_path, f"{ORGANIZER};m-1;\r\n"))
    env = command_env(REDIS_URL=redis_url)
    result = meetreg("enqueue", str(link), "--batch-id", "linked", env=env)
    assert (result.returncode, result.stdout) == (0, "linked\n"), result.stderr
    assert json.loads(meetreg("status", "linked", "--json", env=env).stdout)["total"] == 1
