"""Who may read what `meetreg serve` shows: the status page, the batch JSON and the
reports need the viewer key (HTTP Basic, any user name) or the API key, unless
MEETREG_PUBLIC_PAGES opens them; Graph's webhook and the health check stay open."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from pipeline_helpers import ORGANIZER
from serve_helpers import API_KEY, VIEWER_KEY, Served, bearer

BATCH = "readable-1"
READING = [
    "/",
    f"/batches/{BATCH}",
    f"/batches/{BATCH}/report.csv",
    f"/batches/{BATCH}/report.json",
    "/api/batches",
    f"/api/batches/{BATCH}",
]


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def batch(served: Served, redis_client: redis.Redis) -> str:
    """A batch of one row of the organizer's, recorded (no worker needed)."""
    items = [{"user_id": ORGANIZER, "meeting_id": "m-readable"}]
    url = f"/api/registrations?batch_id={BATCH}"
    assert served.http.post(url, json=items, headers=bearer()).status_code == 202
    return BATCH


@pytest.mark.parametrize("path", READING)
def test_reading_without_a_credential_is_401_with_a_basic_challenge_and_shows_nothing(
    served: Served, batch: str, path: str
) -> None:
    answer = served.http.get(path)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith('Basic realm="meetreg')
    assert ORGANIZER not in answer.text
    assert batch not in answer.text


WRONG = [
    basic("operator", "wrong-viewer-key-0123456789"),
    basic("operator", ""),
    basic(VIEWER_KEY, "x"),  # the key as the user name is not the password
    basic("operator", VIEWER_KEY[:-1]),
    basic("operator", VIEWER_KEY + " "),
    bearer("wrong-key-0123456789abcdef"),
    bearer(VIEWER_KEY),  # the viewer key is a password, not a bearer token
    {"Authorization": "Basic"},
    {"Authorization": "Basic !!!not-base64!!!"},
    {"Authorization": "Basic " + base64.b64encode(b"no-colon-here").decode()},
    {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()},
    {"Authorization": f"Digest {VIEWER_KEY}"},
    {"Authorization": VIEWER_KEY},
]


@pytest.mark.parametrize("headers", WRONG)
def test_a_wrong_credential_is_401(served: Served, batch: str, headers: dict[str, str]) -> None:
    for path in READING:
        answer = served.http.get(path, headers=headers)
        assert answer.status_code == 401, path
        assert ORGANIZER not in answer.text


@pytest.mark.parametrize("user", ["operator", "", "ünïcode user"])
def test_the_viewer_key_under_any_user_name_reads_every_page(
    served: Served, batch: str, user: str
) -> None:
    for path in READING:
        answer = served.http.get(path, headers=basic(user, VIEWER_KEY))
        assert answer.status_code == 200, path
    report = served.http.get(f"/batches/{batch}/report.csv", headers=basic(user, VIEWER_KEY))
    assert ORGANIZER in report.text


@pytest.mark.parametrize("headers", [bearer(), basic("script", API_KEY)], ids=["bearer", "basic"])
def test_the_api_key_reads_every_page(served: Served, batch: str, headers: dict[str, str]) -> None:
    for path in READING:
        assert served.http.get(path, headers=headers).status_code == 200, path


def test_the_viewer_key_grants_no_write(
    served: Served, batch: str, redis_client: redis.Redis
) -> None:
    viewer = basic("operator", VIEWER_KEY)
    items = [{"user_id": ORGANIZER, "meeting_id": "m-other"}]
    assert served.http.post("/api/registrations", json=items, headers=viewer).status_code == 401
    assert served.http.post(f"/batches/{batch}/retry", headers=viewer).status_code == 401
    assert served.http.post(f"/batches/{batch}/retry", headers=bearer(VIEWER_KEY)).status_code == (
        401
    )


def test_health_metrics_and_graphs_webhook_need_no_credential(served: Served) -> None:
    assert served.http.get("/healthz").status_code in (200, 503)  # 503: no worker here
    assert served.http.get("/metrics").status_code == 200
    for path in ("/graph/notifications", "/graph/lifecycle"):
        token = quote("Validation: reachability", safe="")
        answer = served.http.post(f"{path}?validationToken={token}")
        assert (answer.status_code, answer.text) == (200, "Validation: reachability")
        assert served.http.post(path, json={"value": []}).status_code == 202


@pytest.fixture
def public(serve_env: dict[str, str], tmp_path: Path) -> Iterator[Served]:
    """A second server, its pages opened for a trusted network; no viewer key set."""
    env = {**serve_env, "MEETREG_PUBLIC_PAGES": "true"}
    env.pop("MEETREG_VIEWER_KEY")
    running = Served(env, tmp_path)
    yield running
    running.close()


def test_public_pages_are_read_without_a_credential(public: Served, batch: str) -> None:
    for path in READING:
        answer = public.http.get(path)
        assert answer.status_code == 200, path
        assert "www-authenticate" not in answer.headers
    # Writing still needs the API key.
    assert public.http.post(f"/batches/{batch}/retry").status_code == 401


def test_without_a_viewer_key_the_api_key_still_reads(
    serve_env: dict[str, str], tmp_path: Path, batch: str
) -> None:
    env = dict(serve_env)
    env.pop("MEETREG_VIEWER_KEY")
    running = Served(env, tmp_path)
    try:
        assert running.http.get("/api/batches").status_code == 401
        assert running.http.get("/api/batches", headers=basic("x", VIEWER_KEY)).status_code == 401
        assert running.http.get("/api/batches", headers=bearer()).status_code == 200
    finally:
        running.close()


def test_a_browser_without_the_credential_is_asked_for_it(served: Served) -> None:
    page = served.http.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 401
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["www-authenticate"] == 'Basic realm="meetreg", charset="UTF-8"'
