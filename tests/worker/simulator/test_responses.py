"""worker.simulator.responses: how a Graph answer is rendered, headers and body."""

from __future__ import annotations

import json

from worker.simulator.errors import GraphFailure
from worker.simulator.responses import GRAPH_JSON, Reply


def test_a_body_is_rendered_as_graph_json_with_both_request_ids():
    response = Reply(201, body={"id": "r-1"}).to_response("req-1", None)

    assert response.status_code == 201
    assert response.media_type == GRAPH_JSON
    assert json.loads(response.body) == {"id": "r-1"}
    assert response.headers["request-id"] == response.headers["client-request-id"] == "req-1"


def test_a_failure_keeps_its_retry_after_and_names_the_request_in_its_body():
    failure = GraphFailure(429, "TooManyRequests", "slow down", retry_after="2")
    reply = Reply.failure(failure)

    headers, body = reply.render("req-1", "client-1")

    assert reply.retry_after_s == 2.0
    assert headers["Retry-After"] == "2"
    assert headers["client-request-id"] == "client-1"
    assert body is not None
    assert body["error"]["code"] == "TooManyRequests"
    assert body["error"]["innerError"]["request-id"] == headers["request-id"] == "req-1"


def test_a_401_tells_the_client_how_to_authenticate():
    headers, _ = Reply(401, code="InvalidAuthenticationToken").render("req-1", None)

    assert headers["WWW-Authenticate"].startswith("Bearer ")
    assert "Retry-After" not in headers


def test_no_body_is_an_empty_response():
    response = Reply(204).to_response("req-1", None)

    assert (response.status_code, response.body) == (204, b"")
