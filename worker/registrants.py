"""What makes a webinar registrant request valid: its fields, and `validate_registrant`.

A registrant request asks Graph to register one person for one Teams webinar
(`POST /solutions/virtualEvents/webinars/{id}/registrations`). Every source (a CSV file's
rows, the JSON intake's items, a drop folder's files) hands its fields to
`validate_registrant`, which makes a `ValidRow` holding a `RegistrantRequest`, or an
`InvalidRow` saying what is wrong, as worker.validation does for meetings.

What can only be judged against the webinar itself (is it published, are its required
questions answered, is a choice one of its choices) is judged by the worker, once per
webinar and batch (worker.protocol.targets.webinar_registration).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from worker.validation import MAX_REPORTED_CHARS, InvalidRow, ValidRow, check_id

FIELDS = (
    "webinar_id",
    "email",
    "first_name",
    "last_name",
    "preferred_timezone",
    "preferred_language",
)
"""A registrant request's fields, by their canonical names (answers aside)."""
REQUIRED = FIELDS[:4]
QUESTION_PREFIX = "question:"
"""A column named `question:{questionId}` holds the answers to that registration question."""
CHOICE_SEPARATOR = "|"
"""Between the answers to a multi-choice question, in one cell."""
DEFAULT_TIMEZONE = "UTC"  # a Windows time zone name, as Graph wants
DEFAULT_LANGUAGE = "en-us"

MAX_EMAIL_LENGTH = 320
MAX_NAME_LENGTH = 256  # Graph documents none; longer names are surely a mistake in the file
MAX_TIMEZONE_LENGTH = 128
MAX_ANSWER_LENGTH = 4000
_SPELLINGS = {
    "webinarid": "webinar_id",
    "email": "email",
    "emailaddress": "email",
    "firstname": "first_name",
    "givenname": "first_name",
    "lastname": "last_name",
    "surname": "last_name",
    "preferredtimezone": "preferred_timezone",
    "preferredlanguage": "preferred_language",
}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")
_TEXT_BAD = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def canonical_field(name: str) -> str | None:
    """The registrant field a CSV header cell or JSON key names, or None. Case, `_`, `-`
    and spaces do not count: `firstName`, `First Name` and `first_name` all name
    `first_name`. Question columns are `question_id`'s business."""
    key = name.strip().lower().replace("_", "").replace("-", "").replace(" ", "")
    return _SPELLINGS.get(key)


def question_id(name: str) -> str | None:
    """The question a `question:{id}` column answers (the id as written), or None."""
    name = name.strip()
    if name[: len(QUESTION_PREFIX)].lower() != QUESTION_PREFIX:
        return None
    return name[len(QUESTION_PREFIX) :].strip() or None


@dataclass(frozen=True, slots=True)
class RegistrantRequest:
    """One person to register for one webinar. `answers`: (question id, the answer as
    given) pairs, in the source's column order; a multi-choice answer's choices are
    separated by `|`."""

    webinar_id: str
    email: str
    first_name: str
    last_name: str
    preferred_timezone: str = DEFAULT_TIMEZONE
    preferred_language: str = DEFAULT_LANGUAGE
    answers: tuple[tuple[str, str], ...] = ()

    @property
    def dedup_key(self) -> tuple[str, str]:
        """What makes two rows the same registration: the webinar, and the email address
        whatever its case (Graph finds a registration by email case-insensitively)."""
        return (self.webinar_id, self.email.casefold())


@dataclass(frozen=True, slots=True)
class Defaults:
    """What a row without a time zone or language asks for (MEETREG_WEBINAR_TIMEZONE,
    MEETREG_WEBINAR_LANGUAGE)."""

    timezone: str = DEFAULT_TIMEZONE
    language: str = DEFAULT_LANGUAGE


DEFAULTS = Defaults()


def validate_registrant(
    fields: Mapping[str, object],
    answers: Mapping[str, object],
    line: int,
    defaults: Defaults = DEFAULTS,
) -> ValidRow | InvalidRow:
    """Turn one record's fields (canonical names -> strings, None when absent) and answers
    (question id -> a string; from JSON also a bool or a list of strings) into a
    `ValidRow` or an `InvalidRow`. Never raises for bad values."""
    values: dict[str, str] = {}
    problems: list[str] = []
    for name in FIELDS:
        value = fields.get(name)
        if value is None:
            values[name] = ""
        elif isinstance(value, str):
            values[name] = value.strip()
        else:
            values[name] = str(value).strip()
            problems.append(f"{name} must be a string")
    given_answers: list[tuple[str, str]] = []
    for question, answer in answers.items():
        text = _answer_text(answer)
        if text is None:
            problems.append(f"the answer to question {question[:60]} must be text")
        elif text:
            given_answers.append((question, text))
    if not problems:
        problems = _problems(values, given_answers)
    if problems:
        cut = MAX_REPORTED_CHARS
        return InvalidRow(
            line,
            "",
            "",
            "",
            "; ".join(problems),
            webinar_id=values["webinar_id"][:cut],
            email=values["email"][:cut],
        )
    return ValidRow(
        line,
        RegistrantRequest(
            webinar_id=values["webinar_id"],
            email=values["email"],
            first_name=values["first_name"],
            last_name=values["last_name"],
            preferred_timezone=values["preferred_timezone"] or defaults.timezone,
            preferred_language=(values["preferred_language"] or defaults.language).lower(),
            answers=tuple(given_answers),
        ),
    )


def _answer_text(answer: object) -> str | None:
    """An answer as one cell holds it: JSON's true/false and lists spelled as a CSV would."""
    if answer is None:
        return ""
    if isinstance(answer, bool):
        return "true" if answer else "false"
    if isinstance(answer, str):
        return answer.strip()
    if isinstance(answer, list) and all(isinstance(item, str) for item in answer):
        return CHOICE_SEPARATOR.join(item.strip() for item in answer)
    return None


def _problems(values: Mapping[str, str], answers: list[tuple[str, str]]) -> list[str]:
    problems = [f"{name} is required" for name in REQUIRED if not values[name]]
    webinar_id, email = values["webinar_id"], values["email"]
    if webinar_id:
        try:
            check_id(webinar_id, "webinar_id")
        except ValueError as exc:
            problems.append(str(exc))
    if email and (len(email) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(email)):
        problems.append("email is not an email address")
    for name in ("first_name", "last_name"):
        problems.extend(_text_problem(name, values[name], MAX_NAME_LENGTH))
    timezone = values["preferred_timezone"]
    problems.extend(_text_problem("preferred_timezone", timezone, MAX_TIMEZONE_LENGTH))
    language = values["preferred_language"]
    if language and not _LANGUAGE.fullmatch(language):
        problems.append("preferred_language is not a language tag such as en-us")
    for question, answer in answers:
        problems.extend(_text_problem(f"question:{question[:60]}", answer, MAX_ANSWER_LENGTH))
    return problems


def _text_problem(name: str, value: str, limit: int) -> list[str]:
    if len(value) > limit:
        return [f"{name} is longer than {limit} characters"]
    if _TEXT_BAD.search(value):
        return [f"{name} contains a control character"]
    return []
