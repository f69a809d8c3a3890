"""Teams webinars as Graph's virtual-events API shows them, and Graph's rules for them.

Plain data: the webinars of a tenant, their registration configuration and questions,
the people registered, and what Graph answers to each operation on them (`Webinars`). No
locking (the `SimulatorState` holds the lock) and no HTTP (`webinar_routes` translates).
Webinar ids look like `{guid}@{guid}` and are compared exactly; user ids are GUIDs,
compared lower-cased; emails are compared without case.

Graph documents the operations but not the error each rule answers with: the codes chosen
here are Graph-shaped guesses, all in `REFUSALS`. What a second registration for the same
email gets is undocumented too, so it is a mode (`WebinarConflict`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, cast, get_args
from urllib.parse import quote

from worker.simulator.config import WebinarConflict
from worker.simulator.errors import GraphFailure
from worker.simulator.timestamps import graph_time, parse_time, utc_now

WebinarStatus = Literal["draft", "published", "canceled"]
Audience = Literal["everyone", "organization"]
Role = Literal["organizer", "coOrganizer"]
RegistrationStatus = Literal[
    "registered", "canceled", "waitlisted", "pendingApproval", "rejectedByOrganizer"
]
AnswerInputType = Literal["text", "multilineText", "singleChoice", "multiChoice", "boolean"]
PREDEFINED_TYPE = "#microsoft.graph.virtualEventRegistrationPredefinedQuestion"
CUSTOM_TYPE = "#microsoft.graph.virtualEventRegistrationCustomQuestion"
PREDEFINED_LABELS = frozenset(
    {"street", "city", "state", "postalCode", "countryOrRegion", "industry", "jobTitle"}
    | {"organization"}
)
REQUIRED_FIELDS = ("firstName", "lastName", "email", "preferredTimezone", "preferredLanguage")
# Statuses that hold a seat: a waitlisted registrant waits for one.
SEATED = frozenset({"registered", "pendingApproval"})
NOT_ALLOWED_FILTER = (
    "Query option 'Filter' is not allowed. To allow it, set the 'AllowedQueryOptions' "
    "property on EnableQueryAttribute or QueryValidationSettings."
)
_FILTER = re.compile(r"^\s*(email|userId)\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)

# Every refusal of a webinar operation: status, Graph code, message (formatted with the
# names in braces). One table, so a client's handling can be checked against all of them.
REFUSALS: dict[str, tuple[int, str, str]] = {
    "webinar_not_found": (404, "NotFound", "The webinar '{webinar}' was not found."),
    "registration_not_found": (404, "NotFound", "The registration '{registration}' was not found."),
    "missing_field": (400, "BadRequest", "The '{field}' field is required."),
    "bad_field": (400, "BadRequest", "The '{field}' field has an invalid value."),
    "not_open": (400, "BadRequest", "Registration is not open: the webinar is {status}."),
    "organization_only": (
        403,
        "Forbidden",
        "The webinar is open to the organization only: an application cannot register people.",
    ),
    "unknown_question": (400, "BadRequest", "The question '{question}' is not in this webinar."),
    "unanswered": (400, "BadRequest", "The required question '{question}' has no answer."),
    "bad_answer": (400, "BadRequest", "The answer to question '{question}' has the wrong type."),
    "bad_choice": (
        400,
        "BadRequest",
        "'{value}' is not one of the choices of question '{question}'.",
    ),
    "full": (400, "BadRequest", "The webinar has reached its registration capacity."),
    "conflict_409": (409, "Conflict", "'{email}' is already registered for this webinar."),
    "conflict_400": (400, "BadRequest", "'{email}' is already registered for this webinar."),
    "bad_filter": (400, "BadRequest", "Invalid filter clause: {expression!r}"),
    "filter_not_allowed": (400, "BadRequest", NOT_ALLOWED_FILTER),
    "bad_role": (400, "BadRequest", "The role '{role}' is not supported."),
    "delegated_only": (
        403,
        "Forbidden",
        "Application permission is not supported for this API; sign in as the organizer.",
    ),
    "application_only": (
        403,
        "Forbidden",
        "Delegated permission is not supported for this API; use an application token.",
    ),
    "not_organizer": (403, "Forbidden", "Only the webinar's organizer may do this."),
    "canceled_webinar": (400, "BadRequest", "The webinar is canceled and cannot be published."),
}


def refusal(name: str, **values: object) -> GraphFailure:
    """The GraphFailure of `REFUSALS[name]`, its message filled in with `values`."""
    status, code, message = REFUSALS[name]
    return GraphFailure(status, code, message.format(**values))


def new_webinar_id() -> str:
    """A fresh id shaped like Teams' own: `{guid}@{guid}`."""
    return f"{uuid.uuid4()}@{uuid.uuid4()}"


