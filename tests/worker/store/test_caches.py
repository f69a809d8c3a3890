"""The cached user ids: a UPN's objectId kept a day, so a batch looks each organizer up once."""

from __future__ import annotations

import redis

from worker import keys
from worker.store.outcome_store import OutcomeStore

UPN = "organizer@contoso.example"


def test_an_id_cached_is_read_back_and_kept_a_day(
    store: OutcomeStore, redis_client: redis.Redis
) -> None:
    assert store.cached_user_id(UPN) is None
    store.cache_user_id(UPN, "6a1f0c3e-0000-4000-8000-000000000001")
    assert store.cached_user_id(UPN) == "6a1f0c3e-0000-4000-8000-000000000001"
    assert 86_000 < redis_client.ttl(keys.upn(UPN)) <= 86_400


def test_a_new_id_replaces_the_cached_one(store: OutcomeStore) -> None:
    store.cache_user_id(UPN, "old")
    store.cache_user_id(UPN, "new")
    assert store.cached_user_id(UPN) == "new"
