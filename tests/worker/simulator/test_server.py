"""worker.simulator.server: the listeners it starts, the environment it hands out, its
command line (`python -m worker.simulator`) and how it stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sim_helpers import MEETING, ORGANIZER, Graph

from worker import keys
from worker.simulator import SimulatorConfig, SimulatorServer, ssl_context
from worker.simulator.server import _parser, config_from_args

REPO = Path(__file__).resolve().parents[3]
ENV_NAMES = {
    "GRAPH_BASE_URL",
    "AZURE_AUTHORITY_HOST",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
}


def test_python_m_worker_simulator_prints_the_environment_and_stops_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "worker.simulator", "--latency-ms", "1", "--conflict", "replace"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        env: dict[str, str] = {}
        assert process.stdout is not None
        while set(env) != ENV_NAMES:
            line = process.stdout.readline()
            assert line, f"simulator exited: {process.stderr.read() if process.stderr else ''}"
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                env[name] = value.strip("'")

        with httpx.Client(verify=ssl_context(env["SSL_CERT_FILE"])) as http:
            discovery = http.get(
                f"{env['AZURE_AUTHORITY_HOST']}/{env['AZURE_TENANT_ID']}/v2.0/.well-known/openid-configuration"
            )
        assert discovery.status_code == 200
        assert env["GRAPH_BASE_URL"] == f"{env['AZURE_AUTHORITY_HOST']}/beta"
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)

    assert process.returncode == 0, err
    assert not Path(env["SSL_CERT_FILE"]).exists()  # the temporary CA went with it


def test_the_plain_http_listener_shares_the_state():
    with SimulatorServer(SimulatorConfig(plain_http=True)) as sim, httpx.Client() as plain:
        sim.state.add_user(ORGANIZER)
        with httpx.Client(verify=ssl_context(sim.ca_path)) as tls:
            token = tls.post(
                f"{sim.https_url}/{sim.tenant_id}/oauth2/v2.0/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": sim.client_id,
                    "client_secret": sim.client_secret,
                    "scope": "https://graph.microsoft.com/.default",
                },
            ).json()["access_token"]
        graph_base = sim.env(graph_over_http=True)["GRAPH_BASE_URL"]

        response = plain.get(
            f"{graph_base}/users/{ORGANIZER}", headers={"Authorization": f"Bearer {token}"}
        )
        event = sim.state.add_event(ORGANIZER)
        v1_event = plain.get(
            f"{sim.http_url}/v1.0{keys.event_path(ORGANIZER, event['id'])}",
            headers={"Authorization": f"Bearer {token}"},
        )

        assert graph_base == f"{sim.http_url}/beta"
        assert v1_event.status_code == 200

    assert graph_base.startswith("http://127.0.0.1:")
    assert response.status_code == 200
    with pytest.raises(RuntimeError):
        sim.https_url  # noqa: B018 - stopped: nothing to point at


def test_env_names_everything_meetreg_needs(sim):
    env = sim.env()

    assert set(env) == ENV_NAMES
    assert env["GRAPH_BASE_URL"] == sim.graph_base_url == f"{sim.https_url}/beta"
    assert sim.graph_v1_url == f"{sim.https_url}/v1.0"
    assert env["SSL_CERT_FILE"] == env["REQUESTS_CA_BUNDLE"] == sim.ca_path
    assert sim.http_url is None
    with pytest.raises(RuntimeError):
        sim.env(graph_over_http=True)


def test_a_port_in_use_fails_start_with_runtime_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(RuntimeError, match="did not start"):
            SimulatorServer(SimulatorConfig(https_port=port)).start()


def test_the_command_line_sets_the_subscription_maximum():
    args = _parser().parse_args(["--max-subscription-minutes", "4230"])

    assert config_from_args(args).max_subscription_minutes == 4230
    assert config_from_args(_parser().parse_args([])).max_subscription_minutes == 10_080


def test_stop_does_not_wait_for_a_stalled_request():
    with (
        SimulatorServer() as sim,
        httpx.Client(base_url=sim.https_url, verify=ssl_context(sim.ca_path)) as http,
    ):
        sim.state.add_meeting(ORGANIZER, MEETING)
        sim.state.script(MEETING, [{"action": "commit_then_timeout"}])  # stalls 60 s
        with pytest.raises(httpx.ReadTimeout):
            Graph(sim, http).post_registration(timeout=0.3)
        started = time.monotonic()
        sim.stop()

    assert time.monotonic() - started < 5
