"""What an operator watching a real `celery -A worker.app worker` sees of a small batch:
its /metrics (rows by outcome, Graph answers by status with a 429, timings, the shared
gauges) and its stderr, JSON lines that name each row and Graph's request-id, and never
the client secret or a token."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import redis
from cli_helpers import command_env, free_port, meetreg, start_worker, stop, wait_until
from metrics_helpers import samples, value
from pipeline_helpers import ORGANIZER

from worker.models import RowState
from worker.ratelimit.limiter import RateLimiter
from worker.simulator import SimulatorServer
from worker.store.outcome_store import OutcomeStore
from worker.telemetry.metrics import Exposition, SharedGauges

MEETINGS = [f"obs-{i}" for i in range(6)]
MISSING = "obs-missing"  # no such meeting: Graph says 404, the row fails
BATCH = "obs"


def test_a_workers_metrics_and_json_logs_tell_what_its_batch_did(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    for meeting in MEETINGS:
        sim.state.add_meeting(ORGANIZER, meeting)
    sim.state.script(MEETINGS[0], [{"status": 429, "retry_after": "0.2"}])
    path = tmp_path / "meetings.csv"
    path.write_text(
        "user_id,meeting_id\n" + "".join(f"{ORGANIZER},{m}\n" for m in [*MEETINGS, MISSING])
    )
    port = free_port()
    env = command_env(
        **sim.env(),
        REDIS_URL=redis_url,
        MEETREG_RATE_LIMIT="1000",
        MEETREG_CONCURRENCY="4",
        MEETREG_CHUNK_SIZE="2",
        MEETREG_METRICS_PORT=str(port),
        MEETREG_METRICS_HOST="127.0.0.1",
        MEETREG_LOG_LEVEL="DEBUG",  # every library speaks: the redaction has work to do
    )  # MEETREG_LOG_FORMAT unset: stderr is a file, so JSON lines
    # --no-probe: the probe's GET of the first row would take the 429 scripted for the worker.
    enqueued = meetreg("enqueue", str(path), "--batch-id", BATCH, "--no-probe", env=env)
    assert enqueued.returncode == 0, enqueued.stderr

    # Before any worker: the chunks wait in Celery's queue, the batch is open.
    store = OutcomeStore(redis_client)
    page = Exposition(SharedGauges(store, RateLimiter(redis_client, 1000))).page()[0]
    before = samples(page.decode())
    assert value(before, "meetreg_queue_depth") == 4  # 7 rows in chunks of 2
    assert value(before, "meetreg_batches_in_progress") == 1

    stderr = tmp_path / "worker.stderr"
    worker = start_worker("obs", env, tmp_path, errors=stderr)
    try:
        wait_until(
            lambda: store.batch_status(BATCH).finished, timeout_s=60, what="the batch to finish"
        )
        page = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    finally:
        stop(worker)

    status = store.batch_status(BATCH)
    assert (status.counts["created"], status.counts["failed"]) == (len(MEETINGS), 1)
    assert page.status_code == 200
    after = samples(page.text)
    for outcome in ("created", "already_enabled", "skipped", "failed", "invalid"):
        assert value(after, "meetreg_rows_total", outcome=outcome) == status.counts[outcome]
    assert value(after, "meetreg_graph_requests_total", method="GET", status="429") == 1
    assert value(after, "meetreg_graph_throttled_total") == 1
    assert value(after, "meetreg_graph_requests_total", method="POST", status="201") == len(
        MEETINGS
    )
    assert value(after, "meetreg_graph_request_seconds_count") >= len(MEETINGS) * 2 + 1
    assert value(after, "meetreg_queue_depth") == 0
    assert value(after, "meetreg_batches_in_progress") == 0
    assert value(after, "meetreg_rate_limit_effective") > 0

    text = stderr.read_text()
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert any(r["level"] == "DEBUG" for r in records)  # MEETREG_LOG_LEVEL, not --loglevel
    for row in store.iter_rows(BATCH, status.total):
        (line,) = [
            r for r in records if r.get("line") == row.line and r.get("outcome") == str(row.status)
        ]
        assert (line["batch_id"], line["meeting_id"], line["user_id"]) == (
            BATCH,
            row.meeting_id,
            ORGANIZER,
        )
        assert line["request_id"] == row.request_id != ""  # the simulator's request-id
        assert line["status"] == row.http_status
        assert line["level"] == ("WARNING" if row.status is RowState.FAILED else "INFO")
    (throttled,) = [r for r in records if r.get("status") == 429]
    assert throttled["meeting_id"] == MEETINGS[0] and throttled["request_id"]
    for secret in [sim.client_secret, *sim.state.issued_tokens()]:
        assert secret not in text
