"""What makes a registration request valid: every rule about its fields, and `validate`.

Every source of requests (a CSV file's rows, the JSON intake's items, a calendar event's
join link) hands its fields to `validate`, which makes a `ValidRow` (a
`RegistrationRequest` and where it came from) or an `InvalidRow` (the values as given and
one line saying what is wrong). The rules, and the words a user reads when one is broken,
live here only.

`validate` first tries a fast check that accepts only values the model surely keeps
unchanged, and builds the request without pydantic; whatever that check turns down, the
model judges and explains. Enqueueing a million rows depends on that split.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, Self

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from worker.keys import DOT_SEGMENTS

MAX_ID_LENGTH = 2048
MAX_USER_ID_LENGTH = 320  # a UPN's longest: 64 before the "@", 255 after
MAX_JOIN_URL_LENGTH = 4096
MAX_REPORTED_CHARS = 512
"""An invalid row's values are cut to this length for the report."""

FIELDS = ("user_id", "meeting_id", "join_web_url", "allowed_registrant")
"""A request's fields, by their canonical names."""
_SPELLINGS = {
    "userid": "user_id",
    "organizerid": "user_id",
    "meetingid": "meeting_id",
    "joinweburl": "join_web_url",
    "allowedregistrant": "allowed_registrant",
}
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_UPN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# The fast check's UPN: printable ASCII, one "@", no space; a subset of _UPN.
_SIMPLE_UPN = re.compile(r"[!-?A-~]+@[!-?A-~]+\.[!-?A-~]+")
_BAD_ID_CHARS = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


class AllowedRegistrant(StrEnum):
    """Graph's `meetingAudience`; `unknownFutureValue` exists but must never be sent."""

    EVERYONE = "everyone"
    ORGANIZATION = "organization"


_REGISTRANTS = {member.value: member for member in AllowedRegistrant}


def canonical_field(name: str) -> str | None:
    """The canonical field a CSV header cell or JSON key names, or None for one meetreg
    ignores. Case, `_`, `-` and spaces do not count: `userId`, `User ID` and
    `organizer_id` all name `user_id`."""
    key = name.strip().lower().replace("_", "").replace("-", "").replace(" ", "")
    return _SPELLINGS.get(key)


def is_guid(value: str) -> bool:
    return _GUID.fullmatch(value) is not None


def is_path_step(value: str) -> bool:
    """Whether `value` is `.` or `..`: an id no URL path can carry (see worker.keys)."""
    return value in DOT_SEGMENTS


def check_id(value: str, name: str, max_length: int = MAX_ID_LENGTH) -> str:
    """`value` if it can name something in a Graph path; raises ValueError saying why not."""
    if not value:
        raise ValueError(f"{name} is empty")
    if is_path_step(value):
        raise ValueError(f"{name} is {value!r}, which a URL reads as a path step, never an id")
    if len(value) > max_length:
        raise ValueError(f"{name} is longer than {max_length} characters")
    if _BAD_ID_CHARS.search(value):
        raise ValueError(f"{name} contains whitespace or a control character")
    return value


def check_user_id(value: str) -> str:
    """The organizer's objectId (GUID) or UPN, lower-cased; raises ValueError."""
    check_id(value, "user_id", MAX_USER_ID_LENGTH)
    if is_guid(value) or _UPN.fullmatch(value):
        return value.lower()
    raise ValueError("user_id is neither a GUID nor a UPN")


def check_join_web_url(value: str) -> str:
    """An https:// link a meeting can be found by; raises ValueError."""
    check_id(value, "join_web_url", MAX_JOIN_URL_LENGTH)
    if not value.lower().startswith("https://"):
        raise ValueError("join_web_url is not an https:// link")
    return value


