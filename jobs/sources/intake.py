"""The JSON intake: registration requests POSTed to `meetreg serve`.

The body is one object or an array of objects with the CSV's fields (`user_id`,
`meeting_id` or `join_web_url`, optional `allowed_registrant`; snake_case or camelCase,
as CSV headers are read). Unlike a CSV file, where a bad row is recorded `invalid` and the
rest go on, an API caller gets an answer at once: one bad item refuses the whole request
with every item's error, and nothing is enqueued. An item's `line` in the report is its
1-based position in the array.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobs.http.json_body import load_json
from worker.errors import InputError
from worker.validation import InvalidRow, ValidRow, canonical_field, validate

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


def read_requests(body: bytes) -> list[ValidRow]:
    """Every item as a ValidRow. Raises InputError when the body is not JSON of the right
    shape, RejectedItems when some item is not a valid request."""
    payload = load_json(body)
    items: list[Any] = payload if isinstance(payload, list) else [payload]
    if not items:
        raise InputError("the array is empty: nothing to register")
    if len(items) > MAX_ITEMS:
        raise InputError(f"{len(items)} items: at most {MAX_ITEMS} per request")
    rows: list[ValidRow] = []
    errors: list[ItemError] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(ItemError(index, "not a JSON object"))
            continue
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