def _date_time_time_zone(moment: datetime) -> dict[str, str]:
    """Graph's dateTimeTimeZone: a local time with seven fractional digits, and its zone."""
    return {"dateTime": graph_time(moment).removesuffix("Z"), "timeZone": "UTC"}


def _moment(value: datetime | str | None, default: datetime) -> datetime:
    if value is None:
        return default
    return value if isinstance(value, datetime) else parse_time(value)


def _one_of(value: object, allowed: object, name: str) -> None:
    if value not in get_args(allowed):
        raise ValueError(f"{name} must be one of {get_args(allowed)}, not {value!r}")


@dataclass(frozen=True, slots=True)
class Question:
    """A registration question: predefined (`label`) or custom (`display_name`, an input
    type and, for the choice types, its `answer_choices`)."""

    question_id: str
    is_required: bool = False
    label: str | None = None
    display_name: str | None = None
    answer_input_type: AnswerInputType = "text"
    answer_choices: tuple[str, ...] = ()

    @classmethod
    def seed(cls, spec: Mapping[str, Any]) -> Question:
        """A question from its seeding mapping: `{"label": "city", "is_required": True}` or
        `{"display_name": ..., "answer_input_type": ..., "answer_choices": [...]}`, with an
        optional `id`. Raises ValueError for a bad one."""
        known = {"id", "label", "display_name", "answer_input_type", "answer_choices"}
        unknown = set(spec) - known - {"is_required"}
        if unknown:
            raise ValueError(f"unknown question fields: {sorted(unknown)}")
        question_id = str(spec.get("id") or uuid.uuid4())
        required = bool(spec.get("is_required", False))
        label = spec.get("label")
        if label is not None:
            if label not in PREDEFINED_LABELS:
                raise ValueError(f"predefined label must be one of {sorted(PREDEFINED_LABELS)}")
            return cls(question_id, required, label=str(label))
        input_type = spec.get("answer_input_type", "text")
        _one_of(input_type, AnswerInputType, "answer_input_type")
        choices = tuple(str(choice) for choice in spec.get("answer_choices") or ())
        if input_type in ("singleChoice", "multiChoice") and not choices:
            raise ValueError(f"a {input_type} question needs answer_choices")
        name = str(spec.get("display_name") or f"Question {question_id[:8]}")
        return cls(question_id, required, None, name, input_type, choices)

    def to_graph(self) -> dict[str, Any]:
        if self.label is not None:
            return {
                "@odata.type": PREDEFINED_TYPE,
                "id": self.question_id,
                "label": self.label,
                "isRequired": self.is_required,
            }
        return {
            "@odata.type": CUSTOM_TYPE,
            "id": self.question_id,
            "displayName": self.display_name,
            "answerInputType": self.answer_input_type,
            "answerChoices": list(self.answer_choices),
            "isRequired": self.is_required,
        }

    def check(self, answer: Mapping[str, Any] | None) -> None:
        """Raise GraphFailure 400 unless `answer` (None: not given) answers this question."""
        given = _answer_value(answer, self.answer_input_type if self.label is None else "text")
        if given in (None, "", []):
            if self.is_required:
                raise refusal("unanswered", question=self.question_id)
            return
        kind = "text" if self.label is not None else self.answer_input_type
        well_typed = {
            "boolean": isinstance(given, bool),
            "multiChoice": isinstance(given, list) and all(isinstance(v, str) for v in given),
        }.get(kind, isinstance(given, str))
        if not well_typed:
            raise refusal("bad_answer", question=self.question_id)
        if kind in ("singleChoice", "multiChoice"):
            for value in given if isinstance(given, list) else [given]:
                if value not in self.answer_choices:
                    raise refusal("bad_choice", value=value, question=self.question_id)


