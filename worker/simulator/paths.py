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

`root` is `beta` or `v1.0`: meetreg registers on beta and reads calendars on v1.0, and one
table serves both, except that registration is beta-only, as at Graph: under v1.0 its path
is unknown, so a client that registers on the wrong root fails here as it would there. A
path no template accepts is answered as Graph answers it: 400 `BadRequest`, "Resource not
found for the segment '<name>'." (not 404).
"""

from __future__ import annotations

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
)


@dataclass(frozen=True, slots=True)
class GraphRoute:
    """What a path under a root names; `methods` are the ones it allows. `item_id` is the
    meeting, event or subscription id, as the kind says. `me`: the path says `/me`, not
    `/users/{id}`, and `user_id` is whoever the delegated token acts for (empty here)."""

    # user, meetings, meeting, registration, events, event, subscriptions, subscription, batch
    kind: str
    methods: frozenset[str]
    user_id: str = ""
    item_id: str = ""
    me: bool = False

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
