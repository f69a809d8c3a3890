"""`meetreg webinars publish` through the installed command, against the simulator: the
organizer signs in with `meetreg login`, then publishes their drafts; an app credential is
refused before anything is read."""

from __future__ import annotations

import json
from pathlib import Path

import redis
from cli_helpers import command_env, meetreg
from pipeline_helpers import NO_POLICY_USER, ORGANIZER, UPN, redis_dump

from jobs.cli.webinar_commands import DELEGATED_ONLY
from worker.simulator import SimulatorServer
from worker.simulator.webinars import new_webinar_id


def delegated_env(sim: SimulatorServer, cache: Path, **extra: str) -> dict[str, str]:
    env = command_env(**sim.delegated_env(cache), **extra)
    env.pop("AZURE_CLIENT_SECRET", None)
    return env


def webinar(sim: SimulatorServer, organizer_id: str = ORGANIZER, status: str = "draft") -> str:
    webinar_id = new_webinar_id()
    sim.state.add_webinar(webinar_id, organizer_id, status=status)
    return webinar_id


def status_of(sim: SimulatorServer, webinar_id: str) -> str:
    return sim.state.webinar_call(lambda w: str(w.get(webinar_id).status))


def test_the_signed_in_organizer_publishes_every_draft_of_theirs(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    sim.state.sign_in_as(ORGANIZER, UPN)
    env = delegated_env(sim, tmp_path / "tokens.json", REDIS_URL=redis_url)
    drafts = [webinar(sim), webinar(sim)]
    live = webinar(sim, status="published")
    gone = webinar(sim, status="canceled")
    theirs = webinar(sim, organizer_id=NO_POLICY_USER)

    login = meetreg("login", env=env)
    assert login.returncode == 0, login.stderr
    run = meetreg("webinars", "publish", "--all-drafts", "--batch-id", "drafts", env=env)
    status = meetreg("status", "drafts", "--json", env=env)
    report = meetreg("report", "drafts", "--format", "json", env=env)
    again = meetreg("webinars", "publish", "--all-drafts", env=env)
    undo = meetreg("disable", "--batch", "drafts", env=env)

    assert run.returncode == 0, run.stderr
    assert "report: meetreg report drafts" in run.stdout
    assert [status_of(sim, w) for w in drafts] == ["published", "published"]
    assert (status_of(sim, live), status_of(sim, gone)) == ("published", "canceled")
    assert status_of(sim, theirs) == "draft"  # not theirs to publish: never listed
    assert json.loads(status.stdout)["counts"]["published"] == 2
    records = json.loads(report.stdout)
    assert sorted(r["webinar_id"] for r in records) == sorted(drafts)
    assert {r["status"] for r in records} == {"published"}
    # The webinar alone: no meeting's, person's or registration's column.
    assert list(records[0])[:3] == ["line", "webinar_id", "status"]
    assert not {"email", "meeting_id", "registration_id"} & set(records[0])
    assert again.returncode == 0 and "no draft webinar to publish" in again.stderr
    assert undo.returncode == 2 and "Traceback" not in undo.stderr
    assert undo.stderr.strip() == (
        "meetreg: batch drafts published webinars; Graph cannot unpublish a webinar, so it "
        "cannot be undone"
    )

    text = "".join(r.stdout + r.stderr for r in (login, run, status, report, again, undo))
    dump = redis_dump(redis_client)
    for token in sim.state.issued_tokens():
        assert token not in text and token.encode() not in dump


def test_a_file_of_webinar_ids_fails_the_rows_that_cannot_be_published(
    sim: SimulatorServer, redis_url: str, tmp_path: Path
) -> None:
    sim.state.sign_in_as(ORGANIZER, UPN)
    env = delegated_env(sim, tmp_path / "tokens.json", REDIS_URL=redis_url)
    draft, gone = webinar(sim), webinar(sim, status="canceled")
    path = tmp_path / "webinars.csv"
    path.write_text(f"webinarId\n{draft}\n{gone}\n\n", encoding="utf-8")

    assert meetreg("login", env=env).returncode == 0
    run = meetreg("webinars", "publish", str(path), "--batch-id", "file", env=env)
    report = meetreg("report", "file", "--format", "json", env=env)

    assert run.returncode == 1, run.stderr  # a row failed, as `meetreg run` says it
    got = {r["webinar_id"]: (r["line"], r["status"], r["error"]) for r in json.loads(report.stdout)}
    assert got == {
        draft: (2, "published", ""),
        gone: (3, "failed", "the webinar was canceled"),
    }


def test_an_app_credential_is_refused_at_once_saying_how_to_sign_in(
    sim: SimulatorServer, redis_url: str, tmp_path: Path
) -> None:
    draft = webinar(sim)
    env = command_env(**sim.env(), REDIS_URL=redis_url)  # the client secret: app-only

    result = meetreg("webinars", "publish", "--all-drafts", env=env)

    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == f"meetreg: {DELEGATED_ONLY}"
    assert "run `meetreg login` and set MEETREG_AUTH=delegated" in DELEGATED_ONLY
    assert status_of(sim, draft) == "draft"
    assert not sim.state.requests  # refused before any sign-in or Graph call
