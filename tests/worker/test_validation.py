"""worker.validation: every rule about a registration request's fields, as tables."""

from __future__ import annotations

import pytest

from worker.validation import (
    MAX_ID_LENGTH,
    MAX_JOIN_URL_LENGTH,
    MAX_REPORTED_CHARS,
    MAX_USER_ID_LENGTH,
    AllowedRegistrant,
    InvalidRow,
    RegistrationRequest,
    ValidRow,
    canonical_field,
    check_id,
    check_join_web_url,
    check_user_id,
    is_guid,
    is_path_step,
    validate,
)

GUID = "0f3a9c2e-5b7d-4e1f-9a8b-6c5d4e3f2a1b"
MEETING = "MSo1N2Y5ZGFjYy03MWJmLTQ3NDMtYjQxMy01M2EdFGkdRWHJlQ"
JOIN_URL = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_abc%40thread.v2/0"
PATH_STEP = "which a URL reads as a path step, never an id"

# --- the rules, one field at a time ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (GUID, True),
        (GUID.upper(), True),
        (f"{{{GUID}}}", False),
        (GUID[:-1], False),
        (f"{GUID}0", False),
        (GUID.replace("-", ""), False),
        ("0g3a9c2e-5b7d-4e1f-9a8b-6c5d4e3f2a1b", False),
        ("", False),
    ],
)
def test_is_guid(value: str, expected: bool) -> None:
    assert is_guid(value) is expected


@pytest.mark.parametrize(("value", "expected"), [(".", True), ("..", True), ("...", False)])
def test_is_path_step(value: str, expected: bool) -> None:
    assert is_path_step(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (GUID.upper(), GUID),
        ("Alice@Contoso.COM", "alice@contoso.com"),
        ("björn@contoso.com", "björn@contoso.com"),
        ("a" * 64 + "@" + "b" * 251 + ".com", "a" * 64 + "@" + "b" * 251 + ".com"),
    ],
    ids=["guid", "upn", "non-ascii-upn", "upn-of-320"],
)
def test_user_id_accepted(value: str, expected: str) -> None:
    assert len(value) <= MAX_USER_ID_LENGTH
    assert check_user_id(value) == expected


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("", "user_id is empty"),
        ("..", f"user_id is '..', {PATH_STEP}"),
        ("not-a-user", "user_id is neither a GUID nor a UPN"),
        ("alice@contoso", "user_id is neither a GUID nor a UPN"),
        ("a@b@contoso.com", "user_id is neither a GUID nor a UPN"),
        (f"{{{GUID}}}", "user_id is neither a GUID nor a UPN"),
        ("alice smith@contoso.com", "user_id contains whitespace or a control character"),
        ("alice\x00@contoso.com", "user_id contains whitespace or a control character"),
        ("a" * 65 + "@" + "b" * 251 + ".com", "user_id is longer than 320 characters"),
    ],
)
def test_user_id_refused(value: str, error: str) -> None:
    with pytest.raises(ValueError) as refused:
        check_user_id(value)
    assert str(refused.value) == error


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (MEETING, None),
        ("...", None),
        ("Ça-va", None),
        ("x" * MAX_ID_LENGTH, None),
        ("", "meeting_id is empty"),
        (".", f"meeting_id is '.', {PATH_STEP}"),
        ("..", f"meeting_id is '..', {PATH_STEP}"),
        ("x" * (MAX_ID_LENGTH + 1), "meeting_id is longer than 2048 characters"),
        ("m 1", "meeting_id contains whitespace or a control character"),
        ("m\t1", "meeting_id contains whitespace or a control character"),
        ("m\x851", "meeting_id contains whitespace or a control character"),
        ("m\u20001", "meeting_id contains whitespace or a control character"),
    ],
)
def test_id_rule(value: str, error: str | None) -> None:
    if error is None:
        assert check_id(value, "meeting_id") == value
    else:
        with pytest.raises(ValueError) as refused:
            check_id(value, "meeting_id")
        assert str(refused.value) == error


LONGEST_URL = "https://" + "x" * (MAX_JOIN_URL_LENGTH - len("https://"))


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (JOIN_URL, None),
        ("HTTPS://teams.example/x", None),
        (LONGEST_URL, None),
        ("http://teams.example/x", "join_web_url is not an https:// link"),
        ("teams.example/x", "join_web_url is not an https:// link"),
        (LONGEST_URL + "x", "join_web_url is longer than 4096 characters"),
        ("https://teams.example/a b", "join_web_url contains whitespace or a control character"),
    ],
)
def test_join_web_url_rule(value: str, error: str | None) -> None:
    if error is None:
        assert check_join_web_url(value) == value
    else:
        with pytest.raises(ValueError) as refused:
            check_join_web_url(value)
        assert str(refused.value) == error


# --- validate: a row, judged whole ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"user_id": GUID, "meeting_id": "m1"}, None),
        ({"user_id": GUID, "join_web_url": JOIN_URL}, None),
        ({"user_id": GUID, "meeting_id": "m1", "allowed_registrant": "Organization"}, None),
        ({"user_id": GUID}, "meeting_id (or join_web_url) is required"),
        ({"user_id": GUID, "meeting_id": "  "}, "meeting_id (or join_web_url) is required"),
        ({"meeting_id": "m1"}, "user_id is empty"),
        (
            {"user_id": GUID, "meeting_id": "m1", "allowed_registrant": "anyone"},
            "allowed_registrant must be everyone or organization",
        ),
        (
            {"user_id": GUID, "meeting_id": "m1", "allowed_registrant": "unknownFutureValue"},
            "allowed_registrant must be everyone or organization",
        ),
        (
            {"user_id": "nobody", "meeting_id": "bad id"},
            "user_id is neither a GUID nor a UPN;"
            " meeting_id contains whitespace or a control character",
        ),
        ({"user_id": GUID, "meeting_id": ["m1"]}, "meeting_id must be a string"),
        (
            {"user_id": 1, "meeting_id": 2},
            "user_id must be a string; meeting_id must be a string",
        ),
    ],
)
def test_validate(fields: dict[str, object], error: str | None) -> None:
    row = validate(fields, 5)
    if error is None:
        assert isinstance(row, ValidRow)
        assert row.line == 5
    else:
        assert isinstance(row, InvalidRow)
        assert (row.line, row.error) == (5, error)


