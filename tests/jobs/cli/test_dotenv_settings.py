"""Settings in a `.env` file in the current folder reach every part of meetreg: the TLS
trust of the Graph client (httpx) and of the sign-in (MSAL's requests session) too, in
`meetreg run` and in a `celery -A worker.app worker` started there."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from cli_helpers import command_env, meetreg, start_worker, stop, wait_until
from pipeline_helpers import ORGANIZER

from worker.simulator import SimulatorServer
from worker.store.outcome_store import OutcomeStore

CA_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def folder_with_dotenv(tmp_path: Path, sim: SimulatorServer, *lines: str) -> Path:
    """A folder whose `.env` holds the simulator's settings, the CA ones as given."""
    folder = tmp_path / "ops"
    folder.mkdir()
    settings = [f"{name}={value}" for name, value in sim.env().items() if name not in CA_VARIABLES]
    (folder / ".env").write_text("\n".join([*settings, *lines]) + "\n", encoding="utf-8")
    return folder


def meetings_file(folder: Path, sim: SimulatorServer, *ids: str) -> Path:
    for meeting in ids:
        sim.state.add_meeting(ORGANIZER, meeting)
    path = folder / "meetings.csv"
    path.write_text("user_id,meeting_id\n" + "".join(f"{ORGANIZER},{m}\n" for m in ids))
    return path


def no_ca_variables(**extra: str) -> dict[str, str]:
    env = command_env(**extra)
    for name in CA_VARIABLES:
        env.pop(name, None)
    return env


@pytest.mark.parametrize("name", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_a_ca_in_dotenv_is_trusted_by_run_for_sign_in_and_graph(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path, name: str
) -> None:
    """Either variable alone, as the configuration table says."""
    folder = folder_with_dotenv(tmp_path, sim, f"{name}={sim.ca_path}")
    path = meetings_file(folder, sim, "m-1", "m-2")
    env = no_ca_variables(REDIS_URL=redis_url)
    result = meetreg("run", str(path), "--batch-id", "dotenv", env=env, cwd=folder)
    assert result.returncode == 0, result.stderr
    assert OutcomeStore(redis_client).batch_status("dotenv").counts["created"] == 2


def test_a_ca_in_dotenv_is_trusted_by_a_celery_worker(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    folder = folder_with_dotenv(
        tmp_path, sim, f"SSL_CERT_FILE={sim.ca_path}", f"REQUESTS_CA_BUNDLE={sim.ca_path}"
    )
    env = no_ca_variables(REDIS_URL=redis_url, MEETREG_MAX_ATTEMPTS="1")
    path = meetings_file(folder, sim, "w-1", "w-2", "w-3")
    assert (
        meetreg("enqueue", str(path), "--batch-id", "dotenv-w", env=env, cwd=folder).returncode == 0
    )
    worker = start_worker("dotenv", env, folder, log=tmp_path / "worker.log")
    store = OutcomeStore(redis_client)
    try:
        wait_until(lambda: store.batch_status("dotenv-w").finished, timeout_s=60, what="the batch")
    finally:
        stop(worker)
    counts = store.batch_status("dotenv-w").counts
    assert counts["created"] == 3, (counts, (tmp_path / "worker.log").read_text()[-2000:])
