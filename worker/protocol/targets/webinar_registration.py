"""A person's registration for a Teams webinar: meetreg's second target.

A row names the webinar and the person (email, names, time zone, language, answers). The
registration is made app-only with `POST .../webinars/{id}/registrations` and carries
`externalRegistrationInformation.registrationId` set to meetreg's key for the row (its
`external_id`), so that a look can tell the registration this row made from any other.
Looked up by email; undone with `POST .../registrations/{id}/cancel`.

Before anything is sent, each webinar is read once per batch and process (the webinar and
its registration questions): rows of a webinar that is not there, a draft, or canceled
fail; rows that leave a required question unanswered, or answer with a choice the
question does not offer, are invalid. Graph documents none of those refusals, so none is
left for a POST to find out.

What a second POST for a person already registered does is undocumented (409, 400, a
second registration, or a silent success): a registrant is always looked up first, and
after any unclear answer looked up again, before a POST.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from worker.errors import GraphError
from worker.graph.webinars import Cancellation, Question, Registrant, Webinar
from worker.models import RowRecord, RowState
from worker.protocol.target import GO, Caller, Found, Place, Verdict
from worker.registrants import CHOICE_SEPARATOR

CONFIRM_STATUSES = (400, 409)  # POST said "no": a look tells "already registered"
REFERRER = "meetreg"
KNOWN_WEBINARS = 4_096  # webinars remembered per process (each: its status and questions)
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


class WebinarApi(Protocol):
    """The Graph calls of this target; `worker.graph.webinars.WebinarClient` is one."""

    def webinar(self, webinar_id: str) -> Webinar | None: ...

    def questions(self, webinar_id: str) -> tuple[Question, ...]: ...

    def find_registration(
        self, webinar_id: str, email: str, ours: str = ""
    ) -> Registrant | None: ...

    def start_find_registration(
        self, webinar_id: str, email: str, ours: str = ""
    ) -> Callable[[], Registrant | None]: ...

    def register(self, webinar_id: str, body: dict[str, Any]) -> Registrant: ...

    def start_register(self, webinar_id: str, body: dict[str, Any]) -> Callable[[], Registrant]: ...

    def cancel_registration(self, webinar_id: str, registration_id: str) -> Cancellation: ...


def resource_key(webinar_id: str, email: str) -> str:
    """The store's name for one person's place in one webinar (email case does not count)."""
    return f"webinar\x1f{webinar_id}\x1f{email.casefold()}"


@dataclass(slots=True)
class WebinarRegistration:
    """The Target (worker.protocol.target) for webinar registrants."""

    api: WebinarApi
    confirm_statuses: tuple[int, ...] = CONFIRM_STATUSES
    always_looks_first: bool = True  # a second POST may register the person twice
    _known: OrderedDict[tuple[str, str], Webinar | None] = field(default_factory=OrderedDict)
    _questions: dict[str, tuple[Question, ...]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # One reader per (batch, webinar) at a time: the other threads wait for its answer
    # rather than read the same webinar again (a batch's start: every thread at once).
    _reading: dict[tuple[str, str], threading.Lock] = field(default_factory=dict)

    def place(self, row: RowRecord) -> Place:
        return Place(row.webinar_id, row.email, resource_key(row.webinar_id, row.email))

    def locate(self, row: RowRecord, caller: Caller) -> Place:
        return self.place(row)

    # Judged before anything is sent ---------------------------------------------------------

    def verdict(self, batch_id: str, row: RowRecord) -> Verdict | None:
        with self._lock:
            key = (batch_id, row.webinar_id)
            if key not in self._known:
                return None
            webinar = self._known[key]
        return _verdict(row, webinar)

    def judge(self, batch_id: str, row: RowRecord, caller: Caller) -> Verdict:
        known = self.verdict(batch_id, row)
        if known is not None:
            return known
        key = (batch_id, row.webinar_id)
        with self._lock:
            reading = self._reading.setdefault(key, threading.Lock())
        with reading:
            known = self.verdict(batch_id, row)  # read by the thread we waited for
            if known is not None:
                return known
            try:
                return self._read(batch_id, row, caller)
            finally:
                with self._lock:
                    self._reading.pop(key, None)

    def _read(self, batch_id: str, row: RowRecord, caller: Caller) -> Verdict:
        webinar_id = row.webinar_id
        webinar = caller.call(lambda: self.api.webinar(webinar_id))
        if webinar is not None:
            questions = caller.call(lambda: self.api.questions(webinar_id))
            webinar = Webinar(webinar.id, webinar.status, webinar.audience, questions)
        with self._lock:
            self._known[(batch_id, webinar_id)] = webinar
            if webinar is not None:
                self._questions[webinar_id] = webinar.questions
            while len(self._known) > KNOWN_WEBINARS:
                (_, dropped), _ = self._known.popitem(last=False)
                self._questions.pop(dropped, None)
        return _verdict(row, webinar)

    # Graph --------------------------------------------------------------------------------

    def look(self, place: Place, row: RowRecord) -> Registrant | None:
        return self.api.find_registration(place.owner, place.item, row.external_id)

    def start_look(self, place: Place, row: RowRecord) -> Callable[[], Registrant | None]:
        return self.api.start_find_registration(place.owner, place.item, row.external_id)

    def create(self, place: Place, row: RowRecord) -> Registrant:
        return self.api.register(place.owner, self._body(row))

    def start_create(self, place: Place, row: RowRecord) -> Callable[[], Registrant]:
        return self.api.start_register(place.owner, self._body(row))

    def undo(self, place: Place, found: Found) -> Cancellation:
        return self.api.cancel_registration(place.owner, found.id)

    def _body(self, row: RowRecord) -> dict[str, Any]:
        person = row.person
        with self._lock:
            questions = self._questions.get(row.webinar_id, ())
        body: dict[str, Any] = {
            "firstName": person.get("first_name", ""),
            "lastName": person.get("last_name", ""),
            "email": row.email,
            "preferredTimezone": person.get("preferred_timezone", ""),
            "preferredLanguage": person.get("preferred_language", ""),
            "externalRegistrationInformation": {
                "referrer": REFERRER,
                "registrationId": row.external_id,
            },
        }
        answers = [
            _answer(key, text, _asked(key, questions))
            for key, text in dict(person.get("answers", {})).items()
        ]
        if answers:
            body["registrationQuestionAnswers"] = answers
        return body

    # Words --------------------------------------------------------------------------------

    def is_ours(self, found: Found, row: RowRecord) -> bool:
        return bool(row.external_id) and getattr(found, "external_id", "") == row.external_id

    def mismatch(self, found: Found) -> str:
        if found.kind in ("registered", ""):
            return ""
        return f"Graph lists the registration as {found.kind}"

    def retirement(self, error: GraphError) -> str | None:
        return None  # the webinar API is today's; its refusals are each row's own

    def replaced(self, found: Found, row: RowRecord) -> str:
        if self.is_ours(found, row):
            return ""
        return f"the person's registration {found.id} is not the one this batch made: left alone"


def _verdict(row: RowRecord, webinar: Webinar | None) -> Verdict:
    if webinar is None:
        return Verdict(RowState.FAILED, f"webinar {row.webinar_id} not found")
    if webinar.status == "draft":
        return Verdict(
            RowState.FAILED, "the webinar is a draft: its organizer must publish it first"
        )
    if webinar.status == "canceled":
        return Verdict(RowState.FAILED, "the webinar was canceled")
    problems = _answer_problems(dict(row.person.get("answers", {})), webinar.questions)
    return Verdict(RowState.INVALID, "; ".join(problems)) if problems else GO


def _answer_problems(answers: dict[str, str], questions: tuple[Question, ...]) -> list[str]:
    problems = []
    answered = {asked.id for key in answers if (asked := _asked(key, questions))}
    for question in questions:
        if question.required and question.id not in answered:
            problems.append(
                f"required question {question.label or question.id!r} is not answered "
                f"(column question:{question.id})"
            )
    for question_id, text in answers.items():
        asked = _asked(question_id, questions)
        if asked is None:
            problems.append(f"question:{question_id} is not a question of this webinar")
        elif asked.kind == "boolean" and text.lower() not in _TRUE | _FALSE:
            problems.append(f"question:{question_id} takes true or false")
        elif asked.kind in ("singleChoice", "multiChoice"):
            picked = _choices(text) if asked.kind == "multiChoice" else [text]
            wrong = [choice for choice in picked if choice not in asked.choices]
            if wrong:
                problems.append(f"question:{question_id}: {wrong[0]!r} is not one of its choices")
    return problems


def _asked(key: str, questions: tuple[Question, ...]) -> Question | None:
    """The question a `question:{key}` column answers: by its id, or a predefined
    question by its label (`question:jobTitle`), whatever the case."""
    for question in questions:
        if question.id == key:
            return question
    folded = key.casefold()
    for question in questions:
        if question.predefined and question.label.casefold() == folded:
            return question
    return None


def _choices(text: str) -> list[str]:
    return [choice.strip() for choice in text.split(CHOICE_SEPARATOR) if choice.strip()]


def _answer(key: str, text: str, question: Question | None) -> dict[str, Any]:
    question_id = question.id if question else key
    kind = question.kind if question else "text"
    if kind == "boolean":
        return {"questionId": question_id, "booleanValue": text.lower() in _TRUE}
    if kind == "multiChoice":
        return {"questionId": question_id, "multiChoiceValues": _choices(text)}
    return {"questionId": question_id, "value": text}
