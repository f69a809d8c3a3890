"""worker.graph.client over httpx.MockTransport: requests as sent, answers as translated."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from worker.errors import GraphAuthError, GraphPermanent, GraphTransient
from worker.graph import (
    BearerAuth,
    GraphClient,
    Registration,
    StaticTokenSource,
    build_http_client,
)
from worker.settings import Settings
from worker.simulator.graph_routes import parse_join_url_filter

BASE = "https://graph.test/beta"
ORGANIZER = "0f3a9c2e-5b7d-4e1f-9a8b-6c5d4e3f2a1b"
MEETING = "MSo1N2Y5ZGFjYy03MWJmLTQ3NDMtYjQxMy01M2EdFGkdRWHJlQ"
REGISTRATION = {
    "@odata.context": "https://graph.test/beta/$metadata#registration",
    "@odata.type": "#microsoft.graph.externalMeetingRegistration",
    "id": "5f0c8a62-7f3a-4d0b-9b1e-2d4c6e8a0b1c",
    "allowedRegistrant": "everyone",
}

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class Script:
    """A MockTransport handler answering from a list, recording what it was sent."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        # A copy: BearerAuth resends the same Request object with a new header.
        copy = httpx.Request(
            request.method, request.url, headers=request.headers.copy(), content=request.read()
        )
        self.requests.append(copy)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


class FakeTokens:
    """A TokenSource handing out t1, t2, ... and recording what it was told was stale."""

    def __init__(self) -> None:
        self.issued = 0
        self.stale: list[str | None] = []
        self.current: str | None = None

    def token(self, *, stale: str | None = None) -> str:
        self.stale.append(stale)
        if self.current is None or stale == self.current:
            self.issued += 1
            self.current = f"t{self.issued}"
        return self.current


@pytest.fixture
def graph() -> Iterator[Callable[..., tuple[GraphClient, Script]]]:
    clients: list[GraphClient] = []

    def build(*answers: Answer, auth: httpx.Auth | None = None) -> tuple[GraphClient, Script]:
        script = Script(*answers)
        http = httpx.Client(
            transport=httpx.MockTransport(script),
            auth=auth or BearerAuth(StaticTokenSource("static-token")),
        )
        client = GraphClient(http, BASE)
        clients.append(client)
        return client, script

    yield build
    for client in clients:
        client.close()


def graph_error(
    status: int,
    code: str = "SomeCode",
    message: str = "Something went wrong.",
    headers: dict[str, str] | None = None,
    body_request_id: str | None = "body-request-id",
) -> httpx.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if body_request_id:
        error["innerError"] = {"request-id": body_request_id, "date": "2024-11-05T12:00:00"}
    return httpx.Response(status, json={"error": error}, headers=headers)


# Requests as sent --------------------------------------------------------------------------


def test_create_posts_an_external_registration_and_reads_the_answer(graph):
    client, script = graph(httpx.Response(201, json=REGISTRATION, headers={"request-id": "rid-1"}))

    registration = client.create_registration(ORGANIZER, MEETING, "everyone")

    assert registration == Registration(
        id=REGISTRATION["id"],
        kind="externalMeetingRegistration",
        allowed_registrant="everyone",
        request_id="rid-1",
        status=201,
    )
    sent = script.last
    assert sent.method == "POST"
    assert sent.url.raw_path == (
        f"/beta/users/{ORGANIZER}/onlineMeetings/{MEETING}/registration".encode()
    )
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Authorization"] == "Bearer static-token"
    assert json.loads(sent.content) == {
        "@odata.type": "#microsoft.graph.externalMeetingRegistration",
        "allowedRegistrant": "everyone",
    }


def test_create_accepts_200_as_well_as_201(graph):
    client, _ = graph(httpx.Response(200, json=REGISTRATION))

    assert client.create_registration(ORGANIZER, MEETING, "organization").status == 200


def test_every_request_carries_a_fresh_client_request_id(graph):
    client, script = graph(
        httpx.Response(200, json=REGISTRATION),
        httpx.Response(200, json=REGISTRATION),
        httpx.Response(200, json={"id": ORGANIZER}),
    )

    client.get_registration(ORGANIZER, MEETING)
    client.get_registration(ORGANIZER, MEETING)
    client.resolve_user_id("adele@contoso.example")

    ids = [request.headers["client-request-id"] for request in script.requests]
    assert len(set(ids)) == 3
    assert all(uuid.UUID(value).version == 4 for value in ids)


