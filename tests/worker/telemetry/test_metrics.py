"""worker.telemetry.metrics over a real Redis: a row's outcome counted once, by the process that
recorded it; the gauges read from Redis; the index of batches in progress kept by the
store's own scripts."""

from __future__ import annotations

import httpx
import pytest
import redis
from cli_helpers import free_port, wait_until
from metrics_helpers import samples, value
from prometheus_client import REGISTRY
from store_helpers import row

from worker import keys
from worker.models import RowState
from worker.ratelimit.limiter import RateLimiter
from worker.store.outcome_store import OutcomeStore
from worker.store.records import Ending
from worker.telemetry.metrics import BATCH_SERIES, Exposition, SharedGauges, serve_metrics

GAUGES = ("meetreg_rate_limit_effective", "meetreg_queue_depth", "meetreg_batches_in_progress")


def rows_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("meetreg_rows_total", {"outcome": outcome}) or 0.0


def gauges(client: redis.Redis) -> dict[str, float]:
    shared = SharedGauges(OutcomeStore(client), RateLimiter(client, 40))
    page = samples(Exposition(shared).page()[0].decode())
    return {name: value(page, name) for name in GAUGES}


@pytest.fixture
def store(redis_client: redis.Redis) -> OutcomeStore:
    return OutcomeStore(redis_client)


def test_a_final_state_is_counted_once_however_often_it_is_recorded(store: OutcomeStore) -> None:
    store.create_batch("b1", "f.csv", [row(1), row(2)])
    created, failed = rows_counted("created"), rows_counted("failed")
    first = row(1, RowState.CREATED)
    assert store.finish("b1", Ending(row=first)) == (True, False)
    # A second worker finishing the same row (it took it up after the first was thought
    # dead) is refused by the store, and counts nothing.
    assert store.finish("b1", Ending(row=row(1, RowState.CREATED))) == (False, False)
    assert not store.save_row("b1", row(1, RowState.FAILED))
    assert rows_counted("created") == created + 1
    assert rows_counted("failed") == failed
    assert store.save_row("b1", row(2, RowState.FAILED))
    assert rows_counted("failed") == failed + 1


def test_rows_final_from_the_start_are_counted_by_the_process_that_accepted_them(
    store: OutcomeStore,
) -> None:
    invalid, skipped = rows_counted("invalid"), rows_counted("skipped")
    store.create_batch("b1", "f.csv", [row(1), row(2, RowState.INVALID), row(3, RowState.SKIPPED)])
    assert (rows_counted("invalid"), rows_counted("skipped")) == (invalid + 1, skipped + 1)


def test_a_batch_is_in_progress_from_creation_until_its_last_row_and_again_after_a_retry(
    store: OutcomeStore, redis_client: redis.Redis
) -> None:
    store.create_batch("b1", "f.csv", [row(1), row(2)])
    store.create_batch("b2", "f.csv", [row(1, RowState.INVALID)])  # nothing to do: not open
    assert gauges(redis_client)["meetreg_batches_in_progress"] == 1
    store.finish("b1", Ending(row=row(1, RowState.CREATED)))
    assert gauges(redis_client)["meetreg_batches_in_progress"] == 1
    store.finish("b1", Ending(row=row(2, RowState.FAILED)))
    assert gauges(redis_client)["meetreg_batches_in_progress"] == 0
    store.save_row("b1", row(2, RowState.QUEUED), overwrite_final=True)  # `meetreg retry`
    assert gauges(redis_client)["meetreg_batches_in_progress"] == 1
    store.cancel_batch("b1")  # ends the queued row: the batch is done
    assert gauges(redis_client)["meetreg_batches_in_progress"] == 0


