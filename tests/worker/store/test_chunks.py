"""Chunks held by workers, taken back when their holder stops renewing them."""

import json
import time

from worker.store.outcome_store import OutcomeStore


def test_expired_chunk_is_claimed_by_one_sweeper_only(store: OutcomeStore) -> None:
    chunk = json.dumps(["b1", 1, 11])
    store.hold_chunks([chunk], ttl_ms=1)
    time.sleep(0.01)
    assert store.claim_expired_chunks(ttl_ms=60_000) == [chunk]
    assert store.claim_expired_chunks(ttl_ms=60_000) == []  # pushed out for the next holder
    store.drop_chunk(chunk)
    store.hold_chunks([chunk], ttl_ms=60_000)
    assert store.claim_expired_chunks(ttl_ms=60_000) == []
