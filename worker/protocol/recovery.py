"""Taking up the work of dead workers, without waiting for the broker.

With the Redis broker, a message held by a killed worker comes back only after the
visibility timeout (12 h here; kombu#337, celery#3541). So every worker holds the chunks
it works on in `inflight` and renews them; the sweeper, a thread in every worker and in
`meetreg run`, re-sends chunks whose claim lapsed. Within `MEETREG_RECOVERY_S`: a claim
lapses after half of it, and the sweeper looks every quarter.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from worker.errors import StoreError
from worker.protocol.chunk import parse_chunk
from worker.store.outcome_store import OutcomeStore

log = logging.getLogger(__name__)

Publish = Callable[[Iterable[tuple[str, int, int]]], int]


def sweep_once(store: OutcomeStore, publish: Publish, lease_ms: int) -> int:
    """Re-send every chunk whose worker stopped renewing it; returns how many."""
    chunks = [parse_chunk(chunk) for chunk in store.claim_expired_chunks(lease_ms)]
    for batch_id, start, stop in chunks:
        log.warning(
            "taking up rows %d-%d of batch %s again",
            start,
            stop - 1,
            batch_id,
            extra={"batch_id": batch_id},
        )
    return publish(chunks) if chunks else 0


class Sweeper:
    """A daemon thread running `sweep_once` every `interval_s`."""

    def __init__(
        self, store: OutcomeStore, publish: Publish, lease_ms: int, interval_s: float
    ) -> None:
        self._sweep: Callable[[], object] = lambda: sweep_once(store, publish, lease_ms)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="meetreg-sweeper", daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._sweep()
            except StoreError as exc:
                log.warning("sweep failed, trying again in %.0f s: %s", self.interval_s, exc)
            except Exception:  # the sweeper must outlive any one bad chunk or publish
                log.exception("sweep failed")
