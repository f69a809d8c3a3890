"""The sweeper: chunks whose worker stopped renewing them are sent again, once, and the
sweeper's thread outlives a failing sweep. Real Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import redis

from worker.protocol.chunk import Chunk, chunk_name
from worker.protocol.recovery import Sweeper, sweep_once
from worker.store.outcome_store import OutcomeStore

LEASE_MS = 60_000


def store_on(client: redis.Redis) -> OutcomeStore:
    return OutcomeStore(client, retention_days=2, idempotency_retention_days=10)


def test_a_lapsed_chunk_is_sent_again_once_and_a_renewed_one_is_left(
    redis_client: redis.Redis,
) -> None:
    store = store_on(redis_client)
    store.hold_chunks([chunk_name("b-dead", 0, 10)], ttl_ms=1)
    store.hold_chunks([chunk_name("b-alive", 0, 10)], ttl_ms=LEASE_MS)
    time.sleep(0.01)
    sent: list[Chunk] = []

    def publish(chunks: Iterable[tuple[str, int, int]]) -> int:
        sent.extend(Chunk(*chunk) for chunk in chunks)
        return len(sent)

    assert sweep_once(store, publish, LEASE_MS) == 1
    assert sent == [Chunk("b-dead", 0, 10)]
    # Claimed for the copy just sent: the next look finds nothing to send.
    assert sweep_once(store, publish, LEASE_MS) == 0
    assert sent == [Chunk("b-dead", 0, 10)]


def test_the_sweeper_keeps_looking_after_a_sweep_that_failed(redis_client: redis.Redis) -> None:
    store = store_on(redis_client)
    calls: list[int] = []
    resent = threading.Event()

    def publish(chunks: Iterable[tuple[str, int, int]]) -> int:
        calls.append(len(list(chunks)))
        if len(calls) == 1:
            raise RuntimeError("the broker refused this one")
        resent.set()
        return calls[-1]

    sweeper = Sweeper(store, publish, lease_ms=1, interval_s=0.05).start()
    try:
        store.hold_chunks([chunk_name("b-1", 0, 10)], ttl_ms=1)
        assert resent.wait(5)  # the first publish raised; a later sweep sent it again
    finally:
        sweeper.stop()
    assert calls[:2] == [1, 1]
