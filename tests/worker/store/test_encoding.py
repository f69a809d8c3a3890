"""How the store writes text and moments: the stamps a report shows and ages are read from."""

from __future__ import annotations

from datetime import UTC, datetime

from worker.store.encoding import as_text, iso, iso_from_ms, ms_from_iso, now_iso


def test_values_from_redis_read_as_text_whether_bytes_or_str() -> None:
    assert as_text(b"caf\xc3\xa9") == "café"
    assert as_text("café") == "café"


def test_a_utc_moment_is_written_to_the_millisecond_with_a_z() -> None:
    # The store's moments are all UTC (now_iso, iso_from_ms); a Z, not +00:00.
    moment = datetime(2026, 11, 28, 10, 0, 0, 123456, tzinfo=UTC)
    assert iso(moment) == "2026-11-28T10:00:00.123Z"


def test_stamps_read_back_to_the_millisecond_they_were_written_at() -> None:
    ms = 1_795_000_000_123
    assert iso_from_ms(ms) == "2026-11-18T11:06:40.123Z"
    assert ms_from_iso(iso_from_ms(ms)) == ms


def test_now_is_a_stamp_of_this_moment() -> None:
    before = datetime.now(UTC).timestamp() * 1000
    stamp_ms = ms_from_iso(now_iso())
    assert before - 1 <= stamp_ms <= datetime.now(UTC).timestamp() * 1000


def test_an_empty_or_unreadable_stamp_reads_as_zero() -> None:
    assert ms_from_iso("") == 0
    assert ms_from_iso("yesterday") == 0
