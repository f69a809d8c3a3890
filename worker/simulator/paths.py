"""The Graph paths the simulator serves, under either version root, and what each names.

    /{root}/users/{id}                                       user      GET
    /{root}/users/{id}/onlineMeetings                        meetings  GET ($filter=JoinWebUrl)
    /{root}/users/{id}/onlineMeetings/{id}                   meeting   GET
    /beta/users/{id}/onlineMeetings/{id}/registration        registration  GET POST DELETE
    /{root}/me/onlineMeetings[/{id}], /beta/me/.../registration  the same, for the user a
                                                             delegated token acts for
    /{root}/users/{id}/events                                events    GET
    /{root}/users/{id}/events/{id}                           event     GET
    /{root}/subscriptions                                    subscriptions  GET POST
    /{root}/subscriptions/{id}                               subscription   GET PATCH DELETE
    /{root}/$batch                                           batch     POST

    Teams webinars, under /{root}/solutions/virtualEvents (`webinar_routes` answers):
    /webinars                                                webinars  GET (application)
    /webinars/getByUserRole(role='...')                      webinars  GET (delegated)
    /webinars/getByUserIdAndRole(userId='...',role='...')    webinars  GET
    /webinars/{id}                                           webinar   GET
    /webinars/{id}/publish, /webinars/{id}/cancel            webinar publish, cancel  POST
    /webinars/{id}/registrationConfiguration                 webinar configuration  GET
    /webinars/{id}/registrationConfiguration/questions       webinar questions  GET
    /webinars/{id}/registrations                             webinar registrations  GET POST
    /webinars/{id}/registrations/{id}                        webinar registration  GET
    /webinars/{id}/registrations/{id}/cancel                 webinar registration cancel POST

`root` is `beta` or `v1.0`: meetreg registers on beta and reads calendars on v1.0, and one
table serves both, except that registration is beta-only, as at Graph: under v1.0 its path
is unknown, so a client that registers on the wrong root fails here as it would there.
Webinars are under both roots. A webinar id (`{guid}@{guid}`) is one segment, its `@` raw
or `%40` (`app` decodes each segment once). A path no template accepts is answered as
Graph answers it: 400 `BadRequest`, "Resource not found for the segment '<name>'." (not
404).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GRAPH_ROOTS = frozenset({"beta", "v1.0"})
BETA_ONLY_KINDS = frozenset({"registration"})
_REGISTRATION_TEMPLATE = ("users", None, "onlineMeetings", None, "registration")
_ME_REGISTRATION_TEMPLATE = ("me", "onlineMeetings", None, "registration")
_TEMPLATES = (
    ("me", "onlineMeetings"),
    ("me", "onlineMeetings", None),
    _ME_REGISTRATION_TEMPLATE,
    ("users", None),
    ("users", None, "onlineMeetings"),
    ("users", None, "onlineMeetings", None),
    _REGISTRATION_TEMPLATE,
    ("users", None, "events"),
    ("users", None, "events", None),
    ("subscriptions",),
    ("subscriptions", None),
    ("$batch",),
    ("solutions", "virtualEvents", "webinars"),
    ("solutions", "virtualEvents", "webinars", None, "publish"),
    ("solutions", "virtualEvents", "webinars", None, "cancel"),
    ("solutions", "virtualEvents", "webinars", None, "registrationConfiguration", "questions"),
    ("solutions", "virtualEvents", "webinars", None, "registrations", None, "cancel"),
)
WEBINAR_KINDS = frozenset(
    {
        "webinars",
        "webinar",
        "webinar_publish",
        "webinar_cancel",
        "webinar_configuration",
        "webinar_questions",
        "webinar_registrations",
        "webinar_registration",
        "webinar_registration_cancel",
    }
)
# The functions on the webinars collection: one segment each, quotes as OData spells them.
_BY_USER_ROLE = re.compile(r"^getByUserRole\(role='([^']*)'\)$", re.IGNORECASE)
_BY_USER_ID_AND_ROLE = re.compile(
    r"^getByUserIdAndRole\(userId='([^']+)',\s*role='([^']*)'\)$", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class GraphRoute:
    """What a path under a root names; `methods` are the ones it allows. `item_id` is the
    meeting, event or subscription id, as the kind says. `me`: the path says `/me`, not
    `/users/{id}`, and `user_id` is whoever the delegated token acts for (empty here).
    Webinars: `item_id` is the webinar, `sub_id` a registration, `role` the role a
    `getBy...Role` function asks for (its `user_id` empty for `getByUserRole`)."""

    # user, meetings, meeting, registration, events, event, subscriptions, subscription,
    # batch, and the WEBINAR_KINDS
    kind: str
    methods: frozenset[str]
    user_id: str = ""
    item_id: str = ""
    me: bool = False
    sub_id: str = ""
    role: str = ""

    @property
    def meeting_id(self) -> str:
        return self.item_id if self.kind in ("registration", "meeting") else ""


def match_route(segments: list[str], root: str = "beta") -> GraphRoute | None:
    """The route of the segments after `root`, or None. Ids must be non-empty."""
    route = _match(segments)
    if route is not None and root != "beta" and route.kind in BETA_ONLY_KINDS:
        return None
    return route


def _match(segments: list[str]) -> GraphRoute | None:
    if segments[:1] == ["me"]:
        route = _match(["users", "me", *segments[1:]])
        if route is None or route.kind not in _ME_KINDS:
            return None
        return GraphRoute(route.kind, route.methods, "", route.item_id, me=True)
    match segments:
        case ["users", user] if user:
            return GraphRoute("user", frozenset({"GET"}), user)
        case ["users", user, "onlineMeetings"] if user:
            return GraphRoute("meetings", frozenset({"GET"}), user)
        case ["users", user, "onlineMeetings", meeting] if user and meeting:
            return GraphRoute("meeting", frozenset({"GET"}), user, meeting)
        case ["users", user, "onlineMeetings", meeting, "registration"] if user and meeting:
            return GraphRoute("registration", frozenset({"GET", "POST", "DELETE"}), user, meeting)
        case ["users", user, "events"] if user:
            return GraphRoute("events", frozenset({"GET"}), user)
        case ["users", user, "events", event] if user and event:
            return GraphRoute("event", frozenset({"GET"}), user, event)
        case ["subscriptions"]:
            return GraphRoute("subscriptions", frozenset({"GET", "POST"}))
        case ["subscriptions", subscription] if subscription:
            return GraphRoute(
                "subscription", frozenset({"GET", "PATCH", "DELETE"}), item_id=subscription
            )
        case ["$batch"]:
            return GraphRoute("batch", frozenset({"POST"}))
        case ["solutions", "virtualEvents", "webinars", *rest]:
            return _match_webinar(rest)
    return None


def _match_webinar(rest: list[str]) -> GraphRoute | None:
    """The route of the segments after `/solutions/virtualEvents/webinars`."""
    get, post = frozenset({"GET"}), frozenset({"POST"})
    if len(rest) == 1:
        by_role = _BY_USER_ROLE.match(rest[0])
        if by_role is not None:
            return GraphRoute("webinars", get, role=by_role.group(1))
        by_user = _BY_USER_ID_AND_ROLE.match(rest[0])
        if by_user is not None:
            return GraphRoute("webinars", get, by_user.group(1), role=by_user.group(2))
    match rest:
        case []:
            return GraphRoute("webinars", get)
        case [webinar] if webinar:
            return GraphRoute("webinar", get, item_id=webinar)
        case [webinar, "publish" | "cancel" as action] if webinar:
            return GraphRoute(f"webinar_{action}", post, item_id=webinar)
        case [webinar, "registrationConfiguration"] if webinar:
            return GraphRoute("webinar_configuration", get, item_id=webinar)
        case [webinar, "registrationConfiguration", "questions"] if webinar:
            return GraphRoute("webinar_questions", get, item_id=webinar)
        case [webinar, "registrations"] if webinar:
            return GraphRoute("webinar_registrations", get | post, item_id=webinar)
        case [webinar, "registrations", registration] if webinar and registration:
            return GraphRoute("webinar_registration", get, item_id=webinar, sub_id=registration)
        case [webinar, "registrations", registration, "cancel"] if webinar and registration:
            return GraphRoute(
                "webinar_registration_cancel", post, item_id=webinar, sub_id=registration
            )
    return None


_ME_KINDS = frozenset({"meetings", "meeting", "registration"})


def unknown_segment(segments: list[str], root: str = "beta") -> str:
    """The first segment no route template accepts, for Graph's "Resource not found for
    the segment" message."""
    # Under v1.0 the meeting id still fits (Graph has meetings there): `registration` does not.
    beta_only = (_REGISTRATION_TEMPLATE, _ME_REGISTRATION_TEMPLATE)
    templates = [t if root == "beta" or t not in beta_only else t[:-1] for t in _TEMPLATES]
    for index, segment in enumerate(segments):
        fits = any(
            len(t) > index
            and (t[index] == segment or (t[index] is None and segment))
            and all(t[i] is None or t[i] == segments[i] for i in range(index))
            for t in templates
        )
        if not fits:
            return segment
    return segments[-1] if segments else root