def _answer_value(answer: Mapping[str, Any] | None, kind: str) -> Any:
    """What an answer says, from the property its question's type reads."""
    if answer is None:
        return None
    if kind == "boolean":
        return answer.get("booleanValue")
    if kind == "multiChoice":
        return answer.get("multiChoiceValues")
    return answer.get("value")


@dataclass(slots=True)
class WebinarRegistration:
    """One person's registration; `user_id` is None when an application made it."""

    registration_id: str
    email: str
    first_name: str
    last_name: str
    user_id: str | None
    status: RegistrationStatus
    registered_at: datetime
    preferred_timezone: str
    preferred_language: str
    answers: list[dict[str, Any]]
    external: dict[str, Any] | None
    canceled_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status != "canceled"

    def to_graph(self) -> dict[str, Any]:
        return {
            "id": self.registration_id,
            "email": self.email,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "userId": self.user_id,
            "status": self.status,
            "registrationDateTime": graph_time(self.registered_at),
            "cancelationDateTime": graph_time(self.canceled_at) if self.canceled_at else None,
            "preferredTimezone": self.preferred_timezone,
            "preferredLanguage": self.preferred_language,
            "registrationQuestionAnswers": [dict(a) for a in self.answers],
            "externalRegistrationInformation": (
                dict(self.external) if self.external is not None else None
            ),
        }


@dataclass(slots=True)
class Webinar:
    """A webinar, its registration configuration, its questions and its registrations
    (canceled ones too, oldest first)."""

    webinar_id: str
    tenant_id: str
    display_name: str
    status: WebinarStatus
    audience: Audience
    organizer_id: str
    co_organizer_ids: tuple[str, ...]
    start: datetime
    end: datetime
    capacity: int | None
    waitlist: bool
    manual_approval: bool
    questions: tuple[Question, ...]
    registrations: list[WebinarRegistration] = field(default_factory=list)

    def to_graph(self) -> dict[str, Any]:
        return {
            "id": self.webinar_id,
            "displayName": self.display_name,
            "status": self.status,
            "audience": self.audience,
            "startDateTime": _date_time_time_zone(self.start),
            "endDateTime": _date_time_time_zone(self.end),
            "createdBy": {"user": {"id": self.organizer_id, "tenantId": self.tenant_id}},
            "coOrganizers": [{"id": i, "tenantId": self.tenant_id} for i in self.co_organizer_ids],
        }

    def configuration_to_graph(self) -> dict[str, Any]:
        return {
            "id": self.webinar_id,
            "capacity": self.capacity,
            "isManualApprovalEnabled": self.manual_approval,
            "isWaitlistEnabled": self.waitlist,
            "registrationWebUrl": (
                f"https://events.teams.microsoft.com/event/{quote(self.webinar_id, safe='')}"
            ),
        }

    def active_for(self, email: str) -> WebinarRegistration | None:
        """The email's oldest registration that is not canceled, if any."""
        wanted = email.casefold()
        return next(
            (r for r in self.registrations if r.active and r.email.casefold() == wanted), None
        )

    def has_role(self, user_id: str, role: Role) -> bool:
        user_id = user_id.lower()
        return (
            user_id == self.organizer_id
            if role == "organizer"
            else (user_id in self.co_organizer_ids)
        )


