"""Graph's timestamps: how the simulator writes them, and how it reads a client's.

Graph writes calendar and subscription times in UTC with seven fractional digits and `Z`
(`2026-11-28T10:00:00.1234567Z`); Python keeps six, so the seventh is always 0 here.
Clients send anything from `2026-11-28T10:00:00Z` to an offset with seven digits.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_FRACTION = re.compile(r"\.(\d+)")


def utc_now() -> datetime:
    return datetime.now(UTC)


def graph_time(moment: datetime) -> str:
    """`moment` as Graph writes it: UTC, seven fractional digits, `Z`."""
    moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}0Z"


def parse_time(text: str) -> datetime:
    """A client's ISO 8601 timestamp (0 to 7 fractional digits, `Z` or an offset; UTC when
    it names no zone). Raises ValueError when it is not one."""
    # fromisoformat takes 3 or 6 digits only: pad or cut to 6.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text.strip(), count=1)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
