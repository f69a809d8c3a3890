"""Small caches: answers from Graph worth keeping a day, such as a UPN's objectId."""

from __future__ import annotations

from worker import keys
from worker.redis.connection import store_errors
from worker.store.core import DAY_S, StoreCore
from worker.store.encoding import as_text


class Caches(StoreCore):
    """Reads and writes the cached user ids."""

    @store_errors
    def cached_user_id(self, upn: str) -> str | None:
        value = self.redis.get(keys.upn(upn))
        return as_text(value) if value is not None else None

    @store_errors
    def cache_user_id(self, upn: str, object_id: str) -> None:
        self.redis.set(keys.upn(upn), object_id, ex=DAY_S)
