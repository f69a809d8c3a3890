"""The register protocol's steps on a row and its meeting: claim, record the POST, finish."""

import time

import redis
from store_helpers import row

from worker import keys
from worker.models import RowState
from worker.ratelimit.limiter import RateLimiter, Tuning
from worker.store.outcome_store import OutcomeStore
from worker.store.records import Claim, Ending, PostRecord


def test_claim_takes_the_lease_and_marks_the_row_running(store: OutcomeStore) -> None:
    store.create_batch("b1", "f.csv", [row(1), row(2)])
    claim, record, slot = store.claim("b1", row(1), "m", "a", 10_000)
    assert (claim, record.posts, slot) == (Claim.CLAIMED, 0, None)  # no slot asked for
    assert store.batch_status("b1").counts["running"] == 1
    assert store.claim("b1", row(1), "m", "a", 10_000)[0] is Claim.CLAIMED  # its holder again
    assert store.claim("b1", row(2), "m", "b", 10_000)[0] is Claim.BUSY
    assert store.batch_status("b1").counts["queued"] == 1  # the waiting row is untouched


def test_a_lease_lapses_when_not_renewed(store: OutcomeStore) -> None:
    store.create_batch("b1", "f.csv", [row(1), row(2)])
    store.claim("b1", row(1), "m", "a", 50)
    time.sleep(0.1)  # the lease's own 50 ms expiry, not a guess
    assert store.claim("b1", row(2), "m", "b", 10_000)[0] is Claim.CLAIMED


def test_a_post_is_recorded_only_while_the_lease_is_held(store: OutcomeStore) -> None:
    store.create_batch("b1", "f.csv", [row(1)])
    store.claim("b1", row(1), "m", "a", 10_000)
    assert store.record_post("b1", row(1), "m", "b") == (PostRecord.LEASE_LOST, None)
    assert store.meeting("m").posts == 0
    attempt = row(1)
    attempt.attempts = 2
    assert store.record_post("b1", attempt, "m", "a") == (PostRecord.GO, None)
    record = store.meeting("m")
    assert (record.posts, record.state, record.posted_by) == (1, "posting", "b1:1")
    stored = store.row("b1", 1)
    assert stored is not None and stored.attempts == 2  # the attempt is stored before it leaves


def test_finish_records_the_meeting_beyond_the_batch_and_frees_the_lease(
    store: OutcomeStore, redis_client: redis.Redis
) -> None:
    store.create_batch("b1", "f.csv", [row(3), row(4)])
    store.claim("b1", row(3), "m", "a", 10_000)
    done = row(3, RowState.CREATED)
    ending = Ending(
        row=done, meeting_id="m", token="a", meeting_state=RowState.CREATED, registration_id="r1"
    )
    assert store.finish("b1", ending) == (True, False)
    record = store.meeting("m")
    assert record.succeeded and record.registration_id == "r1" and record.done_by == "b1:3"
    assert redis_client.ttl(keys.meeting("m")) > 9 * 86_400
    assert redis_client.get(keys.lease("m")) is None
    assert store.claim("b1", row(4), "m", "z", 10_000)[0] is Claim.DONE


def test_claim_and_record_post_reserve_the_next_calls_rate_slot(
    store: OutcomeStore, redis_client: redis.Redis
) -> None:
    limiter = RateLimiter(redis_client, rate_per_s=10, tuning=Tuning(margin=1.0))
    request = limiter.slot_request()
    store.create_batch("b1", "f.csv", [row(1), row(2)])
    _, _, first = store.claim("b1", row(1), "m1", "a", 10_000, slot=request)
    _, second = store.record_post("b1", row(1), "m1", "a", slot=request)
    _, _, none = store.claim("b1", row(2), "m2", "b", 10_000, slot=request, get_first=False)
    assert first is not None and first[:2] == (0.0, True)  # the GET's slot, at once
    assert second is not None and second[1] and 95 <= second[0] <= 100  # 1/10 s later
    assert first[2] != second[2]  # each slot named, for giving it up
    assert none is None  # no GET comes: no slot taken
    limiter.throttled(5.0)
    _, paused = store.record_post("b1", row(1), "m1", "a", slot=request)
    assert paused is not None and paused[1] and paused[0] > 4000  # a pause: a slot after it
