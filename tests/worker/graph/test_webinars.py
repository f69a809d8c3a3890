"""worker.graph.webinars over httpx.MockTransport: the webinar calls as sent, and each way
Graph may answer what its reference leaves open."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from worker.errors import GraphPermanent
from worker.graph import GraphClient
from worker.graph.webinars import WebinarClient

BASE = "https://graph.test/beta"
WEBINAR = "8d62b9a1-1c2d-4e5f-8a9b-0c1d2e3f4a5b@6e5d4c3b-2a19-4807-9f6e-5d4c3b2a1908"
ENCODED = WEBINAR.replace("@", "%40")
LISTING = f"{BASE}/solutions/virtualEvents/webinars/{ENCODED}/registrations"


def client(handler: Callable[[httpx.Request], httpx.Response]) -> WebinarClient:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return WebinarClient(GraphClient(http, BASE))


def registration(email: str, status: str = "registered", ours: str = "", rid: str = "r1") -> dict:
    return {
        "id": rid,
        "email": email,
        "status": status,
        "externalRegistrationInformation": {"referrer": "x", "registrationId": ours},
    }


def test_a_person_is_found_by_email_with_the_webinar_id_one_segment() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"value": [registration("ann@contoso.example")]})

    found = client(handler).find_registration(WEBINAR, "Ann@Contoso.example")
    assert found is not None and found.id == "r1" and found.kind == "registered"
    assert seen == [
        f"{BASE}/solutions/virtualEvents/webinars/{ENCODED}/registrations"
        "?$filter=email%20eq%20%27Ann%40Contoso.example%27"
    ]


def test_a_quote_in_an_email_is_doubled_in_the_filter() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params["$filter"])
        return httpx.Response(200, json={"value": []})

    assert client(handler).find_registration(WEBINAR, "o'neil@contoso.example") is None
    assert seen == ["email eq 'o''neil@contoso.example'"]


def test_where_filter_is_refused_the_registrations_are_listed_page_by_page() -> None:
    pages = {
        "1": {
            "value": [registration("bo@contoso.example", rid="r0")],
            "@odata.nextLink": f"{LISTING}?$skiptoken=2",
        },
        "2": {
            "value": [
                registration("ann@contoso.example", status="canceled", rid="r-old"),
                registration("ann@contoso.example", rid="r-theirs"),
                registration("ANN@contoso.example", ours="meetreg:b:1", rid="r-ours"),
            ]
        },
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if "$filter" in request.url.params:
            return httpx.Response(
                400,
                json={
                    "error": {
                        "code": "BadRequest",
                        "message": "Query option 'Filter' is not allowed.",
                    }
                },
            )
        return httpx.Response(200, json=pages["2" if "$skiptoken" in request.url.params else "1"])

    webinars = client(handler)
    ours = webinars.find_registration(WEBINAR, "ann@contoso.example", "meetreg:b:1")
    assert ours is not None and ours.id == "r-ours"  # ours first
    other = webinars.find_registration(WEBINAR, "ann@contoso.example", "meetreg:b:9")
    assert other is not None and other.id == "r-theirs"  # never the canceled one
    assert webinars.find_registration(WEBINAR, "cy@contoso.example") is None


def test_an_app_only_registration_answers_204_without_an_id() -> None:
    bodies: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(204)

    body = {
        "email": "ann@contoso.example",
        "externalRegistrationInformation": {"registrationId": "meetreg:b:1"},
    }
    made = client(handler).register(WEBINAR, body)
    assert (made.id, made.status, made.external_id) == ("", 204, "meetreg:b:1")
    assert bodies == [body]


def test_a_delegated_registration_answers_201_with_it() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json=registration("ann@contoso.example", rid="r9"))

    made = client(handler).register(WEBINAR, {"email": "ann@contoso.example"})
    assert (made.id, made.status, made.kind) == ("r9", 201, "registered")


def test_a_refusal_keeps_graphs_status_and_code() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            409, json={"error": {"code": "Conflict", "message": "Already registered."}}
        )

    with pytest.raises(GraphPermanent) as refused:
        client(handler).register(WEBINAR, {"email": "ann@contoso.example"})
    assert (refused.value.status, refused.value.code) == (409, "Conflict")


def test_a_cancel_is_a_post_and_404_means_nothing_there() -> None:
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path))
        return httpx.Response(204 if request.url.path.count("r1") else 404)

    webinars = client(handler)
    assert webinars.cancel_registration(WEBINAR, "r1").removed
    assert not webinars.cancel_registration(WEBINAR, "r2").removed
    assert seen[0] == (
        "POST",
        f"/beta/solutions/virtualEvents/webinars/{WEBINAR}/registrations/r1/cancel",
    )


def test_a_webinar_and_its_questions() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/questions"):
            return httpx.Response(
                200,
                json={
                    "value": [
                        {"id": "jobTitle", "label": "jobTitle", "isRequired": True},
                        {
                            "id": "q1",
                            "displayName": "Size",
                            "answerInputType": "singleChoice",
                            "answerChoices": ["s", "m"],
                        },
                    ]
                },
            )
        if "unknown" in request.url.path:
            return httpx.Response(404, json={"error": {"code": "NotFound", "message": "x"}})
        return httpx.Response(
            200, json={"id": WEBINAR, "status": "published", "audience": "everyone"}
        )

    webinars = client(handler)
    webinar = webinars.webinar(WEBINAR)
    assert webinar is not None and (webinar.status, webinar.audience) == ("published", "everyone")
    questions = webinars.questions(WEBINAR)
    assert [(q.id, q.kind, q.required, q.choices) for q in questions] == [
        ("jobTitle", "text", True, ()),
        ("q1", "singleChoice", False, ("s", "m")),
    ]
    assert webinars.webinar("unknown@x") is None