def test_ids_are_percent_encoded_as_single_path_segments(graph):
    awkward_user = "a/b?c#d%e:f@g"
    awkward_meeting = "MSp/x?y#z%20:1@thread.v2"
    client, script = graph(httpx.Response(404, json={"error": {"code": "NotFound"}}))

    client.get_registration(awkward_user, awkward_meeting)

    assert script.last.url.raw_path == (
        b"/beta/users/a%2Fb%3Fc%23d%25e%3Af%40g"
        b"/onlineMeetings/MSp%2Fx%3Fy%23z%2520%3A1%40thread.v2/registration"
    )


def test_resolve_user_id_selects_the_id_of_the_upn(graph):
    client, script = graph(httpx.Response(200, json={"id": ORGANIZER}))

    assert client.resolve_user_id("adele.vance@contoso.example") == ORGANIZER
    assert script.last.url.raw_path == b"/beta/users/adele.vance%40contoso.example?$select=id"


def test_find_meeting_id_filters_on_the_join_link_with_quotes_doubled(graph):
    join_url = (
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0"
        "?context=%7b%22Tid%22%3a%22t%22%7d&name=O'Brien's meeting"
    )
    client, script = graph(httpx.Response(200, json={"value": [{"id": MEETING}]}))

    assert client.find_meeting_id(ORGANIZER, join_url) == MEETING

    sent = script.last
    assert sent.url.raw_path.startswith(f"/beta/users/{ORGANIZER}/onlineMeetings?$filter=".encode())
    assert b"+" not in sent.url.query and b" " not in sent.url.query  # spaces as %20
    expression = sent.url.params["$filter"]
    assert expression == (
        "JoinWebUrl eq 'https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0"
        "?context=%7b%22Tid%22%3a%22t%22%7d&name=O''Brien''s meeting'"
    )
    assert parse_join_url_filter(expression) == join_url  # what the simulator reads back


def test_find_meeting_id_without_a_match_is_meeting_not_found(graph):
    client, _ = graph(httpx.Response(200, json={"value": []}, headers={"request-id": "rid-9"}))

    with pytest.raises(GraphPermanent) as caught:
        client.find_meeting_id(ORGANIZER, "https://teams.microsoft.com/l/meetup-join/x")

    error = caught.value
    assert (error.status, error.code, error.request_id) == (404, "MeetingNotFound", "rid-9")
    assert error.message == "no meeting with this join link under this organizer"


# Answers as read ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("odata_type", "kind"),
    [
        ("#microsoft.graph.externalMeetingRegistration", "externalMeetingRegistration"),
        ("#microsoft.graph.meetingRegistration", "meetingRegistration"),
        ("microsoft.graph.meetingRegistration", "meetingRegistration"),
        (None, ""),
    ],
)
def test_get_registration_reports_its_kind(graph, odata_type, kind):
    body = {key: value for key, value in REGISTRATION.items() if key != "@odata.type"}
    if odata_type:
        body["@odata.type"] = odata_type
    client, _ = graph(httpx.Response(200, json=body))

    registration = client.get_registration(ORGANIZER, MEETING)

    assert registration is not None
    assert (registration.kind, registration.status) == (kind, 200)


def test_get_registration_is_none_on_404(graph):
    client, _ = graph(graph_error(404, "NotFound", "The meeting has no registration."))

    assert client.get_registration(ORGANIZER, MEETING) is None


def test_delete_registration_sends_delete_and_tells_removed_from_not_there(graph):
    client, script = graph(
        httpx.Response(204, headers={"request-id": "r-1"}),
        graph_error(404, "NotFound", "The meeting has no registration."),
    )

    removed = client.delete_registration(ORGANIZER, MEETING)
    gone = client.delete_registration(ORGANIZER, MEETING)

    assert (removed.removed, removed.status, removed.request_id) == (True, 204, "r-1")
    assert (gone.removed, gone.status) == (False, 404)
    assert script.last.method == "DELETE"
    assert script.last.url.path == f"/beta/users/{ORGANIZER}/onlineMeetings/{MEETING}/registration"