class Webinars:
    """The tenant's webinars and Graph's answers about them.

    `conflict` is what a POST for an email already registered (and not canceled) gets;
    `filter_allowed` False answers every `$filter` 400, as v1.0 does for OData options.
    """

    def __init__(self, tenant_id: str, conflict: WebinarConflict, filter_allowed: bool) -> None:
        self.tenant_id = tenant_id
        self.conflict: WebinarConflict = conflict
        self.filter_allowed = filter_allowed
        self.by_id: dict[str, Webinar] = {}
        self.posts = 0  # registration POSTs that reached the webinar rules
        self.created = 0
        # (webinar, email) pairs given a registration while another of theirs was active.
        self.duplicated: set[tuple[str, str]] = set()

    # Seeding -----------------------------------------------------------------------------

    def add(
        self,
        webinar_id: str,
        organizer_id: str,
        *,
        display_name: str | None = None,
        status: WebinarStatus = "published",
        audience: Audience = "everyone",
        capacity: int | None = None,
        waitlist: bool = False,
        manual_approval: bool = False,
        questions: Iterable[Mapping[str, Any]] = (),
        co_organizer_ids: Iterable[str] = (),
        start: datetime | str | None = None,
        end: datetime | str | None = None,
    ) -> Webinar:
        """Add or replace a webinar (without registrations); raises ValueError for a bad
        field. It starts a week from now and lasts an hour unless `start` / `end` say."""
        if not webinar_id:
            raise ValueError("a webinar needs an id")
        _one_of(status, WebinarStatus, "status")
        _one_of(audience, Audience, "audience")
        if capacity is not None and (isinstance(capacity, bool) or int(capacity) < 0):
            raise ValueError(f"capacity must be a count or None, not {capacity!r}")
        begins = _moment(start, utc_now().replace(minute=0, second=0, microsecond=0))
        begins += timedelta(days=7) if start is None else timedelta()
        webinar = Webinar(
            webinar_id,
            self.tenant_id,
            display_name or f"Webinar {webinar_id[:8]}",
            status,
            audience,
            organizer_id.lower(),
            tuple(i.lower() for i in co_organizer_ids),
            begins,
            _moment(end, begins + timedelta(hours=1)),
            None if capacity is None else int(capacity),
            bool(waitlist),
            bool(manual_approval),
            tuple(Question.seed(q) for q in questions),
        )
        self.by_id[webinar_id] = webinar
        return webinar

    # Graph operations --------------------------------------------------------------------
    # `acting`: the objectId a delegated token acts for (None: an application token).

    def get(self, webinar_id: str) -> Webinar:
        """`GET /webinars/{id}`: the webinar, or GraphFailure 404."""
        webinar = self.by_id.get(webinar_id)
        if webinar is None:
            raise refusal("webinar_not_found", webinar=webinar_id)
        return webinar

    def every(self, acting: str | None) -> list[Webinar]:
        """`GET /webinars`: all of them, for an application token only (else 403)."""
        if acting is not None:
            raise refusal("application_only")
        return list(self.by_id.values())

    def with_role(self, user_id: str | None, role: str, acting: str | None) -> list[Webinar]:
        """`getByUserRole` (`user_id` None: the delegated token's user; an application
        token is refused 403) and `getByUserIdAndRole`."""
        if role not in get_args(Role):
            raise refusal("bad_role", role=role)
        if user_id is None:
            if acting is None:
                raise refusal("delegated_only")
            user_id = acting
        return [w for w in self.by_id.values() if w.has_role(user_id, cast(Role, role))]

    def register(
        self, webinar_id: str, body: Mapping[str, Any], acting: str | None
    ) -> tuple[WebinarRegistration, bool]:
        """`POST /webinars/{id}/registrations`: the registration and whether it is new (in
        the "silent" conflict mode, an email already registered gets its registration
        back, unchanged). Raises GraphFailure for every rule in `REFUSALS` it breaks."""
        webinar = self.get(webinar_id)
        self.posts += 1
        fields = _registration_fields(body)
        if acting is None and webinar.audience == "organization":
            raise refusal("organization_only")
        if webinar.status != "published":
            raise refusal("not_open", status=webinar.status)
        answers = _checked_answers(webinar.questions, body.get("registrationQuestionAnswers"))
        existing = webinar.active_for(fields["email"])
        if existing is not None:
            if self.conflict in ("409", "400"):
                raise refusal(f"conflict_{self.conflict}", email=fields["email"])
            if self.conflict == "silent":
                return existing, False
        status: RegistrationStatus = "registered"
        seated = sum(1 for r in webinar.registrations if r.status in SEATED)
        if webinar.capacity is not None and seated >= webinar.capacity:
            if not webinar.waitlist:
                raise refusal("full")
            status = "waitlisted"
        elif webinar.manual_approval:
            status = "pendingApproval"
        registration = WebinarRegistration(
            str(uuid.uuid4()),
            fields["email"],
            fields["firstName"],
            fields["lastName"],
            acting,
            status,
            utc_now(),
            fields["preferredTimezone"],
            fields["preferredLanguage"],
            answers,
            _external(body.get("externalRegistrationInformation")),
        )
        webinar.registrations.append(registration)
        self.created += 1
        if existing is not None:
            self.duplicated.add((webinar_id, fields["email"].casefold()))
        return registration, True

    def registrations(self, webinar_id: str, expression: str | None) -> list[WebinarRegistration]:
        """`GET /webinars/{id}/registrations[?$filter=...]`: every registration, canceled
        ones too, or those the filter matches. Raises GraphFailure 404, or 400 for a filter
        other than `email eq` / `userId eq`, or any when filters are not allowed."""
        webinar = self.get(webinar_id)
        if expression is None:
            return list(webinar.registrations)
        if not self.filter_allowed:
            raise refusal("filter_not_allowed")
        found = _FILTER.match(expression)
        if found is None:
            raise refusal("bad_filter", expression=expression)
        wanted = found.group(2).replace("''", "'").casefold()
        if found.group(1).lower() == "email":
            return [r for r in webinar.registrations if r.email.casefold() == wanted]
        return [r for r in webinar.registrations if (r.user_id or "").casefold() == wanted]

    def registration(self, webinar_id: str, registration_id: str) -> WebinarRegistration:
        """`GET /webinars/{id}/registrations/{id}`; raises GraphFailure 404."""
        webinar = self.get(webinar_id)
        for registration in webinar.registrations:
            if registration.registration_id == registration_id:
                return registration
        raise refusal("registration_not_found", registration=registration_id)

    def cancel_registration(self, webinar_id: str, registration_id: str) -> None:
        """`POST .../registrations/{id}/cancel`: canceled from now; again, nothing changes."""
        registration = self.registration(webinar_id, registration_id)
        if registration.active:
            registration.status = "canceled"
            registration.canceled_at = utc_now()

    def publish(self, webinar_id: str, acting: str | None) -> None:
        """`POST /webinars/{id}/publish`: the organizer's, delegated; a draft is published,
        a published one stays so, a canceled one is refused 400."""
        webinar = self._organized(webinar_id, acting)
        if webinar.status == "canceled":
            raise refusal("canceled_webinar")
        webinar.status = "published"

    def cancel(self, webinar_id: str, acting: str | None) -> None:
        """`POST /webinars/{id}/cancel`: the organizer's, delegated; for good."""
        self._organized(webinar_id, acting).status = "canceled"

    def stats(self) -> dict[str, int]:
        return {
            "webinars": len(self.by_id),
            "webinar_registration_posts": self.posts,
            "webinar_registrations_created": self.created,
            "webinar_duplicates": len(self.duplicated),
        }

    def _organized(self, webinar_id: str, acting: str | None) -> Webinar:
        webinar = self.get(webinar_id)
        if acting is None:
            raise refusal("delegated_only")
        if not webinar.has_role(acting, "organizer"):
            raise refusal("not_organizer")
        return webinar


