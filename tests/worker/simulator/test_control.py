"""worker.simulator control API (SimulatorControl over HTTP) and `python -m worker.simulator`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sim_helpers import MEETING, ORGANIZER, OTHER_USER

from worker import keys
from worker.simulator import SimulatorConfig, SimulatorControl, SimulatorServer, ssl_context

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


@pytest.fixture
def control(sim):
    with SimulatorControl(sim.https_url, sim.ca_path) as client:
        yield client


def test_the_control_api_seeds_scripts_and_inspects(sim, graph, control):
    control.add_user(OTHER_USER, upn="bob@contoso.example", access_policy=False)
    seeded = control.add_meeting(ORGANIZER, MEETING)
    added = control.add_meetings(
        [{"organizer_id": ORGANIZER, "meeting_id": f"bulk-{i}"} for i in range(1000)]
    )
    control.script(MEETING, [{"status": 503}])

    assert seeded["id"] == MEETING
    assert added == 1000
    assert graph.post_registration().status_code == 503
    assert graph.post_registration().status_code == 201
    assert (
        control.registration(MEETING)["@odata.type"]
        == "#microsoft.graph.externalMeetingRegistration"
    )
    assert control.registration("bulk-1") is None
    stats = control.stats()
    assert stats["creations"] == {MEETING: 1}
    assert stats["meetings"] == 1001
    assert stats["requests_by_status"] == {"POST 503": 1, "POST 201": 1}
    assert control.requests(limit=1) == [
        ("POST", f"/beta/users/{ORGANIZER}/onlineMeetings/{MEETING}/registration", 201)
    ]
    assert sim.state.find_user("bob@contoso.example")["id"] == OTHER_USER


def test_the_control_api_sets_faults_conflict_and_expires_tokens(sim, graph, control):
    control.add_meeting(ORGANIZER, MEETING, existing="external")
    control.set_conflict("replace")
    faults = control.set_faults(latency_ms=5, retry_after_style="float")

    assert faults["latency_ms"] == 5
    assert control.faults["retry_after_style"] == "float"
    assert sim.state.faults.latency_ms == 5
    assert graph.post_registration().status_code == 201
    assert control.expire_tokens() == 1
    assert graph.post_registration().status_code == 401
    control.script(MEETING, [{"status": 429, "retry_after": "5"}])
    assert control.early_retries() == [] and control.early_retries_global() == []
    control.reset()
    assert control.stats()["meetings"] == 0
    assert sim.state.conflict == "409"


def test_the_control_api_refuses_bad_input_with_400(control):
    with pytest.raises(httpx.HTTPStatusError) as bad_step:
        control.script(MEETING, [{"status": 418}])
    with pytest.raises(httpx.HTTPStatusError) as bad_fault:
        control.set_faults(throttle_probability=2)
    with pytest.raises(httpx.HTTPStatusError) as bad_mode:
        control.set_conflict("ignore")

    for error in (bad_step, bad_fault, bad_mode):
        assert error.value.response.status_code == 400


def test_seeding_100000_meetings_in_one_call(sim):
    meetings = [{"organizer_id": ORGANIZER, "meeting_id": f"m-{i}"} for i in range(100_000)]

    assert sim.state.add_meetings(meetings) == 100_000
    assert sim.state.stats()["meetings"] == 100_000


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
