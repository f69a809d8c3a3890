"""`--dry-run`: every row forecast from Graph's reads, not one POST, nothing recorded."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import redis
from cli_helpers import command_env, meetreg
from pipeline_helpers import NO_POLICY_USER, ORGANIZER, UPN, posts

from worker import keys
from worker.simulator import SimulatorServer
from worker.simulator.webinars import new_webinar_id


@pytest.mark.parametrize("command", ["run", "enqueue"])
def test_a_dry_run_forecasts_each_row_and_sends_no_post(
    command: str, sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = command_env(**sim.env(), REDIS_URL=redis_url, MEETREG_RATE_LIMIT="1000")
    sim.state.add_meeting(ORGANIZER, "done-before")
    earlier = tmp_path / "earlier.csv"
    earlier.write_text(f"user_id,meeting_id\n{ORGANIZER},done-before\n")
    assert meetreg("run", str(earlier), env=env).returncode == 0
    posts_before, batches_before = posts(sim), redis_client.zcard(keys.BATCHES)

    sim.state.add_meeting(ORGANIZER, "new")
    sim.state.add_meeting(ORGANIZER, "has-one", existing="external")
    linked = sim.state.add_meeting(ORGANIZER, "by-link")
    sim.state.add_meeting(NO_POLICY_USER, "no-policy")
    path = tmp_path / "meetings.csv"
    path.write_text(
        "user_id,meeting_id,join_web_url\n"
        f"{ORGANIZER},new,\n"
        f"{ORGANIZER},has-one,\n"
        f"{UPN},,{linked['joinWebUrl']}\n"
        f"{ORGANIZER},missing,\n"
        f"{NO_POLICY_USER},no-policy,\n"
        f"{ORGANIZER},new,\n"
        f"{ORGANIZER},done-before,\n"
        "not-a-user,x,\n"
    )
    result = meetreg(command, "--dry-run", str(path), env=env)
    assert result.returncode == 1, result.stderr  # some rows would fail
    forecast = {row["line"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert {line: row["forecast"] for line, row in forecast.items()} == {
        "2": "would_create",
        "3": "already_enabled",
        "4": "would_create",
        "5": "would_fail",
        "6": "would_fail",
        "7": "skipped",
        "8": "skipped",
        "9": "invalid",
    }
    assert forecast["4"]["meeting_id"] == "by-link"
    assert forecast["5"]["http_status"] == "404"
    assert forecast["6"]["http_status"] == "403"
    assert "earlier batch" in forecast["8"]["reason"]
    assert "nothing sent" in result.stderr
    assert posts(sim) == posts_before
    assert redis_client.zcard(keys.BATCHES) == batches_before
    assert redis_client.llen(keys.QUEUE) == 0
    assert sim.state.registration("new") is None


def test_a_dry_run_with_a_refused_credential_is_one_line_and_exit_2(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    path = tmp_path / "meetings.csv"
    path.write_text(f"user_id,meeting_id\n{ORGANIZER},m\n")
    env = command_env(**{**sim.env(), "AZURE_CLIENT_SECRET": "wrong"})
    result = meetreg("run", "--dry-run", str(path), env=env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "AADSTS7000215" in result.stderr


def test_a_dry_run_of_registrants_forecasts_each_person_and_registers_no_one(
    sim: SimulatorServer, redis_url: str, tmp_path: Path
) -> None:
    env = command_env(**sim.env(), REDIS_URL=redis_url, MEETREG_RATE_LIMIT="1000")
    live, draft = new_webinar_id(), new_webinar_id()
    sim.state.add_webinar(live, ORGANIZER)
    sim.state.add_webinar(draft, ORGANIZER, status="draft")
    earlier = tmp_path / "earlier.csv"
    earlier.write_text(f"webinar_id,email,first_name,last_name\n{live},bo@contoso.example,Bo,Ek\n")
    assert meetreg("run", str(earlier), env=env).returncode == 0
    posts_before = sim.state.stats()["webinar_registration_posts"]

    path = tmp_path / "people.csv"
    path.write_text(
        "webinar_id,email,first_name,last_name\n"
        f"{live},ann@contoso.example,Ann,Lee\n"
        f"{live},BO@contoso.example,Bo,Ek\n"
        f"{draft},cy@contoso.example,Cy,Ho\n"
        f"{live},ANN@contoso.example,Ann,Lee\n"
        f"{live},not-an-address,Dee,Ro\n"
    )
    result = meetreg("run", "--dry-run", str(path), env=env)

    assert result.returncode == 1, result.stderr  # the draft's row would fail
    forecast = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(row["line"], row["email"], row["forecast"]) for row in forecast] == [
        ("2", "ann@contoso.example", "would_register"),
        ("3", "BO@contoso.example", "skipped"),  # done by the earlier batch
        ("4", "cy@contoso.example", "would_fail"),
        ("5", "ANN@contoso.example", "skipped"),  # the same person as line 2
        ("6", "not-an-address", "invalid"),
    ]
    assert forecast[2]["reason"] == "the webinar is a draft: its organizer must publish it first"
    assert {row["webinar_id"] for row in forecast} == {live, draft}
    assert sim.state.stats()["webinar_registration_posts"] == posts_before
