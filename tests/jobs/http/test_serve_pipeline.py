"""`meetreg serve` with a real worker: what comes in over HTTP gets registered."""

from __future__ import annotations

import redis
from cli_helpers import wait_until
from pipeline_helpers import ORGANIZER, UPN, posts
from serve_helpers import Served, bearer

from worker.simulator import SimulatorServer
from worker.store.outcome_store import OutcomeStore


def test_requests_posted_to_the_intake_are_registered_once(
    served: Served, worker: None, sim: SimulatorServer, redis_client: redis.Redis
) -> None:
    for meeting in ("m-1", "m-2"):
        sim.state.add_meeting(ORGANIZER, meeting)
    items = [
        {"user_id": ORGANIZER, "meeting_id": "m-1"},
        {"user_id": UPN, "meeting_id": "m-2", "allowed_registrant": "organization"},
        {"user_id": ORGANIZER, "meeting_id": "m-1"},
    ]
    answer = served.http.post("/api/registrations", json=items, headers=bearer())
    assert answer.status_code == 202
    batch_id = answer.json()["batch_id"]
    store = OutcomeStore(redis_client)
    wait_until(lambda: store.batch_status(batch_id).finished, timeout_s=30, what="the batch")

    rows = list(store.iter_rows(batch_id, 3))
    assert [row.status for row in rows] == ["created", "created", "skipped"]
    assert sim.state.registration("m-2")["allowedRegistrant"] == "organization"
    assert posts(sim) == 2  # one per meeting; the repeated row made no call


def test_health_is_200_once_a_worker_beats(
    served: Served, worker: None, redis_client: redis.Redis
) -> None:
    def healthy() -> bool:
        return served.http.get("/healthz").status_code == 200

    wait_until(healthy, timeout_s=30, what="a healthy /healthz")
    assert served.http.get("/healthz").json()["workers"] >= 1
