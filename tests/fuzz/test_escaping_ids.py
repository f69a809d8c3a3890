"""Identifiers that try to escape their path segment never reach another Graph path.

Meeting and user ids are opaque to meetreg: `../`, `%2e%2e`, `?`, `#` and `/` inside one are
part of the id, percent-encoded into exactly one segment; control characters, spaces and
absurd lengths make the row invalid. Checked where it counts: at the simulator, which
records every path it is asked for.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from urllib.parse import unquote

import redis
from cli_helpers import command_env, meetreg
from pipeline_helpers import ORGANIZER

from worker.simulator import SimulatorServer

VICTIM = "11111111-2222-4333-8444-555555555555"
ESCAPING = [
    f"../../{VICTIM}/onlineMeetings/victim-meeting",
    "%2e%2e%2f%2e%2e%2fvictim",
    "..",
    ".",
    "a?$filter=x",
    "a#fragment",
    "a/b/c",
    "%2F",
    "m" * 2048,  # the longest id meetreg takes
]
INVALID = ["bad\x01id", "two words", "tab\tid", "x" * 2049]


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
