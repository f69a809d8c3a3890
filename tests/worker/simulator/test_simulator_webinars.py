"""worker.simulator.webinars: Graph's rules for Teams webinars and their registrations, as
plain data (no HTTP)."""

from __future__ import annotations

from typing import Any

import pytest
from sim_helpers import ORGANIZER, OTHER_USER

from worker.simulator.errors import GraphFailure
from worker.simulator.webinars import NOT_ALLOWED_FILTER, Webinars, new_webinar_id

WEBINAR = "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d@7d3f1e2a-5b6c-4d8e-9f01-23456789abcd"
PERSON = {
    "firstName": "Grace",
    "lastName": "Hopper",
    "email": "grace@fabrikam.example",
    "preferredTimezone": "Pacific Standard Time",
    "preferredLanguage": "en-us",
}


def world(conflict: Any = "409", filter_allowed: bool = True, **webinar: Any) -> Webinars:
    webinars = Webinars("tenant", conflict, filter_allowed)
    webinars.add(WEBINAR, ORGANIZER, **webinar)
    return webinars


def person(**changes: Any) -> dict[str, Any]:
    return {**PERSON, **changes}


def refused(call: Any, *args: Any) -> GraphFailure:
    with pytest.raises(GraphFailure) as raised:
        call(*args)
    return raised.value


def test_an_application_registers_a_person_with_everything_kept():
    webinars = world()
    external = {"referrer": "crm", "registrationId": "row-17"}

    made, new = webinars.register(WEBINAR, person(externalRegistrationInformation=external), None)

    shown = webinars.registration(WEBINAR, made.registration_id).to_graph()
    assert new
    assert shown["status"] == "registered"
    assert shown["userId"] is None
    assert shown["email"] == PERSON["email"]
    assert shown["preferredTimezone"] == "Pacific Standard Time"
    assert shown["externalRegistrationInformation"] == external
    assert shown["cancelationDateTime"] is None
    assert webinars.stats()["webinar_registrations_created"] == 1


def test_a_delegated_registration_carries_the_signed_in_user():
    made, _ = world().register(WEBINAR, person(), OTHER_USER)
    assert made.to_graph()["userId"] == OTHER_USER


@pytest.mark.parametrize("field", ["firstName", "lastName", "email", "preferredTimezone"])
def test_each_required_field_missing_is_a_bad_request_naming_it(field):
    body = person()
    del body[field]
    failure = refused(world().register, WEBINAR, body, None)
    assert (failure.status, failure.code) == (400, "BadRequest")
    assert f"'{field}'" in failure.message


def test_preferred_language_empty_is_missing_too():
    failure = refused(world().register, WEBINAR, person(preferredLanguage=""), None)
    assert "'preferredLanguage'" in failure.message


@pytest.mark.parametrize("status", ["draft", "canceled"])
def test_a_webinar_not_published_takes_no_registration(status):
    failure = refused(world(status=status).register, WEBINAR, person(), None)
    assert failure.status == 400
    assert status in failure.message


def test_an_organization_only_webinar_refuses_an_application_but_not_a_person():
    webinars = world(audience="organization")
    failure = refused(webinars.register, WEBINAR, person(), None)
    made, _ = webinars.register(WEBINAR, person(), OTHER_USER)
    assert (failure.status, failure.code) == (403, "Forbidden")
    assert made.status == "registered"


def test_an_unknown_webinar_is_not_found():
    failure = refused(world().register, "nobody@nowhere", person(), None)
    assert (failure.status, failure.code) == (404, "NotFound")


QUESTIONS = [
    {"id": "city", "label": "city", "is_required": True},
    {
        "id": "track",
        "display_name": "Which track?",
        "answer_input_type": "singleChoice",
        "answer_choices": ["Data", "Apps"],
        "is_required": True,
    },
    {
        "id": "topics",
        "display_name": "Topics",
        "answer_input_type": "multiChoice",
        "answer_choices": ["A", "B", "C"],
    },
    {"id": "consent", "display_name": "Consent", "answer_input_type": "boolean"},
]
GOOD_ANSWERS = [
    {"questionId": "city", "value": "Oslo"},
    {"questionId": "track", "value": "Apps"},
    {"questionId": "topics", "multiChoiceValues": ["A", "C"]},
    {"questionId": "consent", "booleanValue": True},
]


