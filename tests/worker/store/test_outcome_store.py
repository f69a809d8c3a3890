import json
import time

import pytest
import redis
from cli_helpers import wait_until
from store_helpers import row

from worker import keys
from worker.errors import InputError, UnknownBatchError
from worker.models import RowState
from worker.ratelimit.limiter import RateLimiter, Tuning
from worker.store.outcome_store import OutcomeStore
from worker.store.records import Claim, Ending, PostRecord


@pytest.fixture
def store(redis_client: redis.Redis) -> OutcomeStore:
    return OutcomeStore(redis_client, retention_days=2, idempotency_retention_days=10)


def test_new_batch_counts_rows_by_their_starting_state(store: OutcomeStore) -> None:
    total = store.create_batch(
        "b1", "f.csv", [row(1), row(2), row(3, RowState.INVALID), row(4, RowState.SKIPPED)]
    )
    status = store.batch_status("b1")
    assert total == status.total == 4
    assert status.counts["queued"] == 2
    assert status.counts["invalid"] == status.counts["skipped"] == 1
    assert not status.finished


def test_every_transition_moves_the_counters_so_they_always_add_up(store: OutcomeStore) -> None:
    store.create_batch("b1", "f.csv", [row(1), row(2)])
    for state in (RowState.RUNNING, RowState.RETRYING, RowState.RUNNING, RowState.CREATED):
        record = store.row("b1", 1)
        assert record is not None
        record.status = state
        assert store.save_row("b1", record)
        status = store.batch_status("b1")
        assert sum(status.counts.values()) == 2
        assert status.counts[state] == 1
    second = row(2, RowState.FAILED)
    store.save_row("b1", second)
    assert store.batch_status("b1").finished


def test_a_final_row_is_not_overwritten_by_a_stale_worker(store: OutcomeStore) -> None:
    store.create_batch("b1", "f.csv", [row(1)])
    store.save_row("b1", row(1, RowState.CREATED))
    assert not store.save_row("b1", row(1, RowState.RUNNING))
    assert store.batch_status("b1").counts["created"] == 1
    assert store.save_row("b1", row(1, RowState.QUEUED), overwrite_final=True)  # retry does
    assert store.batch_status("b1").counts["queued"] == 1


def test_batch_and_rows_expire_after_the_retention(
    store: OutcomeStore, redis_client: redis.Redis
) -> None:
    store.create_batch("b1", "f.csv", [row(1)])
    for key in (keys.batch("b1"), keys.rows("b1")):
        assert 2 * 86_400 - 5 < redis_client.ttl(key) <= 2 * 86_400


def test_unknown_batch_is_an_error_naming_it(store: OutcomeStore) -> None:
    with pytest.raises(UnknownBatchError, match="nope"):
        store.batch_status("nope")


def test_rows_read_back_in_input_order_across_pages(store: OutcomeStore) -> None:
    store.create_batch("big", "f.csv", (row(seq) for seq in range(1, 2502)))
    seqs = [r.seq for r in store.iter_rows("big", 2501)]
    assert seqs == list(range(1, 2502))


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


def test_renewal_keeps_only_leases_still_ours(store: OutcomeStore) -> None:
    store.create_batch("b1", "f.csv", [row(1), row(2)])
    store.claim("b1", row(1), "m1", "a", 10_000)
    store.claim("b1", row(2), "m2", "x", 10_000)
    assert store.renew_leases({"m1": "a", "m2": "a"}, 20_000) == 1


def test_expired_chunk_is_claimed_by_one_sweeper_only(store: OutcomeStore) -> None:
    chunk = json.dumps(["b1", 1, 11])
    store.hold_chunks([chunk], ttl_ms=1)
    time.sleep(0.01)
    assert store.claim_expired_chunks(ttl_ms=60_000) == [chunk]
    assert store.claim_expired_chunks(ttl_ms=60_000) == []  # pushed out for the next holder
    store.drop_chunk(chunk)
    store.hold_chunks([chunk], ttl_ms=60_000)
    assert store.claim_expired_chunks(ttl_ms=60_000) == []


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


