"""worker.registrants: what makes a webinar registrant's row valid, in the words a user reads."""

from __future__ import annotations

from worker.registrants import (
    Defaults,
    RegistrantRequest,
    canonical_field,
    question_id,
    validate_registrant,
)
from worker.validation import InvalidRow, ValidRow

WEBINAR = "8d62b9a1-1c2d-4e5f-8a9b-0c1d2e3f4a5b@6e5d4c3b-2a19-4807-9f6e-5d4c3b2a1908"


def fields(**overrides: str | None) -> dict[str, object]:
    base: dict[str, object] = {
        "webinar_id": WEBINAR,
        "email": "Ann.Lee@Contoso.example",
        "first_name": "Ann",
        "last_name": "Lee",
    }
    base.update(overrides)
    return base


def test_a_complete_row_takes_the_defaults_it_does_not_give() -> None:
    row = validate_registrant(
        fields(), {"q1": "yes"}, 2, Defaults("W. Europe Standard Time", "de-de")
    )
    assert isinstance(row, ValidRow)
    assert row.request == RegistrantRequest(
        webinar_id=WEBINAR,
        email="Ann.Lee@Contoso.example",
        first_name="Ann",
        last_name="Lee",
        preferred_timezone="W. Europe Standard Time",
        preferred_language="de-de",
        answers=(("q1", "yes"),),
    )


def test_two_rows_differing_only_in_the_emails_case_are_one_registration() -> None:
    one = validate_registrant(fields(), {}, 2)
    two = validate_registrant(fields(email="ann.lee@contoso.EXAMPLE"), {}, 3)
    assert isinstance(one, ValidRow) and isinstance(two, ValidRow)
    assert isinstance(one.request, RegistrantRequest) and isinstance(two.request, RegistrantRequest)
    assert one.request.dedup_key == two.request.dedup_key


def test_a_wrong_row_says_every_problem_and_keeps_webinar_and_email() -> None:
    row = validate_registrant(
        fields(email="not-an-address", first_name="", preferred_language="english!"), {}, 7
    )
    assert isinstance(row, InvalidRow)
    assert row.line == 7 and row.webinar_id == WEBINAR and row.email == "not-an-address"
    assert row.error == (
        "first_name is required; email is not an email address; "
        "preferred_language is not a language tag such as en-us"
    )


def test_a_webinar_id_a_path_cannot_carry_is_refused() -> None:
    row = validate_registrant(fields(webinar_id=".."), {}, 2)
    assert isinstance(row, InvalidRow)
    assert "webinar_id is '..'" in row.error


def test_json_answers_are_spelled_as_a_csv_cell_would_be() -> None:
    row = validate_registrant(fields(), {"b": True, "m": ["red", "blue"], "n": None}, 2)
    assert isinstance(row, ValidRow) and isinstance(row.request, RegistrantRequest)
    assert row.request.answers == (("b", "true"), ("m", "red|blue"))
    bad = validate_registrant(fields(), {"x": 3}, 2)
    assert isinstance(bad, InvalidRow)
    assert bad.error == "the answer to question x must be text"


def test_column_names_in_any_spelling_and_question_columns() -> None:
    assert canonical_field("webinarId") == "webinar_id"
    assert canonical_field("First Name") == "first_name"
    assert canonical_field("preferred-timezone") == "preferred_timezone"
    assert canonical_field("user_id") is None
    assert question_id("Question: 9f1a-Job") == "9f1a-Job"  # the id keeps its case
    assert question_id("question:") is None
    assert question_id("email") is None