def test_a_row_ended_by_a_cancel_as_a_worker_claims_it_counts_as_failed(
    store: OutcomeStore, redis_client: redis.Redis
) -> None:
    store.create_batch("b1", "f.csv", [row(1)])
    running = row(1, RowState.RUNNING)
    store.save_row("b1", running)  # in a worker's hands: cancel leaves it to end there
    store.cancel_batch("b1")
    failed = rows_counted("failed")
    store.claim("b1", row(1), "m1", "token", 10_000)
    assert store.row("b1", 1).status is RowState.FAILED  # type: ignore[union-attr]
    assert rows_counted("failed") == failed + 1
    assert gauges(redis_client)["meetreg_batches_in_progress"] == 0


def test_the_gauges_read_the_shared_rate_and_the_queue_celery_fills(
    redis_client: redis.Redis,
) -> None:
    assert gauges(redis_client) == {
        "meetreg_rate_limit_effective": pytest.approx(RateLimiter(redis_client, 40).rate_now()),
        "meetreg_queue_depth": 0,
        "meetreg_batches_in_progress": 0,
    }
    redis_client.lpush(keys.QUEUE, "a message", "another")
    redis_client.lpush(keys.QUEUE_LISTS[-1], "a message of priority 9")
    assert gauges(redis_client)["meetreg_queue_depth"] == 3


def test_a_port_taken_is_a_warning_not_a_failure(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    shared = SharedGauges(OutcomeStore(redis_client), RateLimiter(redis_client, 40))
    port = free_port()
    assert serve_metrics(port, "127.0.0.1", shared)
    page = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert "meetreg_queue_depth 0.0" in page and "meetreg_rows_total" in page
    assert not serve_metrics(port, "127.0.0.1", shared)  # a second worker on this host
    assert "MEETREG_METRICS_PORT" in caplog.text
    assert not serve_metrics(0, "127.0.0.1", shared)  # 0: off


def test_a_batch_whose_claimed_rows_were_left_is_flagged_stalled_and_one_that_moves_is_not(
    redis_client: redis.Redis,
) -> None:
    store = OutcomeStore(redis_client, stall_after_s=0.3)
    shared = Exposition(SharedGauges(store, RateLimiter(redis_client, 40)))
    store.create_batch("left", "f.csv", [row(1), row(2)])
    store.create_batch("moving", "f.csv", [row(1), row(2)])
    store.create_batch("done", "f.csv", [row(1)])
    store.claim("left", row(1), "left-m1", "gone", 10_000)  # a lease nobody renews
    store.claim("moving", row(1), "moving-m1", "alive", 10_000)
    wait_until(lambda: store.batch_status("left").stalled, timeout_s=10, what="left stalled")
    store.finish("moving", Ending(row=row(1, RowState.CREATED)))  # the batch moves on
    store.claim("moving", row(2), "moving-m2", "alive", 10_000)
    store.finish("done", Ending(row=row(1, RowState.CREATED)))

    page = samples(shared.page()[0].decode())
    stalled = {
        dict(labels)["batch_id"]: found
        for (name, labels), found in page.items()
        if name == "meetreg_batch_stalled"
    }
    assert stalled == {"left": 1.0, "moving": 0.0}  # a finished batch has no series
    left = value(page, "meetreg_batch_oldest_running_seconds", batch_id="left")
    moving = value(page, "meetreg_batch_oldest_running_seconds", batch_id="moving")
    assert left > 0.3 > moving


def test_per_batch_series_are_kept_to_the_most_recently_opened_batches(
    redis_client: redis.Redis,
) -> None:
    store = OutcomeStore(redis_client)
    for n in range(BATCH_SERIES + 5):
        store.create_batch(f"b{n}", "f.csv", [row(1)])
    shared = Exposition(SharedGauges(store, RateLimiter(redis_client, 40)))
    page = samples(shared.page()[0].decode())
    shown = {dict(labels)["batch_id"] for name, labels in page if name == "meetreg_batch_stalled"}
    assert len(shown) == BATCH_SERIES and f"b{BATCH_SERIES + 4}" in shown and "b0" not in shown
    assert value(page, "meetreg_batches_in_progress") == BATCH_SERIES + 5
