"""Leases: which worker may talk to Graph about a meeting right now, fenced by a token.
A lease is taken with its row's claim (worker/store/meetings.py); here it is kept alive
and given back."""

from __future__ import annotations

from worker import keys
from worker.redis.connection import store_errors
from worker.redis.lua import LuaFile, RegisteredScript, lua_script
from worker.store.core import StoreCore

_RENEW_LEASES = lua_script(LuaFile("worker.store", "renew_leases"))
_RELEASE_LEASES = lua_script(LuaFile("worker.store", "release_leases"))


class Leases(StoreCore):
    """Renews and gives back leases still ours."""

    _renew_leases = RegisteredScript(_RENEW_LEASES)
    _release_leases = RegisteredScript(_RELEASE_LEASES)

    @store_errors
    def renew_leases(self, tokens_by_meeting: dict[str, str], ttl_ms: int) -> int:
        """Renew the leases whose token is still ours; returns how many were."""
        if not tokens_by_meeting:
            return 0
        lease_keys = [keys.lease(m) for m in tokens_by_meeting]
        return int(self._renew_leases(keys=lease_keys, args=[ttl_ms, *tokens_by_meeting.values()]))

    @store_errors
    def release_leases(self, tokens_by_meeting: dict[str, str]) -> int:
        """Give back the leases whose token is still ours; returns how many were."""
        if not tokens_by_meeting:
            return 0
        lease_keys = [keys.lease(m) for m in tokens_by_meeting]
        return int(self._release_leases(keys=lease_keys, args=list(tokens_by_meeting.values())))
