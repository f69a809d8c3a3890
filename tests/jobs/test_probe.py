"""jobs/probe.py: one GET of one row's registration tells live, gone, refused to app-only
tokens, or unknown. The real Graph client and MSAL against the simulator over HTTPS."""

from __future__ import annotations

import logging

import pytest
from pipeline_helpers import ORGANIZER, UPN

from jobs.probe import Mode, probe_meeting, probe_meeting_api, refuse_retired
from worker.errors import ApiRetired
from worker.settings import load_settings
from worker.simulator import SimulatorServer
from worker.validation import InvalidRow, RegistrationRequest, SourceRow, ValidRow


def valid(line: int, user_id: str, meeting_id: str | None = None, join: str | None = None):
    request = RegistrationRequest(user_id=user_id, meeting_id=meeting_id, join_web_url=join)
    return ValidRow(line=line, request=request)


def registration_gets(sim: SimulatorServer) -> list[tuple[str, int]]:
    return [(path, status) for m, path, status in sim.state.requests if "registration" in path]


@pytest.mark.parametrize(
    ("mode", "found"),
    [("live", Mode.LIVE), ("gone", Mode.GONE), ("app-only-refused", Mode.APP_ONLY_REFUSED)],
)
def test_one_get_tells_the_mode(sim: SimulatorServer, mode: str, found: Mode) -> None:
    sim.state.add_meeting(ORGANIZER, "m-1")
    sim.state.set_registration_api(mode)  # type: ignore[arg-type]

    probe = probe_meeting_api(load_settings(), [valid(2, ORGANIZER, "m-1")])

    assert probe.mode is found
    assert probe.refused == (found is not Mode.LIVE)
    assert ("2024-12-12" in probe.detail) == probe.refused
    assert [method for method, path, _ in sim.state.requests if "registration" in path] == ["GET"]


def test_the_first_row_naming_an_object_id_and_a_meeting_is_the_sample(
    sim: SimulatorServer,
) -> None:
    seeded = sim.state.add_meeting(ORGANIZER, "m-2")
    rows: list[SourceRow] = [
        InvalidRow(line=2, user_id="x", meeting_id="", allowed_registrant="", error="bad"),
        valid(3, UPN, join=seeded["joinWebUrl"]),
        valid(4, ORGANIZER, "m-2"),
    ]
    assert probe_meeting_api(load_settings(), rows).mode is Mode.LIVE
    graph = [path for _, path, _ in sim.state.requests if path.startswith("/beta")]
    assert graph == [f"/beta/users/{ORGANIZER}/onlineMeetings/m-2/registration"]  # no look-up


def test_a_upn_and_a_join_link_are_resolved_when_no_row_names_ids(sim: SimulatorServer) -> None:
    seeded = sim.state.add_meeting(ORGANIZER, "m-3")
    sim.state.set_registration_api("gone")
    probe = probe_meeting_api(load_settings(), [valid(2, UPN, join=seeded["joinWebUrl"])])
    assert probe.mode is Mode.GONE
    assert registration_gets(sim) == [
        (f"/beta/users/{ORGANIZER}/onlineMeetings/m-3/registration", 400)
    ]


def test_an_ordinary_refusal_or_a_transient_failure_is_unknown(sim: SimulatorServer) -> None:
    sim.state.add_user(ORGANIZER, access_policy=False)
    sim.state.add_meeting(ORGANIZER, "m-4")
    assert probe_meeting(load_settings(), valid(2, ORGANIZER, "m-4").request).mode is Mode.UNKNOWN
    sim.state.add_user(ORGANIZER)
    sim.state.add_meeting(ORGANIZER, "m-4")
    sim.state.script("m-4", [{"status": 503}] * 10)
    probe = probe_meeting(load_settings(request_timeout_s=1), valid(2, ORGANIZER, "m-4").request)
    assert probe.mode is Mode.UNKNOWN and "503" in probe.detail


def test_without_credentials_it_is_unknown_and_the_command_goes_on(
    sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("AZURE_CLIENT_SECRET")
    with caplog.at_level(logging.WARNING, logger="jobs.probe"):
        refuse_retired(load_settings(), [valid(2, ORGANIZER, "m-5")])  # no raise
    assert "not checked" in caplog.text and "AZURE_CLIENT_SECRET" in caplog.text
    assert not [path for _, path, _ in sim.state.requests if path.startswith("/beta")]


def test_a_retired_api_is_refused_in_one_line(sim: SimulatorServer) -> None:
    sim.state.add_meeting(ORGANIZER, "m-6")
    sim.state.set_registration_api("gone")
    with pytest.raises(ApiRetired, match="2024-12-12") as refused:
        refuse_retired(load_settings(), [valid(2, ORGANIZER, "m-6")])
    assert "\n" not in str(refused.value)
    assert "Teams webinars" in str(refused.value)


def test_no_valid_row_is_unknown(sim: SimulatorServer) -> None:
    bad = InvalidRow(line=2, user_id="x", meeting_id="", allowed_registrant="", error="bad")
    assert probe_meeting_api(load_settings(), [bad]).mode is Mode.UNKNOWN
    assert not [path for _, path, _ in sim.state.requests if path.startswith("/beta")]
