"""The JSON intake: registration requests POSTed to `meetreg serve`.

The body is one object or an array of objects with the CSV's fields (`user_id`,
`meeting_id` or `join_web_url`, optional `allowed_registrant`; snake_case or camelCase,
as CSV headers are read). Unlike a CSV file, where a bad row is recorded `invalid` and the
rest go on, an API caller gets an answer at once: one bad item refuses the whole request
with every item's error, and nothing is enqueued. An item's `line` in the report is its
1-based position in the array.

An item naming a webinar (`webinarId` or `webinar_id`) is a webinar registrant instead:
`email`, `firstName`, `lastName`, optional `preferredTimezone` and `preferredLanguage`
(the server's MEETREG_WEBINAR_TIMEZONE / _LANGUAGE when absent), and `answers`, an object
of question id (or a predefined question's label) to its answer. One body is one batch of
one kind: a body mixing meeting and registrant items is refused whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobs.http.json_body import load_json
from worker.errors import InputError
from worker.models import Operation
from worker.registrants import DEFAULTS, Defaults, validate_registrant
from worker.registrants import canonical_field as registrant_field
from worker.validation import (
    InvalidRow,
    RegistrationRequest,
    ValidRow,
    canonical_field,
    validate,
)

MAX_ITEMS = 100_000


@dataclass(frozen=True, slots=True)
class ItemError:
    index: int  # 0-based position in the array (0 for a single object)
    error: str


class RejectedItems(InputError):
    """Some items are not valid requests; `errors` says which and why."""

    def __init__(self, errors: list[ItemError]) -> None:
        super().__init__(f"{len(errors)} invalid item(s)")
        self.errors = errors


MIXED = "the body mixes meeting items and webinar registrant items: send each kind on its own"


def operation_of(rows: list[ValidRow]) -> Operation:
    """The batch the rows make: REGISTER for webinar registrants, else CREATE."""
    meeting = isinstance(rows[0].request, RegistrationRequest)
    return Operation.CREATE if meeting else Operation.REGISTER


def read_requests(body: bytes, defaults: Defaults = DEFAULTS) -> list[ValidRow]:
    """Every item as a ValidRow (a meeting's request, or a webinar registrant's with
    `defaults` for what it leaves out). Raises InputError when the body is not JSON of the
    right shape or mixes the two kinds, RejectedItems when some item is not valid."""
    payload = load_json(body)
    items: list[Any] = payload if isinstance(payload, list) else [payload]
    if not items:
        raise InputError("the array is empty: nothing to register")
    if len(items) > MAX_ITEMS:
        raise InputError(f"{len(items)} items: at most {MAX_ITEMS} per request")
    registrants = {
        index
        for index, item in enumerate(items)
        if isinstance(item, dict)
        and any(isinstance(k, str) and registrant_field(k) == "webinar_id" for k in item)
    }
    objects = sum(1 for item in items if isinstance(item, dict))
    if registrants and len(registrants) != objects:
        raise InputError(MIXED)
    rows: list[ValidRow] = []
    errors: list[ItemError] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(ItemError(index, "not a JSON object"))
            continue
        if index in registrants:
            row = _registrant(item, index + 1, defaults)
        else:
            fields: dict[str, Any] = {}
            for name, value in item.items():
                canonical = canonical_field(name) if isinstance(name, str) else None
                if canonical is not None:
                    fields[canonical] = value
            row = validate(fields, line=index + 1)
        if isinstance(row, InvalidRow):
            errors.append(ItemError(index, row.error))
        else:
            rows.append(row)
    if errors:
        raise RejectedItems(errors)
    return rows


def _registrant(item: dict[str, Any], line: int, defaults: Defaults) -> ValidRow | InvalidRow:
    fields: dict[str, Any] = {}
    for name, value in item.items():
        canonical = registrant_field(name) if isinstance(name, str) else None
        if canonical is not None:
            fields[canonical] = value
    answers = item.get("answers")
    if answers is None:
        answers = {}
    if not isinstance(answers, dict):
        return InvalidRow(line, "", "", "", "answers must be an object of question id to answer")
    return validate_registrant(fields, answers, line, defaults)
