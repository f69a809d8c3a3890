"""The status page of `meetreg serve`, over HTTP, for a batch a real worker processed."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import redis
from cli_helpers import meetreg, wait_until
from pipeline_helpers import ORGANIZER
from serve_helpers import API_KEY, FAILING_BATCH_COUNTS, Served, bearer

from jobs.http.status_page import batch_page, batches_page
from worker.simulator import SimulatorServer
from worker.store.outcome_store import OutcomeStore

MakeBatch = Callable[..., str]


def test_the_list_shows_each_batch_with_its_counts_newest_first(
    served: Served, failing_batch: MakeBatch
) -> None:
    failing_batch("older")
    failing_batch("newer")

    batches = served.pages.get("/api/batches").json()["batches"]
    assert [b["batch_id"] for b in batches] == ["newer", "older"]
    for batch in batches:
        assert batch["state"] == "finished"
        assert (batch["done"], batch["total"]) == (6, 6)
        assert {k: v for k, v in batch["counts"].items() if v} == FAILING_BATCH_COUNTS

    page = served.pages.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert html.index('data-batch="newer"') < html.index('data-batch="older"')
    row = html[html.index('data-batch="newer"') :].split("</tr>")[0]
    assert '<td class="num" data-count="failed">3</td>' in row
    assert '<td class="num" data-count="created">2</td>' in row
    assert ">finished</span>" in row
    assert "6 / 6" in row


def test_the_batch_page_shows_failures_by_graph_error_and_rows_over_time(
    served: Served, failing_batch: MakeBatch, serve_env: dict[str, str]
) -> None:
    batch_id = failing_batch("grouped")

    report = json.loads(meetreg("report", batch_id, "--format", "json", env=serve_env).stdout)
    from_rows = Counter(
        (str(row["http_status"]), row["error"].split(":")[0])
        for row in report
        if row["status"] == "failed"
    )
    assert from_rows == {("404", "NotFound"): 2, ("403", "Forbidden"): 1}
    detail = served.pages.get(f"/api/batches/{batch_id}").json()
    groups = {(g["http_status"], g["code"]): g["rows"] for g in detail["failures"]}
    assert groups == from_rows
    assert detail["failures"][0]["code"] == "NotFound"  # most rows first

    html = served.pages.get(f"/batches/{batch_id}").text
    assert '<tr><td>404</td><td class="id">NotFound</td><td class="num">2</td></tr>' in html
    assert '<tr><td>403</td><td class="id">Forbidden</td><td class="num">1</td></tr>' in html

    throughput = detail["throughput"]
    assert throughput["interval_s"] == 10
    # The repeated row was final on arrival; the worker finished the other five.
    assert sum(point["rows"] for point in throughput["points"]) == 5
    assert all(point["t"].endswith("0Z") for point in throughput["points"])


def test_the_report_downloads_are_what_meetreg_report_prints(
    served: Served, failing_batch: MakeBatch, serve_env: dict[str, str]
) -> None:
    batch_id = failing_batch("downloads")

    for fmt, media_type in (("csv", "text/csv"), ("json", "application/json")):
        download = served.pages.get(f"/batches/{batch_id}/report.{fmt}")
        assert download.status_code == 200
        assert download.headers["content-type"].startswith(media_type)
        assert download.headers["content-disposition"] == f'attachment; filename="{batch_id}.{fmt}"'
        printed = meetreg("report", batch_id, "--format", fmt, env=serve_env)
        assert printed.returncode == 0
        assert download.text == printed.stdout
    assert served.pages.get(f"/batches/{batch_id}/report.xlsx").status_code == 404
    assert served.pages.get("/batches/no-such-batch/report.csv").status_code == 404


def test_retry_needs_the_api_key(
    served: Served, failing_batch: MakeBatch, redis_client: redis.Redis
) -> None:
    batch_id = failing_batch("locked")

    wrong = "wrong-key-0123456789abcdef"
    refused = [
        served.http.post(f"/batches/{batch_id}/retry"),
        served.http.post(f"/batches/{batch_id}/retry", headers=bearer(wrong)),
        served.http.post(f"/batches/{batch_id}/retry", data={"api_key": wrong}),
        served.http.post(f"/batches/{batch_id}/retry", data={"api_key": ""}),
    ]
    assert [answer.status_code for answer in refused] == [401] * 4
    assert "a valid API key is required" in refused[2].text  # a page, for the browser
    assert OutcomeStore(redis_client).batch_status(batch_id).counts["failed"] == 3
    assert API_KEY not in served.pages.get(f"/batches/{batch_id}").text


def test_retry_with_the_key_sends_the_failed_rows_again(
    served: Served, failing_batch: MakeBatch, sim: SimulatorServer, redis_client: redis.Redis
) -> None:
    batch_id = failing_batch("retried")
    store = OutcomeStore(redis_client)
    for meeting in ("m-gone-1", "m-gone-2"):  # they exist now; the 403 stays a 403
        sim.state.add_meeting(ORGANIZER, f"{batch_id}-{meeting}")

    answer = served.http.post(
        f"/batches/{batch_id}/retry", data={"api_key": API_KEY}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/batches/{batch_id}?retried=3"

    def settled() -> bool:
        status = store.batch_status(batch_id)
        return status.finished and status.counts["created"] == 4

    wait_until(settled, timeout_s=30, what="the retried rows to be registered")
    detail = served.pages.get(f"/api/batches/{batch_id}").json()
    assert detail["counts"]["failed"] == 1
    assert [(g["http_status"], g["code"], g["rows"]) for g in detail["failures"]] == [
        ("403", "Forbidden", 1)
    ]
    page = served.pages.get(answer.headers["location"]).text
    assert "3 failed rows enqueued again." in page

    # A script presents the key as a bearer token and is answered in JSON.
    again = served.http.post(f"/batches/{batch_id}/retry", headers=bearer())
    assert again.json() == {"batch_id": batch_id, "retried": 1}


def test_hostile_values_are_escaped(served: Served, failing_batch: MakeBatch) -> None:
    hostile = "<script>alert(1)</script>"
    batch_id = failing_batch("hostile", file_name="<script>alert(1)<img src=x>.csv")
    assert "<script>" in served.pages.get("/api/batches").json()["batches"][0]["source"]

    for path in ("/", f"/batches/{batch_id}"):
        html = served.pages.get(path).text
        assert "<script>alert(1)" not in html
        assert "&lt;script&gt;alert(1)&lt;img src=x&gt;.csv" in html
    # Graph's error codes and messages are shown too: escaped the same way.
    detail = served.pages.get(f"/api/batches/{batch_id}").json()
    detail["failures"] = [{"http_status": "400", "code": hostile, "rows": 1}]
    page = batch_page(detail, retried=None)
    assert hostile not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_an_unknown_batch_is_404(served: Served, redis_client: redis.Redis) -> None:
    assert served.pages.get("/batches/nope").status_code == 404
    assert served.pages.get("/api/batches/nope").status_code == 404
    answer = served.http.post("/batches/nope/retry", headers=bearer())
    assert answer.status_code == 404


def test_a_registrant_batch_shows_its_own_states_in_the_shared_columns() -> None:
    summary = {
        "batch_id": "people",
        "source": "registrants.csv",
        "created_at": "2026-12-08T01:00:00Z",
        "state": "finished",
        "done": 5,
        "total": 5,
        "pending": 0,
        "paused": "",
        "stalled": False,
        "counts": {"registered": 3, "already_registered": 1, "skipped": 0, "failed": 1},
    }
    html = batches_page([summary])
    assert '<th class="num">created / registered</th>' in html
    assert '<th class="num">already enabled / already registered</th>' in html
    row = html[html.index('data-batch="people"') :].split("</tr>")[0]
    assert '<td class="num" data-count="registered">3</td>' in row
    assert '<td class="num" data-count="already_registered">1</td>' in row
    assert '<td class="num" data-count="failed">1</td>' in row