def test_answers_that_keep_every_rule_are_kept():
    webinars = world(questions=QUESTIONS)
    made, _ = webinars.register(WEBINAR, person(registrationQuestionAnswers=GOOD_ANSWERS), None)
    assert made.to_graph()["registrationQuestionAnswers"] == GOOD_ANSWERS
    shown = [q.to_graph() for q in webinars.get(WEBINAR).questions]
    assert shown[0]["@odata.type"] == "#microsoft.graph.virtualEventRegistrationPredefinedQuestion"
    assert shown[1]["answerChoices"] == ["Data", "Apps"]
    assert shown[1]["@odata.type"] == "#microsoft.graph.virtualEventRegistrationCustomQuestion"


@pytest.mark.parametrize(
    ("answers", "words"),
    [
        (GOOD_ANSWERS[1:], "required question 'city'"),
        ([GOOD_ANSWERS[0], {"questionId": "track", "value": "Cooking"}], "'Cooking' is not one"),
        ([*GOOD_ANSWERS[:2], {"questionId": "topics", "multiChoiceValues": ["D"]}], "'D'"),
        ([*GOOD_ANSWERS[:2], {"questionId": "consent", "booleanValue": "yes"}], "wrong type"),
        ([*GOOD_ANSWERS, {"questionId": "shoe-size", "value": "44"}], "'shoe-size'"),
    ],
)
def test_answers_breaking_a_rule_are_a_bad_request(answers, words):
    webinars = world(questions=QUESTIONS)
    body = person(registrationQuestionAnswers=answers)
    failure = refused(webinars.register, WEBINAR, body, None)
    assert failure.status == 400
    assert words in failure.message
    assert webinars.get(WEBINAR).registrations == []


def test_a_full_webinar_refuses_or_waitlists():
    full = world(capacity=1)
    full.register(WEBINAR, person(), None)
    failure = refused(full.register, WEBINAR, person(email="two@fabrikam.example"), None)
    waitlisting = world(capacity=1, waitlist=True)
    waitlisting.register(WEBINAR, person(), None)
    second, _ = waitlisting.register(WEBINAR, person(email="two@fabrikam.example"), None)

    assert failure.status == 400
    assert "capacity" in failure.message
    assert second.status == "waitlisted"


def test_manual_approval_leaves_registrations_pending():
    made, _ = world(manual_approval=True).register(WEBINAR, person(), None)
    assert made.status == "pendingApproval"


@pytest.mark.parametrize(
    ("mode", "status", "code"), [("409", 409, "Conflict"), ("400", 400, "BadRequest")]
)
def test_a_second_post_for_a_registered_email_is_refused_in_the_refusing_modes(mode, status, code):
    webinars = world(conflict=mode)
    webinars.register(WEBINAR, person(), None)
    failure = refused(webinars.register, WEBINAR, person(email="GRACE@fabrikam.example"), None)
    assert (failure.status, failure.code) == (status, code)
    assert len(webinars.get(WEBINAR).registrations) == 1
    assert webinars.stats()["webinar_duplicates"] == 0


def test_the_duplicate_mode_makes_a_second_registration_and_counts_it():
    webinars = world(conflict="duplicate")
    first, _ = webinars.register(WEBINAR, person(), None)
    second, new = webinars.register(WEBINAR, person(), None)
    webinars.register(WEBINAR, person(), None)  # a third: still one pair

    assert new
    assert second.registration_id != first.registration_id
    assert len(webinars.get(WEBINAR).registrations) == 3
    assert webinars.stats()["webinar_duplicates"] == 1


def test_the_silent_mode_answers_the_existing_registration_and_makes_nothing():
    webinars = world(conflict="silent")
    first, _ = webinars.register(WEBINAR, person(), None)
    again, new = webinars.register(WEBINAR, person(firstName="Other"), None)

    assert not new
    assert again.registration_id == first.registration_id
    assert again.first_name == "Grace"
    assert len(webinars.get(WEBINAR).registrations) == 1
    assert webinars.stats()["webinar_registration_posts"] == 2


def test_after_a_cancel_a_post_registers_again_and_the_canceled_one_stays_listed():
    webinars = world()
    first, _ = webinars.register(WEBINAR, person(), None)
    webinars.cancel_registration(WEBINAR, first.registration_id)
    canceled_at = first.canceled_at
    webinars.cancel_registration(WEBINAR, first.registration_id)  # again: nothing changes
    second, _ = webinars.register(WEBINAR, person(), None)

    listed = webinars.registrations(WEBINAR, None)
    assert [r.status for r in listed] == ["canceled", "registered"]
    assert listed[0].canceled_at == canceled_at is not None
    assert second.registration_id != first.registration_id
    assert webinars.stats()["webinar_duplicates"] == 0


