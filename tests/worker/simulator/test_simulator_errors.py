"""worker.simulator.errors: Graph's and Entra's error bodies, and how a wait is spelled in
Retry-After."""

from __future__ import annotations

import pytest

from worker.simulator.errors import (
    LoginFailure,
    format_retry_after,
    graph_error_body,
    login_error_body,
)


def test_a_graph_error_echoes_the_client_request_id_or_repeats_its_own():
    echoed = graph_error_body("Conflict", "taken", "req-1", "client-1")["error"]
    own = graph_error_body("Conflict", "taken", "req-1")["error"]

    assert (echoed["code"], echoed["message"]) == ("Conflict", "taken")
    assert echoed["innerError"]["request-id"] == "req-1"
    assert echoed["innerError"]["client-request-id"] == "client-1"
    assert own["innerError"]["client-request-id"] == "req-1"


def test_a_login_error_carries_its_aadsts_code_and_correlation_id():
    failure = LoginFailure(401, "invalid_client", 7000215, "Invalid client secret provided.")

    body = login_error_body(failure, "corr-1")

    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert "Correlation ID: corr-1" in body["error_description"]
    assert body["correlation_id"] == "corr-1"


@pytest.mark.parametrize(
    ("seconds", "style", "expected"),
    [
        (2.128, "float", "2.128"),
        (0.5, "float", "0.500"),
        (0.0, "float", "0.001"),
        (2.0, "int", "2"),
        (2.0000000001, "int", "2"),
        (2.1, "int", "3"),
        (0.004, "int", "1"),
        (0.0, "int", "0"),
        (-1.0, "int", "0"),
    ],
)
def test_retry_after_is_spelled_per_style_and_never_rounds_down(seconds, style, expected):
    assert format_retry_after(seconds, style) == expected