@pytest.mark.parametrize(
    "user_id",
    [
        "a" * 64 + "@" + "b" * 251 + ".com",  # the longest UPN: the fast check's bound
        "a" * 65 + "@" + "b" * 251 + ".com",  # one more: the model's bound says why
    ],
)
def test_the_user_id_limit_is_one_limit_for_both_checks(user_id: str) -> None:
    row = validate({"user_id": user_id, "meeting_id": "m1"}, 1)
    if len(user_id) <= MAX_USER_ID_LENGTH:
        assert isinstance(row, ValidRow)
    else:
        assert isinstance(row, InvalidRow)
        assert row.error == f"user_id is longer than {MAX_USER_ID_LENGTH} characters"


def test_an_invalid_row_keeps_its_values_cut_for_the_report() -> None:
    fields = {"user_id": "x" * 2000, "join_web_url": "y" * 2000, "allowed_registrant": "z" * 600}
    row = validate(fields, 3)
    assert isinstance(row, InvalidRow)
    cut = MAX_REPORTED_CHARS
    assert (row.user_id, row.meeting_id) == ("x" * cut, "y" * cut)
    assert row.allowed_registrant == "z" * cut


# --- validate: the fast check builds what the model builds ------------------------------

SAME_AS_MODEL = [
    {"user_id": GUID.upper(), "meeting_id": MEETING},
    {"user_id": " Alice@Contoso.com ", "meeting_id": " m1 ", "allowed_registrant": "ORGANIZATION"},
    {"user_id": "bob@contoso.com", "join_web_url": JOIN_URL, "allowed_registrant": ""},
    {"user_id": "bob@contoso.com", "join_web_url": "HTTPS://teams.example/x", "meeting_id": None},
    {"user_id": "björn@contoso.com", "meeting_id": "m1", "allowed_registrant": "everyone"},
    {"user_id": GUID, "meeting_id": "m1", "join_web_url": JOIN_URL},
    {"user_id": GUID, "meeting_id": "Ça-va", "allowed_registrant": None},
]


@pytest.mark.parametrize("fields", SAME_AS_MODEL)
@pytest.mark.parametrize("default", [None, AllowedRegistrant.ORGANIZATION])
def test_validate_builds_what_the_model_builds(
    fields: dict[str, str | None], default: AllowedRegistrant | None
) -> None:
    row = validate(fields, 7, default_registrant=default)
    registrant = (fields.get("allowed_registrant") or "").strip() or default
    expected = RegistrationRequest.model_validate({
        "user_id": fields["user_id"],
        "meeting_id": fields.get("meeting_id"),
        "join_web_url": fields.get("join_web_url"),
        "allowed_registrant": registrant,
    })  # fmt: skip
    assert isinstance(row, ValidRow)
    assert row.line == 7
    assert row.request == expected
    assert row.request.model_dump() == expected.model_dump()
    assert row.request.model_fields_set == expected.model_fields_set
    assert hash(row.request) == hash(expected)
    assert type(row.request.allowed_registrant) is AllowedRegistrant


@pytest.mark.parametrize("meeting_id", [".", "..", " .. "])
def test_a_dot_segment_meeting_id_is_invalid_however_the_row_comes(meeting_id: str) -> None:
    # validate is what every source goes through; the model refuses the same on its own.
    row = validate({"user_id": GUID, "meeting_id": meeting_id}, 4)
    assert isinstance(row, InvalidRow)
    assert (
        row.error
        == f"meeting_id is {meeting_id.strip()!r}, which a URL reads as a path step, never an id"
    )
    with pytest.raises(ValueError, match="path step"):
        RegistrationRequest(user_id=GUID, meeting_id=meeting_id)
    assert isinstance(validate({"user_id": GUID, "meeting_id": "..."}, 4), ValidRow)


def test_validate_reports_values_that_are_not_strings() -> None:
    row = validate({"user_id": GUID, "meeting_id": 12345}, 3)
    assert row == InvalidRow(3, GUID, "12345", "", "meeting_id must be a string")


def test_validate_treats_absent_and_none_as_empty() -> None:
    row = validate({"meeting_id": "m1", "allowed_registrant": None}, 2)
    assert row == InvalidRow(2, "", "m1", "", "user_id is empty")


# --- field names, as CSV headers and JSON keys spell them -----------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("user_id", "user_id"),
        ("userId", "user_id"),
        ("USERID", "user_id"),
        ("  User ID ", "user_id"),
        ("organizer_id", "user_id"),
        ("OrganizerId", "user_id"),
        ("meeting_id", "meeting_id"),
        ("meetingId", "meeting_id"),
        ("Meeting-ID", "meeting_id"),
        ("join_web_url", "join_web_url"),
        ("joinWebUrl", "join_web_url"),
        ("JOIN_WEB_URL", "join_web_url"),
        ("allowed_registrant", "allowed_registrant"),
        ("allowedRegistrant", "allowed_registrant"),
        ("subject", None),
        ("organizer", None),
        ("", None),
    ],
)
def test_canonical_field(cell: str, expected: str | None) -> None:
    assert canonical_field(cell) == expected
