"""worker.simulator.webinar_routes over HTTPS: the Teams webinar endpoints under both roots,
their answers to application and delegated tokens, paging, the modes, `$batch` and faults."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sim_helpers import ORGANIZER, ORGANIZER_UPN, OTHER_USER, Graph, delegated_token, error_of

from worker.simulator import SimulatorControl, SimulatorServer

WEBINAR = "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d@7d3f1e2a-5b6c-4d8e-9f01-23456789abcd"
ENCODED = WEBINAR.replace("@", "%40")
BASE = "/solutions/virtualEvents/webinars"
PERSON = {
    "firstName": "Grace",
    "lastName": "Hopper",
    "email": "grace@fabrikam.example",
    "preferredTimezone": "UTC",
    "preferredLanguage": "en-us",
}


def person(n: int | None = None, **changes: Any) -> dict[str, Any]:
    email = PERSON["email"] if n is None else f"person{n}@fabrikam.example"
    return {**PERSON, "email": email, **changes}


def register(graph: Graph, body: Any = PERSON, webinar: str = ENCODED, **kw: Any) -> httpx.Response:
    return graph.request("POST", f"{BASE}/{webinar}/registrations", json=body, **kw)


def as_user(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def webinar(sim: SimulatorServer) -> dict[str, Any]:
    return sim.state.add_webinar(WEBINAR, ORGANIZER, display_name="Launch")


@pytest.mark.parametrize("root", ["beta", "v1.0"])
@pytest.mark.parametrize("spelled", [WEBINAR, ENCODED])
def test_a_webinar_is_found_by_its_id_raw_or_percent_encoded_under_both_roots(
    sim, graph, webinar, root, spelled
):
    response = graph.request("GET", f"{BASE}/{spelled}", root=root)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == WEBINAR
    assert body["displayName"] == "Launch"
    assert body["status"] == "published"
    assert body["audience"] == "everyone"
    assert body["createdBy"]["user"]["id"] == ORGANIZER


def test_an_unknown_webinar_is_not_found_and_an_unknown_segment_a_bad_request(sim, graph):
    missing = graph.request("GET", f"{BASE}/nobody%40nowhere")
    unknown = graph.request("GET", "/solutions/virtualEvents/townhalls")
    assert (missing.status_code, error_of(missing)["code"]) == (404, "NotFound")
    assert unknown.status_code == 400
    assert error_of(unknown)["message"] == "Resource not found for the segment 'townhalls'."


def test_registration_configuration_and_questions(sim, graph):
    sim.state.add_webinar(
        WEBINAR,
        ORGANIZER,
        capacity=10,
        manual_approval=True,
        questions=[
            {"id": "q1", "label": "jobTitle", "is_required": True},
            {"id": "q2", "display_name": "Why?", "answer_input_type": "multilineText"},
        ],
    )
    configuration = graph.request("GET", f"{BASE}/{ENCODED}/registrationConfiguration")
    questions = graph.request("GET", f"{BASE}/{WEBINAR}/registrationConfiguration/questions")

    assert configuration.status_code == 200
    assert {k: configuration.json()[k] for k in ("capacity", "isManualApprovalEnabled")} == {
        "capacity": 10,
        "isManualApprovalEnabled": True,
    }
    assert configuration.json()["isWaitlistEnabled"] is False
    assert configuration.json()["registrationWebUrl"].startswith("https://")
    assert [(q["id"], q["isRequired"]) for q in questions.json()["value"]] == [
        ("q1", True),
        ("q2", False),
    ]
    assert questions.json()["value"][1]["answerInputType"] == "multilineText"


def test_an_application_registration_is_204_without_a_body_and_kept(sim, graph, webinar):
    external = {"referrer": "meetreg", "registrationId": "batch-1:7"}
    response = register(graph, person(externalRegistrationInformation=external))

    assert response.status_code == 204
    assert response.content == b""
    [kept] = sim.state.webinar_registrations(WEBINAR)
    assert kept["userId"] is None
    assert kept["externalRegistrationInformation"] == external
    one = graph.request("GET", f"{BASE}/{ENCODED}/registrations/{kept['id']}")
    assert one.status_code == 200
    assert one.json()["email"] == PERSON["email"]


def test_a_delegated_registration_is_201_with_the_registration(sim, http, graph, webinar):
    token = delegated_token(sim, http, OTHER_USER, "bob@contoso.example")
    response = register(graph, headers=as_user(token))

    assert response.status_code == 201
    body = response.json()
    assert body["userId"] == OTHER_USER
    assert body["status"] == "registered"
    assert sim.state.webinar_registrations(WEBINAR)[0]["id"] == body["id"]


@pytest.mark.parametrize(
    ("seeded", "body", "status", "words"),
    [
        ({"status": "draft"}, PERSON, 400, "draft"),
        ({"audience": "organization"}, PERSON, 403, "organization"),
        ({}, {k: v for k, v in PERSON.items() if k != "lastName"}, 400, "'lastName'"),
        ({"capacity": 0}, PERSON, 400, "capacity"),
    ],
)
def test_registration_rules_answer_graph_errors(sim, graph, seeded, body, status, words):
    sim.state.add_webinar(WEBINAR, ORGANIZER, **seeded)
    response = register(graph, body)
    assert response.status_code == status
    assert words in error_of(response)["message"]
    assert sim.state.webinar_registrations(WEBINAR) == []


@pytest.mark.parametrize(
    ("mode", "second_status", "kept"), [("409", 409, 1), ("400", 400, 1), ("silent", 204, 1)]
)
def test_conflict_modes_that_keep_one_registration(sim, graph, webinar, mode, second_status, kept):
    sim.state.set_webinar_conflict(mode)
    first = register(graph)
    second = register(graph, person(email="Grace@Fabrikam.example"))

    assert first.status_code == 204
    assert second.status_code == second_status
    assert len(sim.state.webinar_registrations(WEBINAR)) == kept
    assert sim.state.webinar_duplicates() == 0
    assert sim.state.stats()["webinar_registration_posts"] == 2


def test_the_duplicate_mode_registers_twice_and_the_count_shows_it(sim, graph, webinar):
    sim.state.set_webinar_conflict("duplicate")
    statuses = [register(graph).status_code, register(graph).status_code]
    assert statuses == [204, 204]
    assert len(sim.state.webinar_registrations(WEBINAR)) == 2
    assert sim.state.webinar_duplicates() == 1
    assert sim.state.stats()["webinar_duplicates"] == 1


def test_silent_mode_gives_a_delegated_caller_the_existing_registration(sim, http, graph, webinar):
    sim.state.set_webinar_conflict("silent")
    bearer = as_user(delegated_token(sim, http, OTHER_USER, "bob@contoso.example"))
    first = register(graph, headers=bearer)
    again = register(graph, headers=bearer)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]


def test_cancel_is_204_idempotent_and_a_new_post_registers_again(sim, graph, webinar):
    register(graph)
    [first] = sim.state.webinar_registrations(WEBINAR)
    cancel = f"{BASE}/{ENCODED}/registrations/{first['id']}/cancel"

    answers = [graph.request("POST", cancel).status_code, graph.request("POST", cancel).status_code]
    again = register(graph)
    unknown = graph.request("POST", f"{BASE}/{ENCODED}/registrations/nope/cancel")

    assert answers == [204, 204]
    assert again.status_code == 204
    listed = graph.request("GET", f"{BASE}/{ENCODED}/registrations").json()["value"]
    assert [r["status"] for r in listed] == ["canceled", "registered"]
    assert listed[0]["cancelationDateTime"] is not None
    assert unknown.status_code == 404
    assert graph.request("GET", f"{BASE}/{ENCODED}/registrations/nope").status_code == 404
    assert sim.state.webinar_duplicates() == 0


def test_registrations_come_in_pages_of_100_linked_absolutely(sim, graph, webinar):
    sim.state.set_webinar_conflict("duplicate")  # no look-ups needed to seed 250
    for n in range(250):
        assert register(graph, person(n)).status_code == 204

    pages = [graph.request("GET", f"{BASE}/{ENCODED}/registrations", root="v1.0").json()]
    while "@odata.nextLink" in pages[-1]:
        link = pages[-1]["@odata.nextLink"]
        assert link.startswith(f"{graph.sim.https_url}/v1.0{BASE}/")
        response = graph.http.get(link, headers=as_user(graph.token))
        pages.append(response.json())

    assert [len(page["value"]) for page in pages] == [100, 100, 50]
    emails = [r["email"] for page in pages for r in page["value"]]
    assert emails == [f"person{n}@fabrikam.example" for n in range(250)]


def test_a_filter_finds_by_email_or_user_and_may_be_refused(sim, http, graph, webinar):
    register(graph, person(email="o'brien@fabrikam.example"))
    register(graph, person(1))
    path = f"{BASE}/{ENCODED}/registrations"

    by_email = graph.request(
        "GET", path, params={"$filter": "email eq 'O''Brien@fabrikam.example'"}
    )
    other = graph.request("GET", path, params={"$filter": "lastName eq 'Hopper'"})
    sim.state.set_webinar_filter(False)
    refused = graph.request("GET", path, params={"$filter": "email eq 'person1@fabrikam.example'"})
    listed = graph.request("GET", path)

    assert [r["email"] for r in by_email.json()["value"]] == ["o'brien@fabrikam.example"]
    assert other.status_code == 400
    assert refused.status_code == 400
    assert error_of(refused)["message"].startswith("Query option 'Filter' is not allowed")
    assert len(listed.json()["value"]) == 2


def test_publish_and_cancel_belong_to_the_organizer_signed_in(sim, http, graph):
    sim.state.add_webinar(WEBINAR, ORGANIZER, status="draft")
    publish = f"{BASE}/{ENCODED}/publish"
    as_application = graph.request("POST", publish)
    someone_else = as_user(delegated_token(sim, http, OTHER_USER, "bob@contoso.example"))
    not_theirs = graph.request("POST", publish, headers=someone_else)
    organizer = as_user(delegated_token(sim, http, ORGANIZER, ORGANIZER_UPN))
    published = [graph.request("POST", publish, headers=organizer).status_code for _ in "ab"]
    status_after_publish = graph.request("GET", f"{BASE}/{ENCODED}").json()["status"]
    canceled = graph.request("POST", f"{BASE}/{ENCODED}/cancel", headers=organizer)
    republished = graph.request("POST", publish, headers=organizer)

    assert as_application.status_code == 403
    assert "Application permission is not supported" in error_of(as_application)["message"]
    assert not_theirs.status_code == 403
    assert published == [204, 204]
    assert status_after_publish == "published"
    assert canceled.status_code == 204
    assert republished.status_code == 400
    assert register(graph).status_code == 400  # canceled: no more registrations


def test_webinar_collections_by_role_and_token(sim, http, graph, webinar):
    sim.state.add_webinar("other@webinar", OTHER_USER, co_organizer_ids=[ORGANIZER])
    by_user = graph.request(
        "GET", f"{BASE}/getByUserIdAndRole(userId='{ORGANIZER}',role='organizer')"
    )
    co = graph.request("GET", f"{BASE}/getByUserIdAndRole(userId='{ORGANIZER}',role='coOrganizer')")
    by_role_app = graph.request("GET", f"{BASE}/getByUserRole(role='organizer')")
    everything = graph.request("GET", BASE, root="v1.0")
    organizer = as_user(delegated_token(sim, http, ORGANIZER, ORGANIZER_UPN))
    by_role = graph.request("GET", f"{BASE}/getByUserRole(role=%27organizer%27)", headers=organizer)
    everything_delegated = graph.request("GET", BASE, headers=organizer)

    assert [w["id"] for w in by_user.json()["value"]] == [WEBINAR]
    assert [w["id"] for w in co.json()["value"]] == ["other@webinar"]
    assert by_role_app.status_code == 403
    assert sorted(w["id"] for w in everything.json()["value"]) == sorted([WEBINAR, "other@webinar"])
    assert [w["id"] for w in by_role.json()["value"]] == [WEBINAR]
    assert everything_delegated.status_code == 403


def test_batch_items_reach_webinars_by_relative_urls(sim, graph, webinar):
    items = [
        {
            "id": str(n),
            "method": "POST",
            "url": f"{BASE}/{ENCODED}/registrations",
            "headers": {"Content-Type": "application/json"},
            "body": person(n),
        }
        for n in range(3)
    ]
    items.append({"id": "look", "method": "GET", "url": f"{BASE.lstrip('/')}/{WEBINAR}"})
    response = graph.request("POST", "/$batch", json={"requests": items})

    answers = {a["id"]: a for a in response.json()["responses"]}
    assert [answers[str(n)]["status"] for n in range(3)] == [204, 204, 204]
    assert "body" not in answers["0"]
    assert answers["look"]["body"]["id"] == WEBINAR
    assert len(sim.state.webinar_registrations(WEBINAR)) == 3


def test_a_script_keyed_on_the_webinar_faults_its_calls(sim, graph, webinar):
    sim.state.script(WEBINAR, [{"status": 429, "retry_after": "0.5"}, {"status": 503}])
    throttled = register(graph)
    unavailable = graph.request("GET", f"{BASE}/{WEBINAR}")

    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "0.5")
    assert unavailable.status_code == 503
    assert sim.state.webinar_registrations(WEBINAR) == []  # nothing committed
    assert register(graph).status_code == 204


def test_commit_then_timeout_on_a_registration_post_commits(sim, graph, webinar):
    sim.state.set_faults(stall_s=2.0)
    sim.state.script(WEBINAR, [{"action": "commit_then_timeout"}, {"action": "commit_then_500"}])
    with pytest.raises(httpx.ReadTimeout):
        register(graph, timeout=0.3)
    after_500 = register(graph, person(1))

    assert after_500.status_code == 500
    emails = [r["email"] for r in sim.state.webinar_registrations(WEBINAR)]
    assert emails == [PERSON["email"], "person1@fabrikam.example"]


def test_the_control_api_seeds_sets_modes_and_inspects_webinars(sim, graph):
    with SimulatorControl(sim.https_url, sim.ca_path) as control:
        seeded = control.add_webinar(WEBINAR, ORGANIZER, capacity=5)
        added = control.add_webinars(
            [{"webinar_id": f"bulk-{n}@webinar", "organizer_id": ORGANIZER} for n in range(100)]
        )
        control.set_webinar_conflict("duplicate")
        control.set_webinar_filter(False)
        codes = [register(graph).status_code for _ in range(2)]
        filtered = graph.request(
            "GET", f"{BASE}/{ENCODED}/registrations", params={"$filter": "email eq 'x'"}
        )
        registrations = control.webinar_registrations(WEBINAR)
        duplicates = control.webinar_duplicates()
        stats = control.stats()
        control.reset()

        assert seeded["id"] == WEBINAR
        assert added == 100
        assert codes == [204, 204]
        assert filtered.status_code == 400
        assert len(registrations) == 2
        assert duplicates == 1
        assert (stats["webinars"], stats["webinar_registration_posts"]) == (101, 2)
        assert control.stats()["webinars"] == 0
        fresh = Graph(sim, graph.http)  # reset forgot the tokens too
        assert register(fresh).status_code == 404  # and the webinars
        with pytest.raises(httpx.HTTPStatusError):
            control.set_webinar_conflict("replace")


def test_a_retry_after_binds_the_person_it_was_given_for_not_the_whole_webinar(sim, graph, webinar):
    sim.state.script(WEBINAR, [{"status": 429, "retry_after": "30"}])
    assert register(graph, person(1)).status_code == 429
    # Another person of the same webinar, sent meanwhile: not the throttled caller back.
    assert register(graph, person(2)).status_code == 204
    lookup = graph.request(
        "GET",
        f"{BASE}/{ENCODED}/registrations",
        params={"$filter": "email eq 'person3@fabrikam.example'"},
    )
    assert lookup.status_code == 200
    assert sim.state.early_retries() == []
    # The same person back before the 30 s: early.
    assert register(graph, person(1)).status_code == 204
    assert [e.key for e in sim.state.early_retries()] == [f"{WEBINAR}/person1@fabrikam.example"]
