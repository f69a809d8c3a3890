"""worker.simulator control API through its client, SimulatorControl, over HTTP."""

from __future__ import annotations

import httpx
import pytest
from sim_helpers import MEETING, ORGANIZER, OTHER_USER

from worker.simulator import SimulatorControl


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
