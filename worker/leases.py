"""What this worker process holds, kept alive by one heartbeat thread.

A worker holds chunks (in `inflight`, so the sweeper can tell a dead worker's chunks
from live ones) and meeting leases (so two workers never talk to Graph about one
meeting at once). Both expire unless renewed: if the process dies, they lapse within
`lease_ms` and the work is taken up again. One thread renews everything in one or two
round trips, every third of the lease, so tasks never renew anything themselves. The
same beat tells `meetreg serve`'s health check that a worker is alive.
"""

from __future__ import annotations

import logging
import threading
import uuid

from worker.errors import StoreError
from worker.store import OutcomeStore

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Takes, renews and gives back this process's chunks and meeting leases."""

    def __init__(self, store: OutcomeStore, lease_ms: int) -> None:
        self.store = store
        self.lease_ms = lease_ms
        self._process = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._chunks: set[str] = set()
        self._leases: dict[str, str] = {}  # meeting id -> token
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # Chunks --------------------------------------------------------------------------------

    def hold_chunk(self, chunk: str) -> None:
        """Hold the chunk in Redis, unless this process does already (the worker holds it
        when it takes the message, then again when a thread starts it): every beat renews
        the chunks held here, so a second write would only cost a round trip."""
        with self._lock:
            if chunk in self._chunks:
                return
        self.store.hold_chunks([chunk], self.lease_ms)
        with self._lock:
            self._chunks.add(chunk)

    def drop_chunk(self, chunk: str) -> None:
        """The chunk is done: no one needs to take it up again."""
        with self._lock:
            self._chunks.discard(chunk)
        self.store.drop_chunk(chunk)

    def abandon_chunk(self, chunk: str) -> None:
        """Stop renewing the chunk but leave its claim to expire: the sweeper re-sends it."""
        with self._lock:
            self._chunks.discard(chunk)

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
            if self._leases.get(meeting_id) == token:
                del self._leases[meeting_id]

    def give_back(self, meeting_id: str, token: str) -> None:
        self.released(meeting_id, token)
        self.store.release_lease(meeting_id, token)

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
        with self._lock:
            chunks = list(self._chunks)
            leases = dict(self._leases)
        self.store.hold_chunks(chunks, self.lease_ms)
        self.store.renew_leases(leases, self.lease_ms)
        self.store.worker_seen(self._process)

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
