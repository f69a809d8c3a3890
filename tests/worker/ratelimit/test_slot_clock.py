"""When a rate slot is due in our clock: a request must leave at its slot, not before it
because the script that reserved it ran late, nor after it."""

from worker.ratelimit.slot_clock import SlotClock

# Redis' clock (ms since the epoch) is this far ahead of our monotonic clock (s).
OFFSET_MS = 1_790_000_000_000.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def redis_ms(monotonic_s: float, offset_ms: float = OFFSET_MS) -> float:
    return offset_ms + monotonic_s * 1000


def reply(slot_clock: SlotClock, asked_at: float, ran_at: float, wait_ms: float) -> float:
    """A reserve script asked at `asked_at` ran at `ran_at` and gave a slot `wait_ms` on;
    its reply is read now. Returns the due time."""
    slot_id = f"{redis_ms(ran_at) + wait_ms:.3f}"
    return slot_clock.due(wait_ms, slot_id, asked_at)


def test_a_slot_reserved_by_a_script_that_ran_late_is_not_sent_early() -> None:
    clock = Clock(10.001)
    slots = SlotClock(clock=clock)
    reply(slots, asked_at=10.0, ran_at=10.0005, wait_ms=20)  # a quick round trip
    clock.now = 10.060
    # Asked at 10.010; the pipeline ran 30 ms later; the slot is 50 ms after that.
    due = reply(slots, asked_at=10.010, ran_at=10.040, wait_ms=50)
    assert abs(due - 10.090) < 0.001  # not 10.060, 30 ms early


def test_a_due_time_stays_within_what_the_reply_proves() -> None:
    clock = Clock(5.0)
    slots = SlotClock(clock=clock)
    # Redis' clock stepped back 1 s after the first reading: the estimate would put the
    # slot before the asking.
    reply(slots, asked_at=4.999, ran_at=4.9995, wait_ms=0)
    clock.now = 6.0
    slot_id = f"{redis_ms(5.9995, OFFSET_MS - 1000) + 40:.3f}"
    assert slots.due(40, slot_id, asked_at=5.999) == 5.999 + 0.040
    # Stepped forward 1 s: the estimate would put it a second late; the reply was read
    # at 6.0, so the slot is at most 40 ms after that.
    slot_id = f"{redis_ms(5.9995, OFFSET_MS + 1000) + 40:.3f}"
    assert slots.due(40, slot_id, asked_at=5.999) == clock.now + 0.040


def test_a_stepped_clock_is_followed_once_old_readings_age_out() -> None:
    clock = Clock(0.001)
    slots = SlotClock(horizon_s=10.0, clock=clock)
    reply(slots, asked_at=0.0, ran_at=0.0005, wait_ms=0)
    assert abs(slots.offset_ms - (OFFSET_MS + 0.5)) < 0.01
    # Redis' clock is now 200 ms ahead of where it was: every reading says so.
    for second in range(1, 12):
        clock.now = second + 0.001
        slot_id = f"{redis_ms(second + 0.0005, OFFSET_MS + 200):.3f}"
        slots.due(0, slot_id, asked_at=second)
    assert abs(slots.offset_ms - (OFFSET_MS + 200.5)) < 0.01


def test_without_a_slot_time_the_wait_counts_from_the_asking() -> None:
    slots = SlotClock(clock=Clock(1.0))
    assert slots.due(25, "", asked_at=0.9) == 0.9 + 0.025
