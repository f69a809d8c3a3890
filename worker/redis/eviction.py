"""Could Redis evict meetreg's keys? Read once by `meetreg doctor` and at worker start.

Every policy but `noeviction` lets Redis drop keys when it reaches `maxmemory`: a batch,
a row's lease, the limiter's pause or a queued message would vanish without a word. With
`noeviction` a full Redis refuses writes instead, which meetreg reports as errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

SAFE_POLICY = "noeviction"


@dataclass(frozen=True, slots=True)
class EvictionPolicy:
    """`policy` is None when Redis would not say (CONFIG and INFO refused, as managed
    Redis and ACL users without @dangerous do); `maxmemory` 0 means no limit."""

    policy: str | None
    maxmemory: int = 0
    refused: str = ""  # why it could not be read: the error's kind

    @property
    def known(self) -> bool:
        return self.policy is not None

    @property
    def may_evict(self) -> bool:
        # Without a limit nothing is evicted yet, but one `CONFIG SET maxmemory` (or a
        # managed plan's own limit) away from it: any other policy is flagged.
        return self.policy is not None and self.policy != SAFE_POLICY

    def describe(self) -> str:
        """One line: the policy, and the fix when keys may be evicted."""
        if self.policy is None:
            return (
                f"maxmemory-policy could not be read ({self.refused}); make sure it is "
                f"{SAFE_POLICY}, or Redis may drop meetreg's keys when memory is full"
            )
        if not self.may_evict:
            return self.policy
        limit = f"maxmemory {self.maxmemory}" if self.maxmemory else "no maxmemory yet"
        return (
            f"maxmemory-policy {self.policy} ({limit}): Redis may drop meetreg's keys "
            f"(batches, leases, queued rows) when memory is full; set maxmemory-policy "
            f"{SAFE_POLICY}"
        )


def read_eviction_policy(client: redis.Redis) -> EvictionPolicy:
    """The policy from INFO memory, else CONFIG GET. Raises redis.ConnectionError (and
    other redis errors) when Redis cannot be reached; a refused command is not an error."""
    try:
        memory = client.info("memory")
        return EvictionPolicy(str(memory["maxmemory_policy"]), int(memory.get("maxmemory", 0)))
    except (redis.ResponseError, KeyError):
        pass  # INFO refused (ACL -@dangerous), or a server that leaves the field out
    try:
        config = client.config_get("maxmemory*")
        return EvictionPolicy(str(config["maxmemory-policy"]), int(config.get("maxmemory") or 0))
    except (redis.ResponseError, KeyError) as exc:
        return EvictionPolicy(None, refused=f"{type(exc).__name__}: INFO and CONFIG refused")
