"""Identifiers that try to escape their path segment never reach another Graph path.

Meeting and user ids are opaque to meetreg: `../`, `%2e%2e`, `?`, `#` and `/` inside one are
part of the id, percent-encoded into exactly one segment; control characters, spaces and
absurd lengths make the row invalid, and so does an id that is `.` or `..` whole: encoded
or not, a normalising server reads it as a path step. Checked where it counts: at the
simulator, which records every path it is asked for.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
import redis
from cli_helpers import command_env, meetreg
from pipeline_helpers import ORGANIZER

from worker import keys
from worker.errors import GraphPermanent
from worker.graph import GraphClient
from worker.simulator import SimulatorServer

VICTIM = "11111111-2222-4333-8444-555555555555"
ESCAPING = [
    f"../../{VICTIM}/onlineMeetings/victim-meeting",
    "%2e%2e%2f%2e%2e%2fvictim",
    "...",
    "%2E%2E",
    "a?$filter=x",
    "a#fragment",
    "a/b/c",
    "%2F",
    "m" * 2048,  # the longest id meetreg takes
]
INVALID = ["bad\x01id", "two words", "tab\tid", "x" * 2049, "..", "."]


def test_escaping_ids_stay_in_their_segment_and_never_touch_another_path(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    sim.state.add_user(VICTIM)
    sim.state.add_meeting(VICTIM, "victim-meeting")
    for meeting_id in ESCAPING:
        sim.state.add_meeting(ORGANIZER, meeting_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["user_id", "meeting_id"])
    for meeting_id in [*ESCAPING, *INVALID]:
        writer.writerow([ORGANIZER, meeting_id])
    writer.writerow([f"../{VICTIM}", "victim-meeting"])
    path = tmp_path / "escaping.csv"
    path.write_text(out.getvalue())

    env = command_env(**sim.env(), REDIS_URL=redis_url, MEETREG_RATE_LIMIT="1000")
    result = meetreg("run", str(path), "--batch-id", "escape", env=env)
    assert result.returncode == 1  # the invalid rows
    report = list(csv.DictReader(io.StringIO(meetreg("report", "escape", env=env).stdout)))
    statuses = [row["status"] for row in report]
    assert statuses == ["created"] * len(ESCAPING) + ["invalid"] * (len(INVALID) + 1)
    dots = [row["error"] for row in report if row["meeting_id"] in (".", "..")]
    assert len(dots) == 2 and all("path step" in error for error in dots)

    assert sim.state.registration("victim-meeting") is None
    assert set(sim.state.creations) == set(ESCAPING)
    prefix = f"/beta/users/{ORGANIZER}/onlineMeetings/"
    for _method, raw_path, _status in sim.state.requests:
        if "onlineMeetings" not in raw_path:
            continue
        assert raw_path.startswith(prefix), raw_path
        segment, _, rest = raw_path[len(prefix) :].partition("/")
        assert rest in ("registration", ""), raw_path
        assert "?" not in segment and "#" not in segment
        assert unquote(segment) in ESCAPING
        assert VICTIM not in raw_path.replace(segment, "")


PATH_BUILDERS = {
    "user": lambda bad: keys.user_path(bad),
    "meetings of user": lambda bad: keys.online_meetings_path(bad),
    "meeting": lambda bad: keys.online_meeting_path(ORGANIZER, bad),
    "registration of meeting": lambda bad: keys.registration_path(ORGANIZER, bad),
    "registration of user": lambda bad: keys.registration_path(bad, "m-1"),
    "events of user": lambda bad: keys.events_path(bad),
    "event": lambda bad: keys.event_path(ORGANIZER, bad),
    "subscription resource": lambda bad: keys.events_resource(bad),
    "subscription": lambda bad: keys.subscription_path(bad),
}


@pytest.mark.parametrize("bad", [".", ".."])
@pytest.mark.parametrize("build", PATH_BUILDERS.values(), ids=PATH_BUILDERS.keys())
def test_no_path_is_built_with_a_dot_segment_id(build, bad: str) -> None:
    with pytest.raises(GraphPermanent) as caught:
        build(bad)
    assert caught.value.code == "InvalidPathSegment"
    assert caught.value.status is None


def test_a_dot_segment_id_from_elsewhere_fails_its_call_without_sending_it() -> None:
    """A row stored before validation refused such ids, or an id Graph handed back."""
    sent: list[httpx.Request] = []

    def graph(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(201)

    http = httpx.Client(transport=httpx.MockTransport(graph))
    client = GraphClient(http, "https://graph.example/beta")
    with pytest.raises(GraphPermanent) as caught:
        client.create_registration(ORGANIZER, "..", "everyone")
    assert "meeting id '..'" in caught.value.describe()
    assert sent == []
