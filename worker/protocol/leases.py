"""What this worker process holds, kept alive by one heartbeat thread.

A worker holds chunks (in `inflight`, so the sweeper can tell a dead worker's chunks
from live ones) and meeting leases (so two workers never talk to Graph about one
meeting at once). Both expire unless renewed: if the process dies, they lapse within
`lease_ms` and the work is taken up again. One thread renews everything in one or two
round trips, every third of the lease, so tasks never renew anything themselves. The
same beat tells `meetreg serve`'s health check that a worker is alive.

What a chunk's work takes, it takes through a LeaseScope (`with keeper.scope() as
leases:`), which gives back on leaving whatever is still held through it, however the
work ended: a lease left in the keeper would be renewed for ever, and every later row of
its meeting (this chunk's own, sent again by the sweeper) would wait for it for ever.
A lease Redis could not take back (it was down: often why the work ended) is not renewed
any more, and is given back when Redis answers again, at the next beat or the next
chunk, rather than held up to `lease_ms` from the rows waiting for it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from worker.errors import StoreError
from worker.store.outcome_store import OutcomeStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Held:
    """What a LeaseKeeper renews at this moment."""

    chunks: frozenset[str]
    leases: dict[str, str]  # meeting id -> token


class LeaseKeeper:
    """Takes, renews and gives back this process's chunks and meeting leases."""

    def __init__(self, store: OutcomeStore, lease_ms: int) -> None:
        self.store = store
        self.lease_ms = lease_ms
        self._process = uuid.uuid4().hex
        self._lock = threading.Lock()
        # Chunk -> who holds it here: a received message, a thread working on it. Two
        # copies of a chunk (the sweeper's and the original) may be in one process at once:
        # the chunk is held until the last of them lets go, and that one says whether it
        # is done or left to the sweeper.
        self._chunks: dict[str, set[str]] = {}
        self._leases: dict[str, str] = {}  # meeting id -> token
        # Token -> (meeting id, when it lapses anyway): leases to give back when Redis can.
        self._returning: dict[str, tuple[str, float]] = {}
        # Chunks a holder asked to hold while Redis did not answer: if none of their work
        # gets further, nothing in Redis says they exist (Celery acks the failed task), and
        # their rows would stay queued for ever. Once Redis answers they are put in
        # `inflight` already lapsed, so the sweeper sends them again.
        self._unheld: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def scope(self, holder: str | None = None) -> LeaseScope:
        """A scope for one chunk's work (see LeaseScope); `holder` names it in the chunk's
        holders: the message's id, when `hold_chunk` held the chunk for the message."""
        # Leases Redis could not take back, while it is likely to answer: a chunk begins.
        # If it fails still, the chunk's own first call says so.
        with contextlib.suppress(StoreError):
            self._give_back_returning()
            self._record_unheld()
        return LeaseScope(self, holder or uuid.uuid4().hex)

    def held(self) -> Held:
        with self._lock:
            return Held(frozenset(self._chunks), dict(self._leases))

    # Chunks --------------------------------------------------------------------------------

    def hold_chunk(self, chunk: str, holder: str) -> None:
        """Hold the chunk in Redis for `holder`, unless this process does already (the worker
        holds it when it takes the message, then again when a thread starts it): every beat
        renews the chunks held here, so a second write would only cost a round trip."""
        with self._lock:
            holders = self._chunks.get(chunk)
            if holders:
                holders.add(holder)
                return
        try:
            self.store.hold_chunks([chunk], self.lease_ms)
        except StoreError:
            with self._lock:
                self._unheld.add(chunk)
            raise
        with self._lock:
            self._unheld.discard(chunk)
            self._chunks.setdefault(chunk, set()).add(holder)

    def drop_chunk(self, chunk: str, holder: str) -> None:
        """`holder` is done with the chunk: if no one else here holds it, no one needs to
        take it up again."""
        with self._lock:
            self._unheld.discard(chunk)
        if self._let_go(chunk, holder):
            self.store.drop_chunk(chunk)

    def abandon_chunk(self, chunk: str, holder: str) -> None:
        """`holder` stops holding the chunk; if no one else here holds it, it is no longer
        renewed, and its claim is left to expire: the sweeper sends it again."""
        self._let_go(chunk, holder)

    def _let_go(self, chunk: str, holder: str) -> bool:
        """True when `holder` was the chunk's last holder here."""
        with self._lock:
            holders = self._chunks.get(chunk)
            if holders is None:
                return False
            holders.discard(holder)
            if holders:
                return False
            del self._chunks[chunk]
            return True

    # Meeting leases ------------------------------------------------------------------------

    def token(self, holder: str) -> str:
        """The lease token of `holder` (one row's job) in this process: a token per job, so
        two jobs of one process exclude each other too."""
        return f"{self._process}:{holder}"

    def holding(self, meeting_id: str, token: str) -> None:
        """The store gave us the meeting's lease: keep it alive until `released`."""
        with self._lock:
            self._leases[meeting_id] = token

    def released(self, meeting_id: str, token: str) -> None:
        """The lease was given back (or lost): stop renewing it."""
        with self._lock:
            self._forget(meeting_id, token)

    def _forget(self, meeting_id: str, token: str) -> None:
        """Renew the meeting's lease no more, if `token` is the one renewed (under _lock)."""
        if self._leases.get(meeting_id) == token:
            del self._leases[meeting_id]

    def give_back(self, tokens_by_meeting: dict[str, str]) -> None:
        """Stop renewing these leases and give them back: now, or if Redis fails, once it
        answers again (the leases lapse meanwhile, if sooner)."""
        lapse_at = time.monotonic() + self.lease_ms / 1000
        with self._lock:
            for meeting_id, token in tokens_by_meeting.items():
                self._forget(meeting_id, token)
                self._returning[token] = (meeting_id, lapse_at)
        try:
            self._give_back_returning()
        except StoreError as exc:
            log.warning("could not give back leases yet, trying again later: %s", exc)

    def _give_back_returning(self) -> None:
        now = time.monotonic()
        with self._lock:
            for token, (_, lapse_at) in list(self._returning.items()):
                if lapse_at <= now:
                    del self._returning[token]
            returning = {meeting_id: token for token, (meeting_id, _) in self._returning.items()}
        if not returning:
            return
        self.store.release_leases(returning)
        with self._lock:
            for token in returning.values():
                self._returning.pop(token, None)

    # The heartbeat -------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._seen()
            self._thread = threading.Thread(target=self._beat, name="meetreg-leases", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def renew_all(self) -> None:
        held = self.held()
        self.store.hold_chunks(held.chunks, self.lease_ms)
        self.store.renew_leases(held.leases, self.lease_ms)
        self.store.worker_seen(self._process)
        self._give_back_returning()
        self._record_unheld()

    def _record_unheld(self) -> None:
        """Put the chunks Redis could not be told about in `inflight`, lapsed."""
        with self._lock:
            unheld = [chunk for chunk in self._unheld if chunk not in self._chunks]
        if not unheld:
            return
        self.store.lapsed_chunks(unheld)
        with self._lock:
            self._unheld.difference_update(unheld)

    def _seen(self) -> None:
        try:
            self.store.worker_seen(self._process)
        except StoreError as exc:
            log.warning("could not record this worker's heartbeat: %s", exc)

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_ms / 3000):
            try:
                self.renew_all()
            except StoreError as exc:
                # Keep beating: a short Redis outage must not end the heartbeat for good.
                log.warning("could not renew leases: %s", exc)


