"""Read Graph's `Retry-After`: seconds (floats such as "2.128" too) or an HTTP-date."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# A wait longer than an hour is a broken header, not advice; the caller's backoff takes over.
MAX_RETRY_AFTER_S = 3600.0
# Digits only: float() would also take "nan", "inf", "-1", "1_000" and "1e3".
_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait, capped at MAX_RETRY_AFTER_S, or None when absent or unreadable.

    An HTTP-date counts from `now` (default: the current UTC time); a past date is 0.
    Never raises.
    """
    if value is None:
        return None
    text = value.strip()
    if _SECONDS.fullmatch(text):
        return min(float(text), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" dates parse naive; HTTP-dates are GMT
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER_S)
