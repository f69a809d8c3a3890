import pytest
import redis

from worker.store.outcome_store import OutcomeStore


@pytest.fixture
def store(redis_client: redis.Redis) -> OutcomeStore:
    return OutcomeStore(redis_client, retention_days=2, idempotency_retention_days=10)
