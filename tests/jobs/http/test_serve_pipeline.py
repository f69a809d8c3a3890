"""`meetreg serve` with a real worker: what comes in over HTTP gets registered."""

from __future__ import annotations

import redis
from cli_helpers import wait_until
from pipeline_helpers import ORGANIZER, UPN, WEBINAR_ORGANIZER, posts
from serve_helpers import Served, bearer

from worker.simulator import SimulatorServer
from worker.simulator.webinars import new_webinar_id
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


def test_registrants_posted_to_the_intake_are_registered_once_with_their_answers(
    served: Served, worker: None, sim: SimulatorServer, redis_client: redis.Redis
) -> None:
    webinar_id = new_webinar_id()
    sim.state.add_webinar(
        webinar_id,
        WEBINAR_ORGANIZER,
        questions=[
            {"label": "jobTitle", "is_required": True},
            {
                "id": "q-size",
                "display_name": "Size",
                "answer_input_type": "singleChoice",
                "answer_choices": ["S", "M", "L"],
            },
        ],
    )
    ann = {"webinarId": webinar_id, "email": "ann@contoso.example", "firstName": "Ann"}
    items = [
        {**ann, "lastName": "Lee", "answers": {"jobTitle": "CTO", "q-size": "M"}},
        {
            "webinar_id": webinar_id,
            "email": "bo@contoso.example",
            "firstName": "Bo",
            "lastName": "Ek",
            "preferredTimezone": "Pacific Standard Time",
            "preferredLanguage": "en-US",
            "answers": {"jobTitle": "Chef"},
        },
        {**ann, "email": "ANN@contoso.example", "lastName": "Lee", "answers": {"jobTitle": "CTO"}},
    ]
    answer = served.http.post("/api/registrations", json=items, headers=bearer())
    assert answer.status_code == 202
    batch_id = answer.json()["batch_id"]
    store = OutcomeStore(redis_client)
    wait_until(lambda: store.batch_status(batch_id).finished, timeout_s=30, what="the batch")

    assert [row.status for row in store.iter_rows(batch_id, 3)] == [
        "registered",
        "registered",
        "skipped",  # ann again, whatever the case of her address
    ]
    made = {r["email"]: r for r in sim.state.webinar_registrations(webinar_id)}
    assert made.keys() == {"ann@contoso.example", "bo@contoso.example"}
    # Ann said neither: the server's MEETREG_WEBINAR_TIMEZONE and _LANGUAGE.
    ann_made, bo_made = made["ann@contoso.example"], made["bo@contoso.example"]
    assert (ann_made["preferredTimezone"], ann_made["preferredLanguage"]) == (
        "W. Europe Standard Time",
        "de-de",
    )
    assert (bo_made["preferredTimezone"], bo_made["preferredLanguage"]) == (
        "Pacific Standard Time",
        "en-us",
    )
    assert {a["questionId"]: a["value"] for a in ann_made["registrationQuestionAnswers"]} == {
        q["id"]: {"jobTitle": "CTO", "Size": "M"}[q.get("label") or q["displayName"]]
        for q in sim.state.webinar_call(
            lambda w: [x.to_graph() for x in w.get(webinar_id).questions]
        )
    }
    assert sim.state.webinar_duplicates() == 0


def test_health_is_200_once_a_worker_beats(
    served: Served, worker: None, redis_client: redis.Redis
) -> None:
    def healthy() -> bool:
        return served.http.get("/healthz").status_code == 200

    wait_until(healthy, timeout_s=30, what="a healthy /healthz")
    assert served.http.get("/healthz").json()["workers"] >= 1
