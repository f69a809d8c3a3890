"""How the store writes values in Redis: text, and moments as UTC ISO stamps."""

from __future__ import annotations

from datetime import UTC, datetime


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def now_iso() -> str:
    return iso(datetime.now(UTC))


def iso(moment: datetime) -> str:
    """How the store writes a moment: UTC, to the millisecond, with a `Z`."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_from_ms(ms: int) -> str:
    return iso(datetime.fromtimestamp(ms / 1000, UTC))


def ms_from_iso(stamp: str) -> int:
    """`now_iso()`'s stamps back in ms since the epoch; 0 for "" or a stamp unreadable."""
    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return 0
