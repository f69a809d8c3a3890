"""A chunk: the rows of one Celery message, brought to a final state while the chunk is
held. A create batch's chunk goes in waves (worker.protocol.wave) when the policy says
so, each row the wave leaves then going on alone (worker.protocol.row); an undo batch's
rows, and every row without waves, go alone one after the other."""

from __future__ import annotations

import json
import math
from typing import NamedTuple

from worker.protocol.deps import Deps, Policy
from worker.protocol.row import RowJob
from worker.protocol.steps import RowSteps
from worker.protocol.wave import Wave
from worker.telemetry.logs import row_context

IN_FLIGHT_S = 2.0  # see wave_size
REQUESTS_PER_ROW = 2  # a look, then a create


class Chunk(NamedTuple):
    """Rows start..stop-1 of a batch."""

    batch_id: str
    start: int
    stop: int


def chunk_name(batch_id: str, start: int, stop: int) -> str:
    """The identity of rows start..stop-1 of a batch, as held in `inflight`."""
    return json.dumps([batch_id, start, stop], separators=(",", ":"))


def parse_chunk(name: str) -> Chunk:
    batch_id, start, stop = json.loads(name)
    return Chunk(str(batch_id), int(start), int(stop))


def wave_size(policy: Policy, rate_per_s: float) -> int:
    """Rows a thread takes together: a full wave while the rate leaves room, fewer when it
    is what holds every thread back. Rows claimed long before their rate slot only wait,
    and a pause makes all their slots go stale at once (bench/, a limit of 80/s found from
    429s: waves of 20 made 83% of it, of 10 90%). Every thread together keeps about
    IN_FLIGHT_S of requests at the current rate claimed."""
    rows_wanted = rate_per_s * IN_FLIGHT_S / REQUESTS_PER_ROW
    return max(1, min(policy.wave_size, math.ceil(rows_wanted / policy.threads)))


def process_chunk(
    deps: Deps, batch_id: str, start: int, stop: int, *, holder: str | None = None
) -> None:
    """Bring rows start..stop-1 of the batch to a final state, holding the chunk meanwhile;
    `holder`: the message's id, if the chunk was held for it when it was received.

    Whatever stops the work (Redis failing, the worker going down), what it took is given
    back (see LeaseScope): the chunk's claim is left to lapse, for the sweeper to send the
    chunk again, rather than dropped with rows left half-done; and no lease of a row left
    unfinished is renewed, or the chunk sent again would wait for it for ever."""
    name = chunk_name(batch_id, start, stop)
    with deps.leases.scope(holder) as leases:
        leases.hold_chunk(name)
        operation = deps.store.batch_operation(batch_id)
        with row_context(batch_id=batch_id):
            rows = [
                row
                for row in deps.store.rows(batch_id, list(range(start, stop)))
                if row is not None and not row.status.is_final
            ]
            if deps.policy.in_waves and not operation.undoes:
                # In waves: a message may hold hundreds of rows, and rows claimed but not
                # yet sent are rows the safety valve cannot stop any more.
                size = wave_size(deps.policy, deps.limiter.rate_now())
                for first in range(0, len(rows), size):
                    wave = Wave(deps, leases, batch_id, operation)
                    for alone in wave.run(rows[first : first + size]):
                        RowJob(alone.steps).run(alone.first)
            else:
                for row in rows:
                    RowJob(RowSteps(deps, leases, batch_id, row, operation)).run()
        leases.drop_chunk(name)
