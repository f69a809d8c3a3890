"""The meeting registration API retired (worker.simulator, registration_api): gone, every
registration call answers as for a segment Graph does not know, inside $batch too; refused
to app-only tokens, 403 while the signed-in organizer's /me calls still work."""

from __future__ import annotations

import httpx
import pytest
from sim_helpers import EXTERNAL, MEETING, ORGANIZER, error_of

from worker import keys
from worker.simulator import SimulatorConfig, SimulatorControl, SimulatorServer, SimulatorState
from worker.simulator.sign_in import DEVICE_CODE_GRANT

SEGMENT = "Resource not found for the segment 'registration'."


def delegated_bearer(sim: SimulatorServer, http: httpx.Client) -> dict[str, str]:
    """A token for ORGANIZER through the device-code flow (pending once, then signed in)."""
    sim.state.sign_in_as(ORGANIZER, "ada@contoso.example")
    scope = "https://graph.microsoft.com/OnlineMeetings.ReadWrite offline_access"
    flow = http.post(
        f"/{sim.tenant_id}/oauth2/v2.0/devicecode",
        data={"client_id": sim.client_id, "scope": scope},
    ).json()
    form = {
        "grant_type": DEVICE_CODE_GRANT,
        "client_id": sim.client_id,
        "device_code": flow["device_code"],
    }
    token_url = f"/{sim.tenant_id}/oauth2/v2.0/token"
    assert http.post(token_url, data=form).json()["error"] == "authorization_pending"
    answer = http.post(token_url, data=form)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_gone_answers_every_registration_call_as_an_unknown_segment(sim, graph, meeting):
    meeting()
    sim.state.set_registration_api("gone")

    answers = [graph.post_registration(), graph.get_registration(), graph.delete_registration()]

    for response in answers:
        assert response.status_code == 400
        assert error_of(response)["code"] == "BadRequest"
        assert error_of(response)["message"] == SEGMENT
    assert sim.state.creations == {}
    # The meeting itself is still there: only its registration is gone.
    assert graph.request("GET", keys.online_meeting_path(ORGANIZER, MEETING)).status_code == 200


def test_gone_answers_so_inside_a_batch_too(sim, graph, meeting):
    meeting()
    sim.state.set_registration_api("gone")
    path = keys.registration_path(ORGANIZER, MEETING)
    requests = [
        {"id": "1", "method": "POST", "url": path, "body": EXTERNAL}
        | {"headers": {"Content-Type": "application/json"}},
        {"id": "2", "method": "GET", "url": path},
    ]

    response = graph.request("POST", "/$batch", json={"requests": requests})

    assert response.status_code == 200
    for item in response.json()["responses"]:
        assert item["status"] == 400
        assert item["body"]["error"]["message"] == SEGMENT
    assert sim.state.registration(MEETING) is None


def test_app_only_refused_is_403_for_application_tokens_only(sim, graph, http, meeting):
    meeting()
    sim.state.set_registration_api("app-only-refused")

    refused = graph.post_registration()
    bearer = delegated_bearer(sim, http)
    me = "/beta" + keys.registration_path("", MEETING, me=True)
    created = http.post(me, json=EXTERNAL, headers=bearer)

    assert refused.status_code == 403
    assert error_of(refused)["code"] == "Forbidden"
    assert "Application permission is not supported" in error_of(refused)["message"]
    assert created.status_code == 201
    assert http.get(me, headers=bearer).status_code == 200


def test_the_control_api_switches_the_mode_and_reset_restores_live(sim, graph, meeting):
    meeting()
    with SimulatorControl(sim.https_url, sim.ca_path) as control:
        control.set_registration_api("gone")
        assert graph.get_registration().status_code == 400
        control.set_registration_api("live")
        assert graph.get_registration().status_code == 404  # no registration yet: alive
        control.set_registration_api("gone")
        with pytest.raises(httpx.HTTPStatusError, match="400 Bad Request"):
            control.set_registration_api("retired")
        assert sim.state.registration_api == "gone"  # a bad mode changes nothing
        control.reset()
    assert sim.state.registration_api == "live"


def test_the_mode_can_be_configured_from_the_start() -> None:
    assert SimulatorState(SimulatorConfig(registration_api="gone")).registration_api == "gone"
