"""Every name meetreg uses in the outside world: Redis keys and Graph paths.

Redis keys (all under the prefix `meetreg:`):

    batch:{batch_id}        hash    the batch: total, source, created_at, operation (create |
                                    disable), undoes / undone_by, one counter per RowState,
                                    moved_ms (when a row last changed state, Redis' clock)
    rows:{batch_id}         hash    field = row seq (1-based), value = the row's JSON record
    stats:{batch_id}        hash    moved with the rows: `fail {http status|-} {Graph code}`
                                    = failed rows that failed so; `done {time to 10 s}` = rows
                                    that became final in those 10 s (the status page)
    working:{batch_id}      zset    the batch's rows running or retrying (seq), scored by when
                                    they entered that state (ms, Redis' clock); a row leaves it
                                    as it leaves those states (`meetreg status`: stalled?)
    batches                 zset    batch ids by creation time (ms)
    batches:open            zset    ids of the batches with rows not final yet, by when they
                                    were opened (ms): the gauge of batches in progress
    meeting:{meeting_key}   hash    idempotency record of one meeting, outlives batches:
                                    state, registration_id, batch_id, seq, posts, updated_at
                                    (an undo sets state disabled / already_disabled)
    lease:{meeting_key}     string  the worker token that may talk to Graph about the meeting
    inflight                zset    chunks a worker holds, scored by when its claim expires (ms)
    upn:{upn}               string  a UPN's objectId, cached
    workers                 zset    worker processes by their last heartbeat (ms)
    subscriptions           hash    field = Graph subscription id, value = its JSON record
    valve:{batch_id}        list    the batch's last rows that reached Graph: how each ended
                                    (the safety valve), newest first
    notification:{digest}   hash    one accepted change notification: what became of it
    rate:tat                string  the shared limiter's theoretical arrival time (GCRA)
    rate:pause_until        string  no request before this time (ms): a Retry-After, shared
    rate:state              hash    the adaptive rate: rate, since, mode, decided, how (see
                                    worker.ratelimit.limiter); expires when the limiter is idle
    rate:log                zset    the slots of the last few seconds, scored by their time (ms)
    rate:storm              list    what the 429s of the storm being measured saw
    nightly:lock            string  the nightly run in progress (its token), expires
    nightly:slot:{slot}     string  a scheduled nightly run claimed: one run per slot
    beat:nightly            hash    celery-redbeat's entry: definition, meta (last run)
    beat::schedule          zset    celery-redbeat's entries by when they are due
    beat::statics           set     celery-redbeat's entries that come from the config
    beat::lock              string  the leading `celery beat`'s token (celery-redbeat's lock)

`meeting_key` is a hash of the meeting id: ids are long and opaque, and a meeting is the
same meeting whichever user or batch names it.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from worker.errors import GraphPermanent

PREFIX = "meetreg:"
BATCHES = PREFIX + "batches"
OPEN_BATCHES = PREFIX + "batches:open"
INFLIGHT = PREFIX + "inflight"
WORKERS = PREFIX + "workers"
SUBSCRIPTIONS = PREFIX + "subscriptions"
RATE_TAT = PREFIX + "rate:tat"
RATE_PAUSE_UNTIL = PREFIX + "rate:pause_until"
RATE_STATE = PREFIX + "rate:state"
RATE_LOG = PREFIX + "rate:log"
RATE_STORM = PREFIX + "rate:storm"
QUEUE = "meetreg"
# The Redis lists kombu keeps the queue in: the queue's name for messages without a
# priority (all of ours), then one list per priority step (kombu's default steps 3, 6, 9).
QUEUE_LISTS = (QUEUE, *(f"{QUEUE}\x06\x16{step}" for step in (3, 6, 9)))
PROCESS_CHUNK_TASK = "meetreg.process_chunk"
HANDLE_CHANGE_TASK = "meetreg.handle_change"
HANDLE_LIFECYCLE_TASK = "meetreg.handle_lifecycle"
NIGHTLY_TASK = "meetreg.nightly"
NIGHTLY_LOCK = PREFIX + "nightly:lock"
# celery-redbeat names its keys from this prefix: entries as prefix + name, its own
# keys as prefix + ":schedule" and so on.
BEAT_PREFIX = PREFIX + "beat:"
BEAT_ENTRY = "nightly"
BEAT_LOCK = BEAT_PREFIX + ":lock"


def batch(batch_id: str) -> str:
    return f"{PREFIX}batch:{batch_id}"


def rows(batch_id: str) -> str:
    return f"{PREFIX}rows:{batch_id}"


def meeting_key(meeting_id: str) -> str:
    return hashlib.sha256(meeting_id.encode()).hexdigest()[:32]


def meeting(meeting_id: str) -> str:
    return f"{PREFIX}meeting:{meeting_key(meeting_id)}"


def lease(meeting_id: str) -> str:
    return f"{PREFIX}lease:{meeting_key(meeting_id)}"


def first_lines(batch_id: str) -> str:
    """The rows seen so far while a batch is written: row key -> first line (duplicates)."""
    return f"{PREFIX}lines:{batch_id}"


def stats(batch_id: str) -> str:
    return f"{PREFIX}stats:{batch_id}"


def working(batch_id: str) -> str:
    return f"{PREFIX}working:{batch_id}"


def valve(batch_id: str) -> str:
    return f"{PREFIX}valve:{batch_id}"


def notification(digest: str) -> str:
    return f"{PREFIX}notification:{digest}"


def nightly_slot(slot: str) -> str:
    return f"{PREFIX}nightly:slot:{slot}"


def upn(user_principal_name: str) -> str:
    return f"{PREFIX}upn:{user_principal_name.lower()}"


# Graph paths, relative to GRAPH_BASE_URL. Every id is one fully percent-encoded path segment.
DOT_SEGMENTS = frozenset({".", ".."})
"""Ids that no path can carry: `%2E` is `.` to any server that normalises URLs (RFC 3986,
6.2.2.2), which then reads `.` as "here" and `..` as "one step up", so
`/users/{id}/onlineMeetings/%2E%2E/registration` is `/users/{id}/registration`."""


def segment(value: str, name: str = "id") -> str:
    """Percent-encode `value` as exactly one path segment: `/`, `?`, `#`, `%` included.

    Raises GraphPermanent (code `InvalidPathSegment`, no status: nothing is sent) for `.`
    and `..`, whatever `name`d id they are: the last guard behind input validation, for
    ids that come from elsewhere (a Graph answer, a row stored before that validation).
    """
    if value in DOT_SEGMENTS:
        raise GraphPermanent(
            f"{name} {value!r} cannot be sent: a URL path reads it as a step, not an id",
            code="InvalidPathSegment",
        )
    return quote(value, safe="")


def organizer_path(user_id: str, *, me: bool = False) -> str:
    """Where an organizer's meetings hang: `/users/{id}`, or `/me` for a delegated token
    (the signed-in organizer; `user_id` is then not part of the path)."""
    return "/me" if me else f"/users/{segment(user_id, 'user id')}"


def registration_path(user_id: str, meeting_id: str, *, me: bool = False) -> str:
    return f"{online_meeting_path(user_id, meeting_id, me=me)}/registration"


def user_path(user_id: str) -> str:
    return f"/users/{segment(user_id, 'user id')}"


def online_meetings_path(user_id: str, *, me: bool = False) -> str:
    return f"{organizer_path(user_id, me=me)}/onlineMeetings"


def online_meeting_path(user_id: str, meeting_id: str, *, me: bool = False) -> str:
    return f"{online_meetings_path(user_id, me=me)}/{segment(meeting_id, 'meeting id')}"


# Under Graph's v1.0 (Settings.graph_v1_base_url): calendar events and their subscriptions.
SUBSCRIPTIONS_PATH = "/subscriptions"


def events_path(user_id: str) -> str:
    return f"{user_path(user_id)}/events"


def event_path(user_id: str, event_id: str) -> str:
    return f"{events_path(user_id)}/{segment(event_id, 'event id')}"


def events_resource(user_id: str) -> str:
    """A subscription's `resource`: relative to the version, without the leading slash."""
    return f"users/{segment(user_id, 'user id')}/events"


