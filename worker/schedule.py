"""When the nightly job runs: a five-field cron expression and the run times it names.

The expression is read with Celery's own parser (`celery.schedules.crontab`), so what
`meetreg nightly` says about the next run is what `celery -A worker.app beat` does. Like
Celery, and unlike Vixie cron, a run needs *both* day fields to match when both are
restricted; day of week is 0-6 (0 = Sunday) or a name.

`next_run` and `previous_run` are pure: times are wall-clock times in `now`'s time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from celery.schedules import crontab

_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
_LABELS = ("minute", "hour", "day of month", "month", "day of week")
# Both day fields must match; the rarest such day (29 February on a given weekday) comes
# round every 28 years, so a search that long finds every expression's run.
_SEARCH_DAYS = 28 * 366


@dataclass(frozen=True, slots=True)
class Cron:
    """A parsed cron expression: the values each field allows (day of week 0 = Sunday)."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]

    def to_celery(self) -> crontab:
        """The same schedule as Celery beat's `crontab`."""
        return crontab(**dict(zip(_FIELDS, self.text.split(), strict=True)))

    def runs_on(self, day: date) -> bool:
        return (
            day.month in self.months
            and day.day in self.days_of_month
            and day.isoweekday() % 7 in self.days_of_week
        )


def parse_cron(text: str) -> Cron:
    """Read `minute hour day-of-month month day-of-week`. Raises ValueError naming the
    field that is wrong."""
    fields = text.split()
    if len(fields) != len(_FIELDS):
        raise ValueError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    for name, label, value in zip(_FIELDS, _LABELS, fields, strict=True):
        try:
            crontab(**{name: value})
        except Exception as exc:  # ValueError, or the parser's own ParseException
            raise ValueError(f"{label} field: {exc}") from None
    try:
        spec = crontab(**dict(zip(_FIELDS, fields, strict=True)))
    except ValueError as exc:  # a day that never occurs in the months given
        raise ValueError(str(exc)) from None
    return Cron(
        text=" ".join(fields),
        minutes=frozenset(spec.minute),
        hours=frozenset(spec.hour),
        days_of_month=frozenset(spec.day_of_month),
        months=frozenset(spec.month_of_year),
        days_of_week=frozenset(spec.day_of_week),
    )


def next_run(cron: Cron, now: datetime) -> datetime:
    """The first run strictly after `now`, in `now`'s time zone."""
    start = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = start.date()
    times = _times(cron, ascending=True)
    for _ in range(_SEARCH_DAYS):
        if cron.runs_on(day):
            earliest = start.time() if day == start.date() else time(0, 0)
            found = next((t for t in times if t >= earliest), None)
            if found is not None:
                return datetime.combine(day, found, tzinfo=now.tzinfo)
        day += timedelta(days=1)
    raise ValueError(f"{cron.text!r} never runs")  # parse_cron refuses such expressions


def previous_run(cron: Cron, now: datetime) -> datetime:
    """The latest run at or before `now`, in `now`'s time zone: the slot a run belongs to."""
    start = now.replace(second=0, microsecond=0)
    day = start.date()
    times = _times(cron, ascending=False)
    for _ in range(_SEARCH_DAYS):
        if cron.runs_on(day):
            latest = start.time() if day == start.date() else time(23, 59)
            found = next((t for t in times if t <= latest), None)
            if found is not None:
                return datetime.combine(day, found, tzinfo=now.tzinfo)
        day -= timedelta(days=1)
    raise ValueError(f"{cron.text!r} never runs")


def _times(cron: Cron, *, ascending: bool) -> list[time]:
    return sorted(
        (time(hour, minute) for hour in cron.hours for minute in cron.minutes),
        reverse=not ascending,
    )


# A worker whose clock is a little behind beat's must still file a run under the slot
# beat sent it for, not the one before.
SLOT_SKEW = timedelta(seconds=30)


def slot_for(cron: Cron, now: datetime) -> datetime:
    """The scheduled run that a message handled at `now` belongs to: the latest run at or
    before `now`, or the next one when it is only a clock's skew away (SLOT_SKEW, and at
    most a quarter of the time between the two runs)."""
    before = previous_run(cron, now)
    after = next_run(cron, now)
    if after - now <= min(SLOT_SKEW, (after - before) / 4):
        return after
    return before