def _registration_fields(body: Mapping[str, Any]) -> dict[str, str]:
    """The required fields, each a non-empty string; raises GraphFailure 400 naming the first
    missing or wrong one."""
    fields = {}
    for name in REQUIRED_FIELDS:
        value = body.get(name)
        if value is None or value == "":
            raise refusal("missing_field", field=name)
        if not isinstance(value, str):
            raise refusal("bad_field", field=name)
        fields[name] = value
    return fields


def _checked_answers(questions: tuple[Question, ...], given: Any) -> list[dict[str, Any]]:
    """The answers, once each question's rules hold; raises GraphFailure 400."""
    if given is None:
        given = []
    if not isinstance(given, list) or not all(isinstance(a, dict) for a in given):
        raise refusal("bad_field", field="registrationQuestionAnswers")
    by_question = {str(a.get("questionId")): a for a in given}
    known = {q.question_id for q in questions}
    for question_id in by_question:
        if question_id not in known:
            raise refusal("unknown_question", question=question_id)
    for question in questions:
        question.check(by_question.get(question.question_id))
    return [dict(a) for a in given]


def _external(given: Any) -> dict[str, Any] | None:
    """externalRegistrationInformation as kept: its referrer and registrationId."""
    if given is None:
        return None
    if not isinstance(given, dict) or not all(
        isinstance(given.get(k), str | None) for k in ("referrer", "registrationId")
    ):
        raise refusal("bad_field", field="externalRegistrationInformation")
    return {"referrer": given.get("referrer"), "registrationId": given.get("registrationId")}