def subscription_path(subscription_id: str) -> str:
    return f"{SUBSCRIPTIONS_PATH}/{segment(subscription_id, 'subscription id')}"


# Teams webinars (Graph's virtual events); a webinar's id holds an "@": one encoded segment.
WEBINARS_PATH = "/solutions/virtualEvents/webinars"


def webinar_path(webinar_id: str) -> str:
    return f"{WEBINARS_PATH}/{segment(webinar_id, 'webinar id')}"


def webinar_registrations_path(webinar_id: str) -> str:
    return f"{webinar_path(webinar_id)}/registrations"


def webinar_registration_path(webinar_id: str, registration_id: str) -> str:
    return f"{webinar_registrations_path(webinar_id)}/{segment(registration_id, 'registration id')}"


def webinar_publish_path(webinar_id: str) -> str:
    return f"{webinar_path(webinar_id)}/publish"


WEBINAR_ROLES = ("organizer", "coOrganizer")


def webinars_by_role_path(role: str) -> str:
    """The signed-in user's webinars in `role` (organizer, coOrganizer): delegated only."""
    if role not in WEBINAR_ROLES:
        raise ValueError(f"a webinar role is one of {', '.join(WEBINAR_ROLES)}, not {role!r}")
    return f"{WEBINARS_PATH}/getByUserRole(role='{role}')"