def fail_rows(store: OutcomeStore, seqs: range, signature: str, users: int) -> list[bool]:
    """Finish rows as failed with `signature`, their organizers taken in turn from `users`."""
    paused = []
    for seq in seqs:
        failed = row(seq, RowState.FAILED)
        failed.user_id = f"user-{seq % users}"
        failed.error = "Forbidden: No Application Access Policy found for this app"
        paused.append(
            store.finish("v", Ending(row=failed, signature=signature, user_id=failed.user_id))[1]
        )
    return paused


@pytest.fixture
def valve_store(redis_client: redis.Redis) -> OutcomeStore:
    store = OutcomeStore(redis_client, pause_after=5, pause_min_users=3)
    store.create_batch("v", "f.csv", [row(seq) for seq in range(1, 21)])
    return store


def test_the_same_failure_for_three_users_in_a_row_pauses_the_batch(
    valve_store: OutcomeStore,
) -> None:
    paused = fail_rows(valve_store, range(1, 7), "403 Forbidden", users=3)
    assert paused == [False, False, False, False, True, False]  # the fifth trips it, once
    status = valve_store.batch_status("v")
    assert status.paused.startswith("the last 5 rows that reached Graph, for 3 users")
    assert "No Application Access Policy" in status.paused
    assert status.to_json_dict()["paused"] is True
    claim, _, _ = valve_store.claim("v", row(10), "m10", "t", 10_000)
    assert claim is Claim.PAUSED
    assert valve_store.row("v", 10).status is RowState.QUEUED  # left for `resume`


@pytest.mark.parametrize(
    ("setup", "why"),
    [
        (lambda s: fail_rows(s, range(1, 7), "403 Forbidden", users=2), "two users"),
        (
            lambda s: [
                fail_rows(s, range(1, 4), "403 Forbidden", 3),
                fail_rows(s, range(4, 7), "404 NotFound", 3),
            ],
            "mixed",
        ),
    ],
)
def test_failures_of_few_users_or_of_different_kinds_do_not_pause(
    valve_store: OutcomeStore, setup, why
) -> None:
    setup(valve_store)
    assert valve_store.batch_status("v").paused == "", why


def test_a_success_in_between_starts_the_count_again(valve_store: OutcomeStore) -> None:
    fail_rows(valve_store, range(1, 5), "403 Forbidden", users=3)
    valve_store.finish("v", Ending(row=row(5, RowState.CREATED), signature="ok", user_id="u"))
    assert fail_rows(valve_store, range(6, 10), "403 Forbidden", users=3) == [False] * 4
    assert fail_rows(valve_store, range(10, 11), "403 Forbidden", users=3) == [True]


def test_unpausing_lets_rows_be_claimed_and_forgets_the_failures(valve_store: OutcomeStore) -> None:
    fail_rows(valve_store, range(1, 6), "403 Forbidden", users=3)
    valve_store.unpause_batch("v")
    assert valve_store.batch_status("v").paused == ""
    assert valve_store.claim("v", row(10), "m10", "t", 10_000)[0] is Claim.CLAIMED
    assert fail_rows(valve_store, range(11, 15), "403 Forbidden", users=3) == [False] * 4


def test_cancelling_ends_waiting_rows_now_and_running_ones_when_taken_up(
    valve_store: OutcomeStore,
) -> None:
    assert valve_store.claim("v", row(1), "m1", "t", 10_000)[0] is Claim.CLAIMED  # running
    assert valve_store.cancel_batch("v") == 19
    status = valve_store.batch_status("v")
    assert (status.counts["failed"], status.counts["running"], status.cancelled) == (19, 1, True)
    assert status.to_json_dict()["paused"] is False  # cancelled, not paused
    # A worker taking row 1 up again (its first one died) ends it too.
    assert valve_store.claim("v", row(1), "m1", "t2", 10_000)[0] is Claim.ROW_FINAL
    ended = valve_store.row("v", 1)
    assert ended.status is RowState.FAILED and ended.error == "cancelled by the operator"
    assert valve_store.batch_status("v").finished
    with pytest.raises(InputError):
        valve_store.unpause_batch("v")


# Stalls: rows in workers' hands that stop moving. A short window on Redis' own clock.
STALL_AFTER_S = 0.3


@pytest.fixture
def watched(redis_client: redis.Redis) -> OutcomeStore:
    return OutcomeStore(redis_client, stall_after_s=STALL_AFTER_S)


def wait_stalled(store: OutcomeStore, batch_id: str) -> None:
    wait_until(
        lambda: store.batch_status(batch_id).stalled, timeout_s=10, what=f"{batch_id} stalled"
    )


