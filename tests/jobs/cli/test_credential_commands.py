"""Every credential kind through the installed command: a managed identity, and the
delegated organizer (`meetreg login` once, then runs through `/me`), against the simulator."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import redis
from cli_helpers import command_env, meetreg, start_worker, stop
from pipeline_helpers import NO_POLICY_USER, ORGANIZER, UPN, redis_dump

from worker.simulator import SimulatorServer

APP_ONLY = ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_AUTHORITY_HOST")


def managed_identity_env(sim: SimulatorServer, **extra: str) -> dict[str, str]:
    env = command_env(**sim.managed_identity_env(), **extra)
    for name in APP_ONLY:  # no app registration at all: the host's identity only
        env.pop(name, None)
    return env


def delegated_env(sim: SimulatorServer, cache: Path, **extra: str) -> dict[str, str]:
    env = command_env(**sim.delegated_env(cache), **extra)
    env.pop("AZURE_CLIENT_SECRET", None)
    return env


def write_csv(tmp_path: Path, rows: list[tuple[str, str]]) -> Path:
    path = tmp_path / "meetings.csv"
    path.write_text("user_id,meeting_id\n" + "".join(f"{u},{m}\n" for u, m in rows))
    return path


def one_line_refusal(result) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    return line


def test_a_managed_identity_runs_a_batch_with_no_secret_configured(
    sim: SimulatorServer, redis_url: str, tmp_path: Path
) -> None:
    rows = [(ORGANIZER, f"mi-{i}") for i in range(5)]
    for user_id, meeting_id in rows:
        sim.state.add_meeting(user_id, meeting_id)
    env = managed_identity_env(sim, REDIS_URL=redis_url)

    result = meetreg("run", str(write_csv(tmp_path, rows)), env=env)
    doctor = meetreg("doctor", "--user", ORGANIZER, env=env)

    assert result.returncode == 0, result.stderr
    assert sum(sim.state.creations.values()) == 5
    assert sim.state.stats()["managed_identity_tokens"] == {"system-assigned": 2}  # one each
    assert doctor.returncode == 0, doctor.stdout
    assert "managed identity (system-assigned) via the App Service identity endpoint" in (
        doctor.stdout
    )
    assert sim.config.identity_header not in result.stdout + result.stderr + doctor.stdout


def test_login_once_then_runs_go_through_me_for_the_signed_in_organizer_only(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    sim.state.sign_in_as(ORGANIZER, UPN)
    cache = tmp_path / "config" / "meetreg" / "token-cache.json"
    env = delegated_env(sim, cache, REDIS_URL=redis_url)
    mine = [(UPN, "own-1"), (ORGANIZER, "own-2"), (UPN.upper(), "own-3")]
    for _, meeting_id in mine:
        sim.state.add_meeting(ORGANIZER, meeting_id)
    sim.state.add_meeting(NO_POLICY_USER, "not-mine")
    path = write_csv(tmp_path, [*mine, (NO_POLICY_USER, "not-mine")])

    login = meetreg("login", env=env)
    assert login.returncode == 0, login.stderr
    assert "enter the code" in login.stderr
    assert f"signed in as {UPN} ({ORGANIZER})" in login.stdout
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    run = meetreg("run", str(path), "--batch-id", "delegated", env=env)
    report = meetreg("report", "delegated", "--format", "json", env=env)
    status = meetreg("login", "--status", env=env)
    doctor = meetreg("doctor", "--user", UPN, env=env)

    assert run.returncode == 1, run.stderr  # the row of another organizer failed
    records = {r["meeting_id"]: r for r in json.loads(report.stdout)}
    assert {m: records[m]["status"] for m in records} == {
        "own-1": "created",
        "own-2": "created",
        "own-3": "created",
        "not-mine": "failed",
    }
    assert records["not-mine"]["error"].startswith("NotSignedInOrganizer: ")
    assert sim.state.registration("not-mine") is None
    graph_paths = [p for _, p, _ in sim.state.requests if "/onlineMeetings" in p]
    assert graph_paths and all(p.startswith("/beta/me/onlineMeetings") for p in graph_paths)
    assert not [p for _, p, _ in sim.state.requests if p.startswith("/beta/users")]
    assert sim.state.stats()["device_code_grants"] == 1  # login only; the rest was silent
    assert f"signed in as {UPN}" in status.stdout
    assert doctor.returncode == 0, doctor.stdout
    assert f"delegated token for {UPN}" in doctor.stdout
    assert "OnlineMeetings.ReadWrite works" in doctor.stdout

    tokens = sim.state.issued_tokens()  # access and refresh tokens alike
    assert tokens
    text = "".join(r.stdout + r.stderr for r in (login, run, report, status, doctor))
    dump = redis_dump(redis_client)
    for token in tokens:
        assert token not in text, "a token reached the output"
        assert token.encode() not in dump, "a token reached Redis"


def test_a_lapsed_sign_in_refuses_the_run_telling_to_log_in_again(
    sim: SimulatorServer, redis_url: str, tmp_path: Path
) -> None:
    cache = tmp_path / "token-cache.json"
    env = delegated_env(sim, cache, REDIS_URL=redis_url)
    assert meetreg("login", env=env).returncode == 0
    data = json.loads(cache.read_text())
    for entry in data["AccessToken"].values():  # the access token's hour has passed
        entry["expires_on"] = entry["extended_expires_on"] = "0"
    cache.write_text(json.dumps(data))
    sim.state.revoke_refresh_tokens()  # and the refresh token lapsed

    result = meetreg("run", str(write_csv(tmp_path, [(ORGANIZER, "m")])), env=env)

    line = one_line_refusal(result)
    assert "invalid_grant (AADSTS700082)" in line and "run `meetreg login`" in line


def test_without_a_sign_in_the_run_is_refused_telling_to_log_in(
    sim: SimulatorServer, redis_url: str, tmp_path: Path
) -> None:
    env = delegated_env(sim, tmp_path / "absent.json", REDIS_URL=redis_url)
    result = meetreg("run", str(write_csv(tmp_path, [(ORGANIZER, "m")])), env=env)
    line = one_line_refusal(result)
    assert "absent.json (no such file)" in line and "run `meetreg login`" in line


def test_a_token_cache_others_can_read_is_refused_with_one_line(
    sim: SimulatorServer, redis_url: str, tmp_path: Path
) -> None:
    cache = tmp_path / "token-cache.json"
    cache.write_text("{}")
    cache.chmod(0o644)
    env = delegated_env(sim, cache, REDIS_URL=redis_url)

    result = meetreg("run", str(write_csv(tmp_path, [(ORGANIZER, "m")])), env=env)

    line = one_line_refusal(result)
    assert f"{cache} has mode 0644" in line and f"chmod 600 {cache}" in line


def test_a_worker_will_not_start_on_a_token_cache_others_can_read(
    sim: SimulatorServer, redis_url: str, tmp_path: Path
) -> None:
    cache = tmp_path / "token-cache.json"
    cache.write_text("{}")
    cache.chmod(0o640)
    log = tmp_path / "worker.log"
    worker = start_worker(
        "loose-cache", delegated_env(sim, cache, REDIS_URL=redis_url), tmp_path, log=log
    )
    try:
        assert worker.wait(timeout=60) == 2
    finally:
        stop(worker)
    assert f"meetreg: MEETREG_TOKEN_CACHE: {cache} has mode 0640" in log.read_text()


def test_login_is_refused_when_another_credential_is_chosen(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    env = command_env(**sim.env(), MEETREG_AUTH="secret")
    line = one_line_refusal(meetreg("login", env=env))
    assert line == "meetreg: MEETREG_AUTH is secret: `meetreg login` is for MEETREG_AUTH=delegated"
