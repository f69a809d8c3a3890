"""The simulator's delegated sign-in over HTTPS: the device-code flow, refresh tokens, the
account claims MSAL records, and Graph's `/me` acting for the signed-in user."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from sim_helpers import (
    EXTERNAL,
    MEETING,
    ORGANIZER,
    SCOPE,
    error_of,
    login_url,
    poll,
    signed_in,
    start,
)

from worker import keys


def claims(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_a_device_code_is_pending_once_then_signs_in_the_configured_user(sim, http):
    sim.state.sign_in_as(ORGANIZER, "ada@contoso.example")
    flow = start(sim, http)
    assert flow["interval"] == 1
    assert flow["user_code"] in flow["message"] and flow["verification_uri"] in flow["message"]

    pending = poll(sim, http, flow["device_code"])
    done = poll(sim, http, flow["device_code"])
    again = poll(sim, http, flow["device_code"])

    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
    assert done.status_code == 200
    tokens = done.json()
    assert {"access_token", "refresh_token", "id_token", "client_info"} <= tokens.keys()
    assert tokens["scope"] == "https://graph.microsoft.com/OnlineMeetings.ReadWrite"
    id_token = claims(tokens["id_token"].split(".")[1])
    assert id_token["oid"] == ORGANIZER and id_token["preferred_username"] == "ada@contoso.example"
    assert id_token["aud"] == sim.client_id and id_token["tid"] == sim.tenant_id
    assert claims(tokens["client_info"]) == {"uid": ORGANIZER, "utid": sim.tenant_id}
    assert again.json()["error"] == "invalid_grant"  # a device code is redeemed once
    assert sim.state.stats()["device_code_grants"] == 1


def test_a_refresh_token_gives_new_tokens_until_it_is_revoked(sim, http):
    first = signed_in(sim, http)
    form = {
        "grant_type": "refresh_token",
        "client_id": sim.client_id,
        "refresh_token": first["refresh_token"],
        "scope": SCOPE,
    }

    refreshed = http.post(login_url(sim, "token"), data=form)
    assert refreshed.status_code == 200
    assert refreshed.json()["access_token"] != first["access_token"]
    assert sim.state.revoke_refresh_tokens() == 2
    refused = http.post(login_url(sim, "token"), data=form)

    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    assert "AADSTS700082" in refused.json()["error_description"]
    assert sim.state.stats()["refresh_grants"] == 1


def test_a_device_code_for_another_app_is_refused(sim, http):
    response = http.post(
        login_url(sim, "devicecode"), data={"client_id": "someone-else", "scope": SCOPE}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_me_registers_on_the_signed_in_users_meeting_and_only_theirs(sim, http):
    sim.state.sign_in_as(ORGANIZER, "ada@contoso.example")
    sim.state.add_meeting(ORGANIZER, MEETING)
    sim.state.add_meeting("9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "someone-elses")
    bearer = {"Authorization": f"Bearer {signed_in(sim, http)['access_token']}"}
    me = "/beta" + keys.registration_path("", MEETING, me=True)

    assert http.get(me, headers=bearer).status_code == 404  # no registration yet
    created = http.post(me, json=EXTERNAL, headers=bearer)
    theirs = "/beta" + keys.registration_path("", "someone-elses", me=True)
    other = http.post(theirs, json=EXTERNAL, headers=bearer)

    assert created.status_code == 201
    assert sim.state.registration(MEETING)["id"] == created.json()["id"]
    assert other.status_code == 404  # not the signed-in user's meeting
    assert sim.state.registration("someone-elses") is None


def test_me_with_an_application_token_is_a_bad_request_as_at_graph(sim, graph):
    sim.state.add_meeting(ORGANIZER, MEETING)
    response = graph.request("POST", keys.registration_path("", MEETING, me=True), json=EXTERNAL)
    assert response.status_code == 400
    assert "delegated authentication flow" in error_of(response)["message"]


@pytest.mark.parametrize("path", ["/me/onlineMeetings/m/attendanceReports", "/me/events"])
def test_other_paths_under_me_are_unknown(sim, graph, path):
    response = graph.request("GET", path)
    assert response.status_code == 400
    assert error_of(response)["message"].startswith("Resource not found for the segment")
