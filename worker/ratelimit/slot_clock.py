"""When a rate slot is due, in this process's clock.

The limiter's Lua scripts name each slot by its time on Redis' clock (`TIME`, ms) and say
how long from their own "now" that is. The caller only knows when it *asked*: the script
ran some time later (the pipeline was being built, the GIL was busy, Redis had a queue).
Counting the wait from the asking sends that request early by this delay, and the delay
varies from call to call: on two busy cores it was 1 ms typically and up to 40 ms, so
requests paced 5 ms apart left in clumps a one-second window counts against us.

So the clock learns the offset between Redis' clock and `time.monotonic()`: each reply
gives one reading, (Redis' time when the script ran) - (our time when we asked), never
below the true offset (the script ran after we asked), and the smallest recent reading is
the estimate. Readings age out so that a clock that was stepped is followed within
`horizon_s`. A due time is never put outside what the reply itself proves: no earlier than
the asking plus the wait, no later than the reading plus the wait.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class SlotClock:
    """Converts slot times on Redis' clock to `time.monotonic()` seconds."""

    def __init__(
        self, horizon_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.horizon_s = horizon_s
        self._clock = clock
        # The smallest reading of the current and of the previous half-horizon (ms).
        self._current = math.inf
        self._previous = math.inf
        self._rotated_at = clock()

    @property
    def offset_ms(self) -> float:
        """Redis' clock less ours, as best known (inf before the first reading)."""
        return min(self._current, self._previous)

    def due(self, wait_ms: float, slot_id: str, asked_at: float) -> float:
        """When the slot `slot_id` (Redis ms), `wait_ms` after the script's now, is due;
        the call that reserved it was made at `asked_at` (monotonic s)."""
        earliest = asked_at + wait_ms / 1000
        try:
            slot_ms = float(slot_id)
        except ValueError:  # no slot named: all we know is the asking
            return earliest
        now = self._clock()
        self._read((slot_ms - wait_ms) - asked_at * 1000, now)
        return min(max((slot_ms - self.offset_ms) / 1000, earliest), now + wait_ms / 1000)

    def _read(self, reading_ms: float, now: float) -> None:
        # Two buckets of half a horizon each: the estimate is the minimum over the last
        # half to whole horizon, with no per-reading bookkeeping. Threads racing here can
        # lose a reading, not corrupt the estimate (each assignment is whole).
        age_s = now - self._rotated_at
        if age_s >= self.horizon_s / 2:
            self._previous = self._current if age_s < self.horizon_s else math.inf
            self._current = math.inf
            self._rotated_at = now
        if reading_ms < self._current:
            self._current = reading_ms
