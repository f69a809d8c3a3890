"""Secrets stay secret: a batch run with a known client secret, then with a certificate and
its passphrase, and `meetreg serve` with its API key and client state. Every output, report,
log and every Redis key and value is searched for them and for the tokens the simulator
issued."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cli_helpers import command_env, meetreg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from pipeline_helpers import ORGANIZER, redis_dump
from serve_helpers import API_KEY, CLIENT_STATE, VIEWER_KEY, Served, bearer

from worker.simulator import SimulatorConfig, SimulatorServer
from worker.simulator.tls import make_client_certificate

PASSPHRASE = "pfx-passphrase-for-the-leak-test"
ROWS = 30


@pytest.fixture(scope="module")
def certificate() -> tuple:
    return make_client_certificate()


@pytest.fixture(scope="module")
def server(certificate: tuple) -> Iterator[SimulatorServer]:
    cert_pem = certificate[1].public_bytes(serialization.Encoding.PEM).decode()
    with SimulatorServer(SimulatorConfig(client_certificates=(cert_pem,))) as sim:
        yield sim


def run_batch(env: dict[str, str], sim: SimulatorServer, tmp_path: Path, batch_id: str) -> str:
    lines = ["user_id,meeting_id"]
    for i in range(ROWS):
        sim.state.add_meeting(ORGANIZER, f"{batch_id}-{i}")
        lines.append(f"{ORGANIZER},{batch_id}-{i}")
    path = tmp_path / f"{batch_id}.csv"
    path.write_text("\n".join(lines) + "\n")
    seen = []
    for args in (
        ("run", str(path), "--batch-id", batch_id),
        ("status", batch_id, "--json"),
        ("report", batch_id, "--format", "json"),
        ("report", batch_id),
        ("doctor", "--user", ORGANIZER),
    ):
        result = meetreg(*args, env=env)
        seen += [result.stdout, result.stderr]
    assert '"created": 30' in seen[2]
    return "\n".join(seen)


def assert_nowhere(secrets: list[str], text: str, dump: bytes) -> None:
    for secret in secrets:
        assert secret not in text, "a secret reached the output"
        assert secret.encode() not in dump, "a secret reached Redis"


def test_a_client_secret_and_its_tokens_reach_no_output_and_no_redis_key(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = command_env(**sim.env(), REDIS_URL=redis_url, MEETREG_RATE_LIMIT="1000")
    text = run_batch(env, sim, tmp_path, "secret")
    tokens = sim.state.issued_tokens()
    assert tokens  # the run signed in, so there is something to look for
    assert_nowhere([sim.client_secret, *tokens], text, redis_dump(redis_client))


def test_a_certificate_passphrase_and_its_tokens_reach_no_output_and_no_redis_key(
    sim: SimulatorServer,
    certificate: tuple,
    redis_url: str,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    key, cert = certificate
    pfx = tmp_path / "app.pfx"
    pfx.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"meetreg", key, cert, None, serialization.BestAvailableEncryption(PASSPHRASE.encode())
        )
    )
    env = command_env(**sim.env(), REDIS_URL=redis_url, MEETREG_RATE_LIMIT="1000")
    del env["AZURE_CLIENT_SECRET"]
    env.update(AZURE_CLIENT_CERTIFICATE_PATH=str(pfx), AZURE_CLIENT_CERTIFICATE_PASSWORD=PASSPHRASE)
    text = run_batch(env, sim, tmp_path, "cert")
    tokens = sim.state.issued_tokens()
    assert tokens
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    body = "".join(private_pem.splitlines()[1:-1])[:64]
    assert_nowhere([PASSPHRASE, body, *tokens], text, redis_dump(redis_client))

    wrong = {**env, "AZURE_CLIENT_CERTIFICATE_PASSWORD": "not-the-passphrase"}
    refused = meetreg("run", str(tmp_path / "cert.csv"), env=wrong)
    assert refused.returncode == 2
    assert "not-the-passphrase" not in refused.stdout + refused.stderr


def test_the_api_key_viewer_key_and_client_state_reach_no_log_of_meetreg_serve(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    env = command_env(
        **sim.env(),
        REDIS_URL=redis_url,
        MEETREG_API_KEY=API_KEY,
        MEETREG_WEBHOOK_CLIENT_STATE=CLIENT_STATE,
        MEETREG_VIEWER_KEY=VIEWER_KEY,
    )
    served = Served(env, tmp_path)
    try:
        items = [{"user_id": ORGANIZER, "meeting_id": "serve-1"}]
        assert (
            served.http.post("/api/registrations", json=items, headers=bearer()).status_code == 202
        )
        wrong = served.http.post("/api/registrations", json=items, headers=bearer(API_KEY[::-1]))
        assert wrong.status_code == 401
        assert served.pages.get("/api/batches").status_code == 200
        unread = served.http.get("/api/batches", auth=("operator", VIEWER_KEY[::-1]))
        assert unread.status_code == 401
        note = {
            "value": [
                {
                    "subscriptionId": "s",
                    "changeType": "created",
                    "clientState": CLIENT_STATE,
                    "resource": f"Users/{ORGANIZER}/Events/e",
                    "resourceData": {"id": "e"},
                }
            ]
        }
        assert served.http.post("/graph/notifications", json=note).status_code == 202
        forged = {"value": [{**note["value"][0], "clientState": CLIENT_STATE + "x"}]}
        assert served.http.post("/graph/notifications", json=forged).status_code == 202
    finally:
        served.close()
    log = served.log.read_text()
    assert "POST /api/registrations" in log  # the log is there, and it was written
    assert_nowhere(
        [API_KEY, API_KEY[::-1], CLIENT_STATE, VIEWER_KEY, VIEWER_KEY[::-1]],
        log + wrong.text + unread.text,
        redis_dump(redis_client),
    )
