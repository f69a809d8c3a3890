"""Whatever a caller puts in a route's query string or path, `meetreg serve` answers
without a server error: no 500, no traceback."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from serve_helpers import VIEWER, Served, bearer

# Text an HTTP client can send (no lone surrogates), and what looks like a number to
# str.isdigit() but not to int(): superscripts, other scripts' digits, huge ones.
TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)
DIGITS = st.text(
    st.sampled_from("0123456789²³¹٣۴߅௫໖༣၅႖០᠑" + "\uff10\U0001d7d8"), min_size=1, max_size=12
)
LONG_NUMBERS = st.integers(1, 6000).map(lambda n: "9" * n)
VALUES = TEXT | DIGITS | LONG_NUMBERS | st.just("-1") | st.just("")
NAMES = st.sampled_from(["retried", "batch_id", "validationToken", "fmt", "format"]) | TEXT
PARAMS = st.lists(st.tuples(NAMES, VALUES), max_size=4)
IDS = TEXT.filter(lambda s: s not in (".", "..")) | DIGITS

ROUTES = [
    ("GET", "/", "viewer"),
    ("GET", "/batches/{id}", "viewer"),
    ("GET", "/batches/{id}/report.csv", "viewer"),
    ("GET", "/batches/{id}/report.{id}", "viewer"),
    ("GET", "/api/batches", "viewer"),
    ("GET", "/api/batches/{id}", "viewer"),
    ("GET", "/healthz", None),
    ("GET", "/metrics", None),
    ("POST", "/batches/{id}/retry", "api"),
    ("POST", "/api/registrations", "api"),
    ("POST", "/graph/notifications", None),
    ("POST", "/graph/lifecycle", None),
]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(route=st.sampled_from(ROUTES), batch_id=IDS, params=PARAMS)
@example(route=ROUTES[1], batch_id="b", params=[("retried", "\u00b2")])  # '²'.isdigit()
@example(route=ROUTES[1], batch_id="b", params=[("retried", "9" * 5000)])  # int() refuses
def test_no_query_string_or_path_makes_a_server_error(
    served: Served, route: tuple[str, str, str | None], batch_id: str, params: list
) -> None:
    method, template, credential = route
    path = template.replace("{id}", quote(batch_id, safe=""))
    auth = VIEWER if credential == "viewer" else None
    headers = bearer() if credential == "api" else {}
    answer = served.http.request(
        method, path, params=params, headers=headers, auth=auth, content=b"[]"
    )
    healthz_without_worker = template == "/healthz" and answer.status_code == 503
    assert answer.status_code < 500 or healthz_without_worker, (path, params, answer.text)
    assert "Traceback" not in answer.text
