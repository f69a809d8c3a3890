"""Could Redis evict meetreg's keys? The policy as a real Redis reports it, and the line
`meetreg doctor` and a starting worker print about it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from worker.redis.eviction import EvictionPolicy, read_eviction_policy


@pytest.fixture
def policy_restored(redis_client: redis.Redis) -> Iterator[redis.Redis]:
    saved = redis_client.config_get("maxmemory*")
    yield redis_client
    redis_client.config_set("maxmemory-policy", saved["maxmemory-policy"])
    redis_client.config_set("maxmemory", saved["maxmemory"])


def test_noeviction_is_read_as_safe(policy_restored: redis.Redis) -> None:
    policy_restored.config_set("maxmemory-policy", "noeviction")
    policy = read_eviction_policy(policy_restored)
    assert policy.known and not policy.may_evict
    assert policy.describe() == "noeviction"


def test_an_evicting_policy_is_read_with_its_limit_and_the_fix(
    policy_restored: redis.Redis,
) -> None:
    policy_restored.config_set("maxmemory", 512 * 1024 * 1024)
    policy_restored.config_set("maxmemory-policy", "allkeys-lru")
    policy = read_eviction_policy(policy_restored)
    assert policy == EvictionPolicy("allkeys-lru", 512 * 1024 * 1024)
    assert policy.may_evict
    assert "maxmemory 536870912" in policy.describe()
    assert policy.describe().endswith("set maxmemory-policy noeviction")


def test_an_evicting_policy_without_a_limit_yet_is_flagged_too() -> None:
    policy = EvictionPolicy("volatile-lru", 0)
    assert policy.may_evict
    assert "no maxmemory yet" in policy.describe()


def test_a_policy_redis_would_not_tell_says_so_and_what_to_check() -> None:
    policy = EvictionPolicy(None, refused="ResponseError: INFO and CONFIG refused")
    assert not policy.known and not policy.may_evict
    assert policy.describe().startswith("maxmemory-policy could not be read (ResponseError")
    assert "make sure it is noeviction" in policy.describe()
