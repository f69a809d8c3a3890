"""The webinar registrant target: its judgement before anything is sent, the body it POSTs,
and its words (its calls run against the simulator in tests/pipeline)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from worker.graph.webinars import Cancellation, Question, Registrant, Webinar
from worker.models import RowRecord, RowState
from worker.protocol.target import GO, Verdict
from worker.protocol.targets.webinar_registration import WebinarRegistration, resource_key

T = TypeVar("T")
WEBINAR = "8d62b9a1-1c2d-4e5f-8a9b-0c1d2e3f4a5b@6e5d4c3b-2a19-4807-9f6e-5d4c3b2a1908"
QUESTIONS = (
    Question("jobTitle", "jobTitle", "text", True),
    Question("q-size", "Company size", "singleChoice", False, ("1-10", "11-100")),
    Question("q-topics", "Topics", "multiChoice", False, ("ai", "data")),
    Question("q-news", "Newsletter", "boolean", False),
)


class Api:
    """The webinar calls, answered from data; counts the reads."""

    def __init__(self, webinar: Webinar | None) -> None:
        self.webinar_answer = webinar
        self.reads = 0
        self.posted: list[dict[str, Any]] = []

    def webinar(self, webinar_id: str) -> Webinar | None:
        self.reads += 1
        return self.webinar_answer

    def questions(self, webinar_id: str) -> tuple[Question, ...]:
        return QUESTIONS

    def find_registration(self, webinar_id: str, email: str, ours: str = "") -> Registrant | None:
        return None

    def start_find_registration(
        self, webinar_id: str, email: str, ours: str = ""
    ) -> Callable[[], Registrant | None]:
        return lambda: None

    def register(self, webinar_id: str, body: dict[str, Any]) -> Registrant:
        self.posted.append(body)
        return Registrant("", "", "", body["email"], 204, None)

    def start_register(self, webinar_id: str, body: dict[str, Any]) -> Callable[[], Registrant]:
        return lambda: self.register(webinar_id, body)

    def cancel_registration(self, webinar_id: str, registration_id: str) -> Cancellation:
        return Cancellation(True, 204, None)


class Direct:
    def call(self, request: Callable[[], T]) -> T:
        return request()


def row(answers: dict[str, str] | None = None, email: str = "Ann@Contoso.example") -> RowRecord:
    return RowRecord(
        seq=1,
        line=2,
        user_id="",
        meeting_id="",
        allowed_registrant="",
        status=RowState.QUEUED,
        webinar_id=WEBINAR,
        email=email,
        person={
            "first_name": "Ann",
            "last_name": "Lee",
            "preferred_timezone": "UTC",
            "preferred_language": "en-us",
            "answers": {"jobTitle": "CTO"} if answers is None else answers,
        },
        external_id="meetreg:b1:1",
    )


def published(status: str = "published") -> Webinar:
    return Webinar(WEBINAR, status, "everyone", ())


def test_a_webinar_is_read_once_per_batch_and_then_known() -> None:
    api = Api(published())
    target = WebinarRegistration(api)
    assert target.verdict("b1", row()) is None  # not read yet: the row goes alone to read it
    assert target.judge("b1", row(), Direct()) == GO
    assert target.judge("b1", row(email="bo@contoso.example"), Direct()) == GO
    assert target.verdict("b1", row()) == GO
    assert api.reads == 1
    target.judge("b2", row(), Direct())  # another batch reads it again
    assert api.reads == 2


def test_rows_of_a_webinar_that_cannot_take_registrations_fail_before_any_post() -> None:
    for webinar, reason in (
        (None, f"webinar {WEBINAR} not found"),
        (published("draft"), "the webinar is a draft: its organizer must publish it first"),
        (published("canceled"), "the webinar was canceled"),
    ):
        target = WebinarRegistration(Api(webinar))
        assert target.judge("b1", row(), Direct()) == Verdict(RowState.FAILED, reason)


def test_answers_are_judged_against_the_webinars_questions() -> None:
    target = WebinarRegistration(Api(published()))
    assert target.judge("b1", row({}), Direct()) == Verdict(
        RowState.INVALID,
        "required question 'jobTitle' is not answered (column question:jobTitle)",
    )
    verdict = target.judge(
        "b1",
        row({"jobTitle": "CTO", "q-size": "500", "q-topics": "ai|cooking", "q-news": "maybe"}),
        Direct(),
    )
    assert verdict.state is RowState.INVALID
    assert verdict.reason == (
        "question:q-size: '500' is not one of its choices; "
        "question:q-topics: 'cooking' is not one of its choices; "
        "question:q-news takes true or false"
    )
    unknown = target.judge("b1", row({"jobTitle": "CTO", "q-x": "1"}), Direct())
    assert unknown.reason == "question:q-x is not a question of this webinar"


def test_the_post_carries_the_person_typed_answers_and_our_key() -> None:
    api = Api(published())
    target = WebinarRegistration(api)
    answers = {"jobTitle": "CTO", "q-size": "1-10", "q-topics": "ai | data", "q-news": "yes"}
    target.judge("b1", row(answers), Direct())
    target.create(target.place(row(answers)), row(answers))
    assert api.posted == [
        {
            "firstName": "Ann",
            "lastName": "Lee",
            "email": "Ann@Contoso.example",
            "preferredTimezone": "UTC",
            "preferredLanguage": "en-us",
            "externalRegistrationInformation": {
                "referrer": "meetreg",
                "registrationId": "meetreg:b1:1",
            },
            "registrationQuestionAnswers": [
                {"questionId": "jobTitle", "value": "CTO"},
                {"questionId": "q-size", "value": "1-10"},
                {"questionId": "q-topics", "multiChoiceValues": ["ai", "data"]},
                {"questionId": "q-news", "booleanValue": True},
            ],
        }
    ]


def test_one_person_is_one_place_whatever_the_emails_case() -> None:
    target = WebinarRegistration(Api(published()))
    assert target.place(row()).key == target.place(row(email="ann@contoso.EXAMPLE")).key
    assert target.place(row()).key == resource_key(WEBINAR, "ANN@contoso.example")
    assert target.place(row()).key != resource_key(WEBINAR.upper(), "ann@contoso.example")


def test_only_the_registration_carrying_our_key_is_ours_to_cancel() -> None:
    target = WebinarRegistration(Api(published()))
    ours = Registrant("r1", "registered", "meetreg:b1:1", "ann@contoso.example", 200, None)
    theirs = Registrant("r2", "registered", "", "ann@contoso.example", 200, None)
    assert target.is_ours(ours, row()) and not target.is_ours(theirs, row())
    assert target.replaced(ours, row()) == ""
    assert target.replaced(theirs, row()) == (
        "the person's registration r2 is not the one this batch made: left alone"
    )
    waitlisted = Registrant("r3", "waitlisted", "", "ann@contoso.example", 200, None)
    assert target.mismatch(waitlisted) == "Graph lists the registration as waitlisted"
    assert target.mismatch(ours) == ""


def test_threads_judging_one_webinar_at_once_read_it_once() -> None:
    # A second reader would meet the first at the barrier; alone, the first waits it out.
    barrier = threading.Barrier(2, timeout=0.5)

    class Slow(Api):
        def webinar(self, webinar_id: str) -> Webinar | None:
            self.reads += 1
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
            return self.webinar_answer

    api = Slow(published())
    target = WebinarRegistration(api)
    verdicts: list[Verdict] = []
    threads = [
        threading.Thread(target=lambda: verdicts.append(target.judge("b1", row(), Direct())))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert verdicts == [GO] * 8
    assert api.reads == 1
