"""The meeting-registration target's words and kinds (its calls run in tests/pipeline)."""

from __future__ import annotations

from worker.graph.client import Registration
from worker.models import RowRecord, RowState
from worker.protocol.target import Target
from worker.protocol.targets.meeting_registration import MeetingRegistration, RegistrationApi


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
