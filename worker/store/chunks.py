"""Chunks held by workers: each chunk message a worker is processing is held, with a
deadline it keeps renewing, so a sweeper sends again the chunks of a worker that died."""

from __future__ import annotations

from collections.abc import Iterable

from worker import keys
from worker.redis.connection import redis_now_ms, store_errors
from worker.redis.lua import LuaFile, RegisteredScript, lua_script
from worker.store.core import StoreCore

_HOLD_CHUNKS = lua_script(LuaFile("worker.store", "hold_chunks"))
_CLAIM_EXPIRED = lua_script(LuaFile("worker.store", "claim_expired_chunks"))


class Chunks(StoreCore):
    """Holds, drops and takes back chunks."""

    _hold_chunks = RegisteredScript(_HOLD_CHUNKS)
    _claim_expired = RegisteredScript(_CLAIM_EXPIRED)

    @store_errors
    def hold_chunks(self, chunks: Iterable[str], ttl_ms: int) -> None:
        """Claim (or renew the claim on) chunks this worker is processing: until Redis'
        clock says `ttl_ms` from now, in one round trip."""
        held = list(chunks)
        if held:
            self._hold_chunks(keys=[keys.INFLIGHT], args=[ttl_ms, *held])

    @store_errors
    def lapsed_chunks(self, chunks: Iterable[str]) -> None:
        """Note chunks as lapsed already, for the sweeper to send again, unless someone holds
        them: a deadline of 0 is in the past on any clock."""
        self.redis.zadd(keys.INFLIGHT, dict.fromkeys(chunks, 0), nx=True)

    @store_errors
    def drop_chunk(self, chunk: str) -> None:
        self.redis.zrem(keys.INFLIGHT, chunk)

    @store_errors
    def claim_expired_chunks(self, ttl_ms: int, limit: int = 500) -> list[str]:
        """Chunks whose worker stopped renewing them, each returned to one caller only."""
        now_ms = int(redis_now_ms(self.redis))
        found = self._claim_expired(keys=[keys.INFLIGHT], args=[now_ms, limit, now_ms + ttl_ms])
        return [item.decode() if isinstance(item, bytes) else str(item) for item in found]
