"""The JSON intake's reading: the CSV's fields, every bad item named, all or nothing."""

from __future__ import annotations

import json

import pytest

from jobs.sources.intake import RejectedItems, operation_of, read_requests
from worker.errors import InputError
from worker.models import Operation
from worker.registrants import Defaults, RegistrantRequest

USER = "6e5d8c9a-0a4b-4c7e-9d7e-2b1f0a9c3d11"


def test_one_object_is_one_request() -> None:
    (row,) = read_requests(json.dumps({"user_id": USER, "meeting_id": "m-1"}).encode())
    assert (row.line, row.request.user_id, row.request.meeting_id) == (1, USER, "m-1")
    assert str(row.request.allowed_registrant) == "everyone"


def test_an_array_takes_camel_case_and_join_links() -> None:
    items = [
        {"userId": USER, "meetingId": "m-1", "allowedRegistrant": "organization"},
        {"organizer_id": "Ada@Contoso.example", "joinWebUrl": "https://teams.microsoft.com/l/x"},
    ]
    first, second = read_requests(json.dumps(items).encode())
    assert str(first.request.allowed_registrant) == "organization"
    assert second.line == 2
    assert second.request.user_id == "ada@contoso.example"
    assert second.request.join_web_url == "https://teams.microsoft.com/l/x"


def test_every_bad_item_is_named_by_its_position() -> None:
    items = [
        {"user_id": USER, "meeting_id": "m-1"},
        {"user_id": "not a user", "meeting_id": "m-2"},
        "a string",
        {"user_id": USER},
        {"user_id": USER, "meeting_id": 7},
    ]
    with pytest.raises(RejectedItems) as caught:
        read_requests(json.dumps(items).encode())
    errors = {error.index: error.error for error in caught.value.errors}
    assert sorted(errors) == [1, 2, 3, 4]
    assert "user_id" in errors[1]
    assert errors[2] == "not a JSON object"
    assert "meeting_id" in errors[3]
    assert "must be a string" in errors[4]


def test_an_item_naming_a_dot_segment_meeting_is_refused_with_the_reason() -> None:
    items = [{"user_id": USER, "meeting_id": "m-1"}, {"user_id": USER, "meetingId": ".."}]
    with pytest.raises(RejectedItems) as caught:
        read_requests(json.dumps(items).encode())
    (error,) = caught.value.errors
    assert error.index == 1
    assert error.error == "meeting_id is '..', which a URL reads as a path step, never an id"


@pytest.mark.parametrize("raw", [b"", b"nope", b"[]", b"\xff"])
def test_a_body_that_holds_no_requests_is_refused(raw: bytes) -> None:
    with pytest.raises(InputError):
        read_requests(raw)


def test_registrant_items_take_the_defaults_they_leave_out_and_make_a_register_batch() -> None:
    item = {
        "webinarId": "w-1@w-2",
        "Email": "ann@contoso.example",
        "firstName": "Ann",
        "lastName": "Lee",
        "answers": {"q-1": ["a", "b"], "q-2": True},
    }
    rows = read_requests(json.dumps([item]).encode(), Defaults("Tokyo Standard Time", "ja-jp"))
    request = rows[0].request
    assert isinstance(request, RegistrantRequest)
    assert (request.webinar_id, request.email) == ("w-1@w-2", "ann@contoso.example")
    assert (request.preferred_timezone, request.preferred_language) == (
        "Tokyo Standard Time",
        "ja-jp",
    )
    assert request.answers == (("q-1", "a|b"), ("q-2", "true"))
    assert operation_of(rows) is Operation.REGISTER