class RegistrationRequest(BaseModel):
    """One meeting to enable registration on, as a source (CSV, JSON, event) gives it.

    `user_id` is the organizer's objectId (GUID, lower-cased) or UPN (lower-cased);
    the meeting is named by `meeting_id`, or else found from `join_web_url`.
    """

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    user_id: str
    meeting_id: str | None = None
    join_web_url: str | None = None
    allowed_registrant: AllowedRegistrant = AllowedRegistrant.EVERYONE

    @field_validator("user_id")
    @classmethod
    def _user_id_is_guid_or_upn(cls, value: str) -> str:
        return check_user_id(value)

    @field_validator("meeting_id")
    @classmethod
    def _meeting_id_is_clean(cls, value: str | None) -> str | None:
        return check_id(value, "meeting_id") if value else None

    @field_validator("join_web_url")
    @classmethod
    def _join_url_is_https(cls, value: str | None) -> str | None:
        return check_join_web_url(value) if value else None

    @field_validator("allowed_registrant", mode="before")
    @classmethod
    def _registrant_default(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return AllowedRegistrant.EVERYONE
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _names_a_meeting(self) -> Self:
        if not self.meeting_id and not self.join_web_url:
            raise ValueError("meeting_id (or join_web_url) is required")
        return self

    @property
    def dedup_key(self) -> tuple[str, str]:
        """What makes two rows of one batch the same request."""
        return (self.user_id, self.meeting_id or self.join_web_url or "")


class Request(Protocol):
    """What every kind of request has: what makes two rows of one batch the same."""

    @property
    def dedup_key(self) -> tuple[str, str]: ...


@dataclass(frozen=True, slots=True)
class ValidRow:
    """A row that makes a request. `line` is where it came from: a CSV file's line (the
    header is line 1), a JSON item's 1-based position."""

    line: int
    # A meeting (RegistrationRequest), a webinar's registrant (worker.registrants), or a
    # webinar to publish (worker.publications): each module imports this one, not back.
    request: Request


@dataclass(frozen=True, slots=True)
class InvalidRow:
    """A row that makes no request: its values as given, and why.

    `meeting_id` holds the meeting_id value, or the join_web_url value when the former is
    empty; values are stripped and cut to `MAX_REPORTED_CHARS`. A webinar registrant's row
    keeps its `webinar_id` and `email` instead (worker.registrants).
    """

    line: int
    user_id: str
    meeting_id: str
    allowed_registrant: str
    error: str
    webinar_id: str = ""
    email: str = ""

    @classmethod
    def reported(
        cls, line: int, user_id: str, meeting_id: str, registrant: str, error: str
    ) -> InvalidRow:
        """The row as the report keeps it: each value cut to MAX_REPORTED_CHARS."""
        cut = MAX_REPORTED_CHARS
        return cls(line, user_id[:cut], meeting_id[:cut], registrant[:cut], error)


SourceRow = ValidRow | InvalidRow


def validate(
    fields: Mapping[str, object],
    line: int,
    *,
    default_registrant: AllowedRegistrant | None = None,
) -> SourceRow:
    """Turn one record's fields, keyed by canonical name, into a `ValidRow` or `InvalidRow`.

    Values are strings or None (absent); a missing or empty `allowed_registrant` means
    `default_registrant`, or `everyone` without one. Never raises for bad values: they
    make an `InvalidRow`, a value that is not a string included.
    """
    cells: list[str] = []
    wrong: list[str] = []
    for name in FIELDS:
        value = fields.get(name)
        if value is None:
            cells.append("")
        elif isinstance(value, str):
            cells.append(value.strip())
        else:  # a JSON number or list, say
            cells.append(str(value).strip())
            wrong.append(f"{name} must be a string")
    user_id, meeting_id, join_web_url, registrant = cells
    if wrong:
        return InvalidRow.reported(
            line, user_id, meeting_id or join_web_url, registrant, "; ".join(wrong)
        )
    return validate_cells(user_id, meeting_id, join_web_url, registrant, line, default_registrant)


def validate_cells(
    user_id: str,
    meeting_id: str,
    join_web_url: str,
    registrant: str,
    line: int,
    default_registrant: AllowedRegistrant | None = None,
) -> SourceRow:
    """`validate` for values already stripped strings ("" for absent): what a CSV reader
    has, without a mapping built per row. The fast check builds exactly what
    model_validate would."""
    if registrant:
        allowed = _REGISTRANTS.get(registrant.lower())
    else:
        allowed = default_registrant or AllowedRegistrant.EVERYONE
    if (
        allowed is not None
        and (
            _GUID.fullmatch(user_id)
            or (len(user_id) <= MAX_USER_ID_LENGTH and _SIMPLE_UPN.fullmatch(user_id))
        )
        and _surely_clean_id(meeting_id, MAX_ID_LENGTH)
        and (
            not join_web_url
            or (
                _surely_clean_id(join_web_url, MAX_JOIN_URL_LENGTH)
                and join_web_url[:8].lower() == "https://"
            )
        )
        and (meeting_id or join_web_url)
    ):
        return ValidRow(
            line, _trusted(user_id.lower(), meeting_id or None, join_web_url or None, allowed)
        )
    try:
        request = RegistrationRequest.model_validate(
            {
                "user_id": user_id,
                "meeting_id": meeting_id or None,
                "join_web_url": join_web_url or None,
                "allowed_registrant": registrant or default_registrant,
            }
        )
    except ValidationError as exc:
        return InvalidRow.reported(
            line, user_id, meeting_id or join_web_url, registrant, _describe(exc)
        )
    return ValidRow(line, request)


def _surely_clean_id(value: str, max_length: int) -> bool:
    """True when `value` is empty, or an id `check_id` surely keeps unchanged; what this
    turns down, `check_id` judges and says why.

    isprintable() is False for every whitespace and control character but the space.
    """
    return not value or (
        len(value) <= max_length
        and value.isprintable()
        and " " not in value
        and not is_path_step(value)
    )


_new_request = RegistrationRequest.__new__
_set = object.__setattr__


def _trusted(
    user_id: str, meeting_id: str | None, join_web_url: str | None, allowed: AllowedRegistrant
) -> RegistrationRequest:
    """A RegistrationRequest from values already validated, as model_construct() makes it.

    model_construct() costs 3.5 us, more than half the per-row budget, because it looks
    for aliases and defaults; this sets the same four attributes directly. The tests
    compare its results with model_validate()'s.
    """
    request = _new_request(RegistrationRequest)
    _set(
        request,
        "__dict__",
        {
            "user_id": user_id,
            "meeting_id": meeting_id,
            "join_web_url": join_web_url,
            "allowed_registrant": allowed,
        },
    )
    _set(request, "__pydantic_fields_set__", set(FIELDS))
    _set(request, "__pydantic_extra__", None)
    _set(request, "__pydantic_private__", None)
    return request


def _describe(exc: ValidationError) -> str:
    """One short line naming each field that is wrong, without pydantic's framing."""
    problems = []
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        message = error["msg"].removeprefix("Value error, ")
        if field == "allowed_registrant" and error["type"] == "enum":
            message = "allowed_registrant must be everyone or organization"
        elif field and not message.startswith(field):
            message = f"{field}: {message[:1].lower()}{message[1:]}"
        problems.append(_one_line(message, 200))
    return "; ".join(problems)


def _one_line(text: str, limit: int) -> str:
    """`text` cut to `limit` characters and made one line, for an error message."""
    text = text.replace("\r", " ").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."