class LeaseScope:
    """What one chunk's work holds, through the process's LeaseKeeper, and gives back
    when the work ends, whatever ended it.

    On leaving the `with` block, the chunk if not dropped is abandoned (the sweeper sends
    it again), and every lease still held (or asked for, its answer lost) stops being
    renewed and is given back, in one round trip; if Redis is down then, as soon as it
    answers again (LeaseKeeper.give_back). Used by the one thread doing the work.
    """

    def __init__(self, keeper: LeaseKeeper, holder: str) -> None:
        self.keeper = keeper
        self.holder = holder
        self.lease_ms = keeper.lease_ms
        self._chunks: set[str] = set()
        # Token -> meeting id: a lease held, or asked for and its answer not yet come.
        self._leases: dict[str, str] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        chunks, self._chunks = self._chunks, set()
        for chunk in chunks:
            self.keeper.abandon_chunk(chunk, self.holder)
        leases, self._leases = self._leases, {}
        if leases:
            self.keeper.give_back({meeting_id: token for token, meeting_id in leases.items()})

    # Chunks --------------------------------------------------------------------------------

    def hold_chunk(self, chunk: str) -> None:
        self.keeper.hold_chunk(chunk, self.holder)
        self._chunks.add(chunk)

    def drop_chunk(self, chunk: str) -> None:
        """The chunk is done: no one needs to take it up again."""
        self._chunks.discard(chunk)
        self.keeper.drop_chunk(chunk, self.holder)

    # Meeting leases ------------------------------------------------------------------------

    def token(self, holder: str) -> str:
        return self.keeper.token(holder)

    def claiming(self, meeting_id: str, token: str) -> None:
        """A claim of the meeting's lease is on its way: should its answer be lost, the
        store may have given us the lease all the same."""
        self._leases[token] = meeting_id

    def holding(self, meeting_id: str, token: str) -> None:
        """The store gave us the meeting's lease: keep it alive until `released`."""
        self._leases[token] = meeting_id
        self.keeper.holding(meeting_id, token)

    def released(self, meeting_id: str, token: str) -> None:
        """The lease was given back, lost, or not given: stop renewing it."""
        self._leases.pop(token, None)
        self.keeper.released(meeting_id, token)

    def give_back(self, meeting_id: str, token: str) -> None:
        self._leases.pop(token, None)
        self.keeper.give_back({meeting_id: token})
