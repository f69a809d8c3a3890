"""Ids and small readers shared by the pipeline tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import redis

from worker.models import RowRecord
from worker.runtime import Runtime
from worker.settings import Settings, load_settings
from worker.simulator import SimulatorServer
from worker.simulator.webinars import new_webinar_id
from worker.store.records import BatchStatus

ORGANIZER = "0f3a9c2e-5b7d-4e1f-9a8b-6c5d4e3f2a1b"
NO_POLICY_USER = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
UPN = "organizer@contoso.example"
HEADER = "user_id,meeting_id,allowed_registrant\n"

Batch = Callable[..., str]
Work = Callable[[str], BatchStatus]
Undo = Callable[[str], str]


def rows(runtime: Runtime, batch_id: str) -> list[RowRecord]:
    total = runtime.store.batch_status(batch_id).total
    return list(runtime.store.iter_rows(batch_id, total))


def only_row(runtime: Runtime, batch_id: str) -> RowRecord:
    (row,) = rows(runtime, batch_id)
    return row


def posts(sim: SimulatorServer) -> int:
    """POSTs of a registration the simulator answered, whatever the answer (a $batch
    envelope is not one; its items are)."""
    return sum(
        1
        for method, path, _ in sim.state.requests
        if method == "POST" and path.endswith("/registration")
    )


def fast_settings(redis_url: str, **overrides: object) -> Settings:
    """Settings for tests: the environment the `sim` fixture set, and short waits."""
    values: dict[str, object] = {
        "redis_url": redis_url,
        "backoff_base_s": 0.02,
        "request_timeout_s": 1.0,
        "rate_limit_per_s": 1000,
        "max_attempts": 4,
    }
    values.update(overrides)
    return load_settings(**values)


def redis_dump(client: redis.Redis) -> bytes:
    """Every key and every value in the database, as bytes."""
    parts: list[bytes] = []
    for key in client.scan_iter("*"):
        parts.append(key)
        kind = client.type(key).decode()
        if kind == "string":
            parts.append(client.get(key) or b"")
        elif kind == "hash":
            for field, value in client.hgetall(key).items():
                parts += [field, value]
        elif kind == "list":
            parts += client.lrange(key, 0, -1)
        elif kind == "set":
            parts += list(client.smembers(key))
        elif kind == "zset":
            parts += [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            parts += [json.dumps(entry, default=str).encode() for entry in client.xrange(key)]
    return b"\n".join(parts)


def meetings_csv(sim: SimulatorServer, path: Path, meeting_ids: list[str]) -> Path:
    """The meetings added to the simulator under ORGANIZER, and a CSV of them at `path`."""
    lines = ["user_id,meeting_id"]
    for meeting_id in meeting_ids:
        sim.state.add_meeting(ORGANIZER, meeting_id)
        lines.append(f"{ORGANIZER},{meeting_id}")
    path.write_text("\n".join(lines) + "\n")
    return path


WEBINAR_ORGANIZER = "5e7c1d2a-3b4f-4a6e-9c8d-7f6e5d4c3b2a"


def registrants_csv(
    sim: SimulatorServer, path: Path, people: int, *, webinars: int = 1
) -> tuple[Path, list[str]]:
    """`webinars` published webinars added to the simulator, and a CSV at `path` of
    `people` registrants spread over them, one email each; returns the path and the
    webinars' ids."""
    ids = [new_webinar_id() for _ in range(webinars)]
    sim.state.add_webinars({"webinar_id": w, "organizer_id": WEBINAR_ORGANIZER} for w in ids)
    lines = ["webinar_id,email,first_name,last_name"]
    for i in range(people):
        lines.append(f"{ids[i % webinars]},person{i}@contoso.example,Person,No{i}")
    path.write_text("\n".join(lines) + "\n")
    return path, ids