def test_delete_registration_refused_is_permanent_and_an_outage_ambiguous(graph):
    client, _ = graph(
        graph_error(403, "Forbidden", "No Application Access Policy found for this app"),
        httpx.ReadTimeout("timed out"),
    )

    with pytest.raises(GraphPermanent) as refused:
        client.delete_registration(ORGANIZER, MEETING)
    with pytest.raises(GraphTransient) as lost:
        client.delete_registration(ORGANIZER, MEETING)

    assert (refused.value.status, refused.value.code) == (403, "Forbidden")
    assert lost.value.ambiguous is True


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(201, text="<html>created</html>", headers={"content-type": "text/html"}),
        httpx.Response(201, json={"allowedRegistrant": "everyone"}),
        httpx.Response(201, json=["not", "an", "object"]),
        httpx.Response(202),
        httpx.Response(204),
    ],
)
def test_an_unreadable_success_on_create_is_ambiguous(graph, answer):
    client, _ = graph(answer)

    with pytest.raises(GraphTransient) as caught:
        client.create_registration(ORGANIZER, MEETING, "everyone")

    assert caught.value.ambiguous is True
    assert caught.value.status == answer.status_code


def test_an_unreadable_success_on_get_is_transient_and_not_ambiguous(graph):
    client, _ = graph(httpx.Response(200, text="oops"))

    with pytest.raises(GraphTransient) as caught:
        client.get_registration(ORGANIZER, MEETING)

    assert caught.value.ambiguous is False


# Errors as translated ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "retry_after_s", "throttled", "ambiguous"),
    [
        (429, {"Retry-After": "2.128"}, 2.128, True, False),
        (429, {"Retry-After": "7"}, 7.0, True, False),
        (429, {}, None, True, False),
        (503, {"Retry-After": "5"}, 5.0, True, True),
        (503, {}, None, False, True),
        (500, {}, None, False, True),
        (502, {}, None, False, True),
        (504, {}, None, False, True),
    ],
)
def test_throttling_and_server_errors_are_transient(
    graph, status, headers, retry_after_s, throttled, ambiguous
):
    client, _ = graph(graph_error(status, "TooBusy", headers={"request-id": "rid", **headers}))

    with pytest.raises(GraphTransient) as caught:
        client.create_registration(ORGANIZER, MEETING, "everyone")

    error = caught.value
    assert (error.status, error.code, error.request_id) == (status, "TooBusy", "rid")
    assert error.retry_after_s == retry_after_s
    assert error.throttled is throttled
    assert error.ambiguous is ambiguous


@pytest.mark.parametrize("status", [400, 403, 404, 405, 409, 410, 422])
def test_client_errors_are_permanent_with_code_message_and_request_id(graph, status):
    client, _ = graph(
        graph_error(status, "Forbidden", "No Application Access Policy found for this app.")
    )

    with pytest.raises(GraphPermanent) as caught:
        client.create_registration(ORGANIZER, MEETING, "everyone")

    error = caught.value
    assert (error.status, error.code) == (status, "Forbidden")
    assert error.message == "No Application Access Policy found for this app."
    assert error.request_id == "body-request-id"
    assert error.describe() == "Forbidden: No Application Access Policy found for this app."


def test_the_request_id_header_wins_over_the_body(graph):
    client, _ = graph(graph_error(400, headers={"request-id": "header-rid"}))

    with pytest.raises(GraphPermanent) as caught:
        client.create_registration(ORGANIZER, MEETING, "everyone")

    assert caught.value.request_id == "header-rid"


def test_without_any_request_id_the_client_request_id_is_kept(graph):
    client, script = graph(graph_error(400, body_request_id=None))

    with pytest.raises(GraphPermanent) as caught:
        client.create_registration(ORGANIZER, MEETING, "everyone")

    assert caught.value.request_id == script.last.headers["client-request-id"]


def test_a_long_multi_line_message_is_cut_to_one_short_line(graph):
    client, _ = graph(graph_error(400, message="First line.\n" + "x" * 2000))

    with pytest.raises(GraphPermanent) as caught:
        client.create_registration(ORGANIZER, MEETING, "everyone")

    message = caught.value.message
    assert "\n" not in message
    assert message.startswith("First line. xxx")
    assert len(message) <= 300


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(502, text="<html><body>Bad gateway</body></html>"),
        httpx.Response(502, json=["unexpected"]),
        httpx.Response(502, json={"error": "a string"}),
        httpx.Response(502, content=b"\xff\xfe not utf-8", headers={"content-type": "text/json"}),
    ],
)
def test_a_non_graph_error_body_still_gives_a_clear_error(graph, answer):
    client, _ = graph(answer)

    with pytest.raises(GraphTransient) as caught:
        client.create_registration(ORGANIZER, MEETING, "everyone")

    error = caught.value
    assert (error.status, error.code) == (502, None)
    assert error.message == "HTTP 502 Bad Gateway"
    assert error.ambiguous is True