def test_rows_claimed_and_left_stall_their_batch_once_the_window_passes(
    watched: OutcomeStore,
) -> None:
    watched.create_batch("left", "f.csv", [row(1), row(2), row(3)])
    for seq in (1, 2):  # leases taken, and nobody renews them or finishes the rows
        assert watched.claim("left", row(seq), f"m{seq}", "gone", 10_000)[0] is Claim.CLAIMED
    fresh = watched.batch_status("left")
    assert fresh.working == 2 and not fresh.stalled
    assert fresh.oldest_running_s is not None and fresh.oldest_running_s < STALL_AFTER_S

    wait_stalled(watched, "left")
    status = watched.batch_status("left")
    assert status.oldest_running_s is not None and status.oldest_running_s > STALL_AFTER_S
    assert status.since_progress_s is not None and status.since_progress_s > STALL_AFTER_S
    shown = status.to_json_dict()
    assert shown["stalled"] is True
    assert shown["oldest_running_s"] >= STALL_AFTER_S  # in tenths of a second
    assert shown["last_progress_at"].endswith("Z")
    assert shown["finished"] is False and shown["counts"]["running"] == 2  # as before
    # Taking a row up again without ever finishing it (a sweeper's re-send, say) is not
    # progress: the row stays running, and the batch stalled.
    assert watched.claim("left", row(1), "m1", "gone", 10_000)[0] is Claim.CLAIMED
    assert watched.batch_status("left").stalled


def test_a_row_that_moves_ends_the_stall_and_the_oldest_row_is_the_one_left_longest(
    watched: OutcomeStore,
) -> None:
    watched.create_batch("b", "f.csv", [row(1), row(2)])
    watched.claim("b", row(1), "m1", "a", 10_000)
    wait_stalled(watched, "b")
    left_s = watched.batch_status("b").oldest_running_s
    assert left_s is not None

    watched.claim("b", row(2), "m2", "b", 10_000)  # the batch moves
    moved = watched.batch_status("b")
    assert not moved.stalled
    assert moved.since_progress_s is not None and moved.since_progress_s < STALL_AFTER_S
    assert moved.oldest_running_s is not None and moved.oldest_running_s >= left_s  # row 1

    watched.finish("b", Ending(row=row(1, RowState.CREATED)))
    after = watched.batch_status("b")
    assert after.oldest_running_s is not None and after.oldest_running_s < left_s  # row 2
    assert not after.stalled


def test_a_batch_only_queued_or_paused_does_not_stall(watched: OutcomeStore) -> None:
    watched.create_batch("waiting", "f.csv", [row(1)])  # behind another batch, say
    watched.create_batch("paused", "f.csv", [row(1), row(2)])
    watched.claim("paused", row(1), "m1", "a", 10_000)
    watched.pause_batch("paused", "the operator said so")

    def quiet_past_the_window() -> bool:
        since = [watched.batch_status(b).since_progress_s for b in ("waiting", "paused")]
        return all(s is not None and s > STALL_AFTER_S * 2 for s in since)

    wait_until(quiet_past_the_window, timeout_s=10, what="both batches quiet")
    for batch_id in ("waiting", "paused"):
        status = watched.batch_status(batch_id)
        assert not status.stalled and status.to_json_dict()["stalled"] is False, batch_id
    assert watched.batch_status("waiting").oldest_running_s is None


def test_rows_leave_the_working_set_as_they_leave_work_and_it_expires_with_the_batch(
    store: OutcomeStore, redis_client: redis.Redis
) -> None:
    store.create_batch("b1", "f.csv", [row(1), row(2)])
    store.claim("b1", row(1), "m1", "a", 10_000)
    store.save_row("b1", row(2, RowState.RETRYING))
    assert redis_client.zcard(keys.working("b1")) == 2
    assert 2 * 86_400 - 5 < redis_client.ttl(keys.working("b1")) <= 2 * 86_400
    store.finish("b1", Ending(row=row(1, RowState.CREATED)))
    store.save_row("b1", row(2, RowState.QUEUED))  # a paused batch puts its row back
    assert not redis_client.exists(keys.working("b1"))  # finished rows keep no key
    store.claim("b1", row(2), "m2", "a", 10_000)
    store.delete_batch("b1")
    assert not redis_client.exists(keys.working("b1"))