def test_a_canceled_registration_frees_its_seat():
    webinars = world(capacity=1)
    first, _ = webinars.register(WEBINAR, person(), None)
    webinars.cancel_registration(WEBINAR, first.registration_id)
    second, _ = webinars.register(WEBINAR, person(email="two@fabrikam.example"), None)
    assert second.status == "registered"


def test_an_unknown_registration_is_not_found():
    failure = refused(world().cancel_registration, WEBINAR, "no-such-registration")
    assert failure.status == 404


def test_filters_find_by_email_without_case_and_by_user_id():
    webinars = world()
    webinars.register(WEBINAR, person(email="o'brien@fabrikam.example"), None)
    webinars.register(WEBINAR, person(), OTHER_USER)

    by_email = webinars.registrations(WEBINAR, "email eq 'O''Brien@Fabrikam.example'")
    by_user = webinars.registrations(WEBINAR, f"userId eq '{OTHER_USER.upper()}'")
    nobody = webinars.registrations(WEBINAR, "email eq 'nobody@fabrikam.example'")

    assert [r.email for r in by_email] == ["o'brien@fabrikam.example"]
    assert [r.email for r in by_user] == [PERSON["email"]]
    assert nobody == []


def test_another_filter_is_a_bad_request_and_no_filter_at_all_when_not_allowed():
    other = refused(world().registrations, WEBINAR, "firstName eq 'Grace'")
    off = refused(world(filter_allowed=False).registrations, WEBINAR, "email eq 'a@b.example'")
    assert other.status == 400
    assert (off.status, off.message) == (400, NOT_ALLOWED_FILTER)
    assert world(filter_allowed=False).registrations(WEBINAR, None) == []


def test_only_the_organizer_publishes_and_cancels_a_webinar_with_a_delegated_token():
    webinars = world(status="draft")
    as_application = refused(webinars.publish, WEBINAR, None)
    as_someone_else = refused(webinars.publish, WEBINAR, OTHER_USER)
    webinars.publish(WEBINAR, ORGANIZER.upper())
    webinars.publish(WEBINAR, ORGANIZER)  # already published: nothing changes
    published = webinars.get(WEBINAR).status
    webinars.cancel(WEBINAR, ORGANIZER)
    after_cancel = refused(webinars.publish, WEBINAR, ORGANIZER)

    assert (as_application.status, as_someone_else.status) == (403, 403)
    assert "Application permission is not supported" in as_application.message
    assert published == "published"
    assert webinars.get(WEBINAR).status == "canceled"
    assert after_cancel.status == 400


def test_webinars_by_role_and_all_of_them():
    webinars = world(co_organizer_ids=[OTHER_USER])
    webinars.add(new_webinar_id(), OTHER_USER)

    organizer_of = webinars.with_role(ORGANIZER, "organizer", None)
    co_organizer_of = webinars.with_role(None, "coOrganizer", OTHER_USER)
    as_application = refused(webinars.with_role, None, "organizer", None)
    bad_role = refused(webinars.with_role, ORGANIZER, "attendee", None)

    assert [w.webinar_id for w in organizer_of] == [WEBINAR]
    assert [w.webinar_id for w in co_organizer_of] == [WEBINAR]
    assert (as_application.status, bad_role.status) == (403, 400)
    assert len(webinars.every(None)) == 2
    assert refused(webinars.every, ORGANIZER).status == 403


def test_a_webinar_shows_its_organizer_times_and_configuration():
    webinar = world(
        capacity=50, waitlist=True, start="2027-03-01T17:00:00Z", end="2027-03-01T18:30:00Z"
    ).get(WEBINAR)
    shown = webinar.to_graph()
    configuration = webinar.configuration_to_graph()

    assert shown["createdBy"]["user"]["id"] == ORGANIZER
    assert shown["startDateTime"] == {"dateTime": "2027-03-01T17:00:00.0000000", "timeZone": "UTC"}
    assert shown["endDateTime"]["dateTime"].startswith("2027-03-01T18:30:00")
    assert configuration["capacity"] == 50
    assert configuration["isWaitlistEnabled"] is True
    assert configuration["isManualApprovalEnabled"] is False
    assert "%40" in configuration["registrationWebUrl"]


@pytest.mark.parametrize(
    "bad",
    [
        {"status": "live"},
        {"audience": "friends"},
        {"capacity": -1},
        {"questions": [{"label": "shoeSize"}]},
        {"questions": [{"display_name": "Pick", "answer_input_type": "singleChoice"}]},
    ],
)
def test_seeding_a_bad_webinar_is_refused(bad):
    with pytest.raises(ValueError):
        world(**bad)


def test_new_webinar_ids_look_like_teams_ones():
    first, _, second = new_webinar_id().partition("@")
    assert len(first) == len(second) == 36