def test_a_redirect_is_not_followed_and_is_permanent(graph):
    client, _ = graph(httpx.Response(302, headers={"Location": "https://elsewhere.test/"}))

    with pytest.raises(GraphPermanent) as caught:
        client.get_registration(ORGANIZER, MEETING)

    assert caught.value.status == 302


@pytest.mark.parametrize(
    ("exception", "ambiguous"),
    [
        (httpx.ConnectError, False),
        (httpx.ConnectTimeout, False),
        (httpx.PoolTimeout, False),
        (httpx.ReadTimeout, True),
        (httpx.WriteTimeout, True),
        (httpx.ReadError, True),
        (httpx.WriteError, True),
        (httpx.RemoteProtocolError, True),
        (httpx.ProxyError, True),
        (httpx.DecodingError, True),
    ],
)
def test_transport_failures_are_transient_and_ambiguous_once_sent(graph, exception, ambiguous):
    failure = exception("boom\nsecond line")
    client, script = graph(failure)

    with pytest.raises(GraphTransient) as caught:
        client.create_registration(ORGANIZER, MEETING, "everyone")

    error = caught.value
    assert error.ambiguous is ambiguous
    assert error.throttled is False
    assert error.status is None
    assert error.__cause__ is failure
    assert error.message == f"Graph request failed ({exception.__name__}: boom second line)"
    assert error.request_id == script.last.headers["client-request-id"]


# Tokens ------------------------------------------------------------------------------------


def test_a_401_gets_a_fresh_token_and_the_request_is_resent(graph):
    tokens = FakeTokens()
    client, script = graph(
        graph_error(401, "InvalidAuthenticationToken", "Access token has expired."),
        httpx.Response(201, json=REGISTRATION),
        auth=BearerAuth(tokens),
    )

    registration = client.create_registration(ORGANIZER, MEETING, "everyone")

    assert registration.status == 201
    assert tokens.stale == [None, "t1"]
    first, second = script.requests
    assert first.headers["Authorization"] == "Bearer t1"
    assert second.headers["Authorization"] == "Bearer t2"
    assert second.content == first.content  # the body went again
    assert second.headers["client-request-id"] == first.headers["client-request-id"]


def test_a_second_401_is_an_auth_error_and_nothing_more_is_sent(graph):
    tokens = FakeTokens()
    client, script = graph(
        graph_error(401, "InvalidAuthenticationToken", "Access token has expired."),
        graph_error(401, "InvalidAuthenticationToken", "Access token validation failure."),
        auth=BearerAuth(tokens),
    )

    with pytest.raises(GraphAuthError) as caught:
        client.get_registration(ORGANIZER, MEETING)

    error = caught.value
    assert (error.status, error.code) == (401, "InvalidAuthenticationToken")
    assert error.message == "Access token validation failure."
    assert len(script.requests) == 2
    assert tokens.issued == 2


def test_a_token_source_failure_reaches_the_caller_unchanged(graph):
    class Refusing:
        def token(self, *, stale=None):
            raise GraphAuthError("token request refused by https://login.test/t: invalid_client")

    client, script = graph(auth=BearerAuth(Refusing()))

    with pytest.raises(GraphAuthError, match="invalid_client"):
        client.get_registration(ORGANIZER, MEETING)
    assert script.requests == []


# The production httpx client ---------------------------------------------------------------


def test_build_http_client_sets_timeouts_headers_and_auth():
    settings = Settings(_env_file=None, request_timeout_s=30, concurrency=8)
    auth = BearerAuth(StaticTokenSource("x"))

    with build_http_client(settings, auth) as http:
        assert http.timeout == httpx.Timeout(30, connect=10)
        assert http.headers["Accept"] == "application/json"
        assert http.headers["User-Agent"].startswith("meetreg/")
        assert http.auth is auth
        assert http.trust_env is True
        assert http.follow_redirects is False


def test_a_short_request_timeout_also_bounds_connecting():
    with build_http_client(Settings(_env_file=None, request_timeout_s=3), None) as http:
        assert http.timeout == httpx.Timeout(3)
