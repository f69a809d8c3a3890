"""The meeting-registration target's words and kinds (its calls run in tests/pipeline)."""

from __future__ import annotations

import pytest

from worker.errors import GraphPermanent
from worker.graph.client import Registration
from worker.models import RowRecord, RowState
from worker.protocol.target import Target
from worker.protocol.targets.meeting_registration import (
    MeetingRegistration,
    RegistrationApi,
    Retirement,
    retired_how,
)


def registration(kind: str, reg_id: str = "reg-1") -> Registration:
    return Registration(id=reg_id, kind=kind, allowed_registrant=None, request_id=None, status=200)


def row(registration_id: str = "") -> RowRecord:
    return RowRecord(
        seq=1,
        line=2,
        user_id="5e7c1d2a-3b4f-4a6e-9c8d-7f6e5d4c3b2a",
        meeting_id="meeting-1",
        allowed_registrant="everyone",
        status=RowState.QUEUED,
        registration_id=registration_id,
    )


def target() -> Target:
    # No call is made: the API is never reached by what these tests ask.
    api: RegistrationApi = None  # type: ignore[assignment]
    return MeetingRegistration(api)


def test_an_external_registration_or_an_untyped_one_is_ours() -> None:
    assert target().is_ours(registration("externalMeetingRegistration"), row())
    assert target().is_ours(registration(""), row())
    assert not target().is_ours(registration("meetingRegistration"), row())


def test_a_microsoft_hosted_registration_is_named_as_the_mismatch() -> None:
    assert target().mismatch(registration("externalMeetingRegistration")) == ""
    assert (
        target().mismatch(registration("meetingRegistration"))
        == "the meeting has a meetingRegistration, not an external registration"
    )


def test_an_undo_says_which_registration_it_leaves_alone() -> None:
    assert (
        target().replaced(registration("", "reg-2"), row("reg-1"))
        == "the meeting now has registration reg-2, not reg-1: left alone"
    )
    assert target().replaced(registration("", "reg-1"), row("reg-1")) == ""


def test_a_row_naming_its_organizer_and_meeting_is_placed_without_graph() -> None:
    assert target().place(row()) == (
        "5e7c1d2a-3b4f-4a6e-9c8d-7f6e5d4c3b2a",
        "meeting-1",
        "meeting-1",
    )
    upn_row = row()
    upn_row.user_id = "ann@contoso.example"
    assert target().place(upn_row) is None  # the UPN is resolved first, by a Graph call


def test_a_refused_post_is_confirmed_after_400_and_409_only() -> None:
    assert target().confirm_statuses == (400, 409)


SEGMENT = "Resource not found for the segment 'registration'."
NO_POLICY = "No Application Access Policy found for this app"
APP_ONLY = "Application permission is not supported for this API."


@pytest.mark.parametrize(
    ("status", "code", "message", "how"),
    [
        (400, "BadRequest", SEGMENT, Retirement.GONE),
        (400, "badRequest", "resource not found for the segment 'Registration'", Retirement.GONE),
        (410, None, "Gone", Retirement.GONE),
        (403, "Forbidden", APP_ONLY, Retirement.APP_ONLY_REFUSED),
        (403, "Forbidden", "App-only tokens are not supported here", Retirement.APP_ONLY_REFUSED),
        # A row's own refusals: they stay the row's failure.
        (403, "Forbidden", NO_POLICY, None),
        (400, "BadRequest", "Requested value 'x' was not found for allowedRegistrant.", None),
        (400, "BadRequest", "Resource not found for the segment 'onlineMeetings'.", None),
        (404, "NotFound", SEGMENT, None),  # the segment's words, but not Graph's answer
        (400, "InvalidRequest", SEGMENT, None),
        (403, "Forbidden", "Application permission is required", None),
        (409, "Conflict", "An online meeting can only have one registration enabled.", None),
    ],
)
def test_retirement_is_told_from_a_rows_own_refusal(
    status: int, code: str | None, message: str, how: Retirement | None
) -> None:
    error = GraphPermanent(message, status=status, code=code)
    assert retired_how(error) is how
    reason = target().retirement(error)
    if how is None:
        assert reason is None
        return
    assert reason is not None and "\n" not in reason
    assert "2024-12-12" in reason
    assert message.rstrip(".") in reason  # Graph's own words, for support
    assert "register people for Teams webinars instead: meetreg run FILE with " in reason
    assert "webinar_id,email,first_name,last_name columns (docs/webinars.md)" in reason
    if how is Retirement.APP_ONLY_REFUSED:
        assert "app-only tokens" in reason
