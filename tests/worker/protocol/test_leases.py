"""What a worker holds, and gives back: chunks and meeting leases, through a chunk's scope.

Real Redis: the session's, or a private one where Redis must go down and come back.
"""

from __future__ import annotations

import pytest
import redis
from store_helpers import row

from worker import keys
from worker.errors import StoreError
from worker.protocol.leases import Held, LeaseKeeper
from worker.redis.embedded import EmbeddedRedis
from worker.store.outcome_store import OutcomeStore
from worker.store.records import Claim

LEASE_MS = 60_000  # production's: nothing here may lapse while the test runs


@pytest.fixture
def store(redis_client: redis.Redis) -> OutcomeStore:
    return OutcomeStore(redis_client)


def claim(store: OutcomeStore, seq: int, token: str) -> Claim:
    return store.claim("b1", row(seq), f"m{seq}", token, LEASE_MS)[0]


def test_leaving_a_scope_on_an_error_gives_back_what_its_work_still_held(
    store: OutcomeStore, redis_client: redis.Redis
) -> None:
    store.create_batch("b1", "f.csv", [row(1), row(2), row(3)])
    keeper = LeaseKeeper(store, LEASE_MS)
    with pytest.raises(StoreError), keeper.scope() as leases:
        leases.hold_chunk("chunk")
        held, lost = leases.token("held"), leases.token("lost")
        leases.claiming("m1", held)
        assert claim(store, 1, held) is Claim.CLAIMED
        leases.holding("m1", held)
        # A claim Redis did, whose answer never came back.
        leases.claiming("m2", lost)
        assert claim(store, 2, lost) is Claim.CLAIMED
        assert keeper.held() == Held(frozenset({"chunk"}), {"m1": held})
        raise StoreError("Redis failed")
    assert keeper.held() == Held(frozenset(), {})  # the heartbeat renews none of it
    assert redis_client.exists(keys.lease("m1"), keys.lease("m2")) == 0
    # The chunk is left for the sweeper: its claim lapses, it is not dropped.
    assert redis_client.zscore(keys.INFLIGHT, "chunk") is not None
    # Only leases still ours are given back.
    with keeper.scope() as leases:
        other = "another worker's token"
        assert claim(store, 3, other) is Claim.CLAIMED
        leases.claiming("m3", leases.token("late"))
    assert redis_client.get(keys.lease("m3")) == other.encode()


def test_two_copies_of_a_chunk_in_one_process_hold_it_until_the_last_lets_go(
    store: OutcomeStore, redis_client: redis.Redis
) -> None:
    keeper = LeaseKeeper(store, LEASE_MS)
    keeper.hold_chunk("chunk", holder="message")  # as the worker receives the message
    with keeper.scope("message") as original:
        original.hold_chunk("chunk")
        with keeper.scope() as resent:  # the sweeper's copy, in another thread
            resent.hold_chunk("chunk")
            original.drop_chunk("chunk")
            # Its rows are still being worked on: held, renewed, and not to be lost.
            assert keeper.held().chunks == {"chunk"}
            assert redis_client.zscore(keys.INFLIGHT, "chunk") is not None
        # The last one left on an error (or without dropping): the sweeper sends it again.
        assert keeper.held().chunks == set()
        assert redis_client.zscore(keys.INFLIGHT, "chunk") is not None
    keeper.hold_chunk("chunk", holder="again")
    with keeper.scope("again") as last:
        last.drop_chunk("chunk")
    assert redis_client.zscore(keys.INFLIGHT, "chunk") is None


def test_leases_redis_could_not_take_back_are_given_back_once_it_answers() -> None:
    with EmbeddedRedis(appendonly=True, args=["--appendfsync", "always"]) as server:
        client = redis.Redis.from_url(server.url)
        store = OutcomeStore(client)
        store.create_batch("b1", "f.csv", [row(1)])
        keeper = LeaseKeeper(store, LEASE_MS)
        with pytest.raises(StoreError), keeper.scope() as leases:
            token = leases.token("job")
            leases.claiming("m1", token)
            assert claim(store, 1, token) is Claim.CLAIMED
            leases.holding("m1", token)
            server.kill()
            store.record_post("b1", row(1), "m1", token)  # Redis is gone
        assert keeper.held() == Held(frozenset(), {})
        server.start()
        assert client.get(keys.lease("m1")) == token.encode()  # kept on disk, not renewed
        keeper.renew_all()  # the next beat
        assert client.exists(keys.lease("m1")) == 0
        client.close()


class Away(OutcomeStore):
    """The store, with Redis away while `away` for the calls that hold chunks."""

    away = False

    def hold_chunks(self, chunks, ttl_ms):
        if self.away:
            raise StoreError("Redis is restarting")
        super().hold_chunks(chunks, ttl_ms)

    def lapsed_chunks(self, chunks):
        if self.away:
            raise StoreError("Redis is restarting")
        super().lapsed_chunks(chunks)


def test_a_chunk_redis_never_heard_of_is_swept_once_it_answers(
    redis_client: redis.Redis,
) -> None:
    # Redis was away when the message came and when its task began: the task failed (and
    # Celery acked it) before anything in Redis named the chunk. Its rows must not stay
    # queued for ever: once Redis answers, the sweeper finds the chunk lapsed.
    store = Away(redis_client)
    keeper = LeaseKeeper(store, LEASE_MS)
    store.away = True
    with pytest.raises(StoreError):
        keeper.hold_chunk("chunk", holder="message")  # task_received's hold
    with pytest.raises(StoreError), keeper.scope("message") as leases:
        leases.hold_chunk("chunk")  # the task's own
    assert keeper.held() == Held(frozenset(), {})
    store.away = False
    assert store.claim_expired_chunks(LEASE_MS) == []  # Redis knows nothing of it yet
    keeper.renew_all()  # the next beat, Redis answering again
    assert store.claim_expired_chunks(LEASE_MS) == ["chunk"]


def test_a_lapsed_note_never_overrides_a_live_hold(redis_client: redis.Redis) -> None:
    store = Away(redis_client)
    keeper = LeaseKeeper(store, LEASE_MS)
    store.away = True
    with pytest.raises(StoreError):
        keeper.hold_chunk("chunk", holder="message")
    store.away = False
    other = LeaseKeeper(OutcomeStore(redis_client), LEASE_MS)
    other.hold_chunk("chunk", holder="another worker's message")  # the sweeper's copy
    keeper.renew_all()
    assert store.claim_expired_chunks(LEASE_MS) == []  # held by the other worker: not sent
