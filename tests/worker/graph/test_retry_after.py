"""worker.graph.retry_after: every spelling of Retry-After Graph (or a proxy) may send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from worker.graph import parse_retry_after
from worker.graph.retry_after import MAX_RETRY_AFTER_S

NOW = datetime(2024, 11, 5, 12, 0, 0, tzinfo=UTC)


def http_date(delta_s: float) -> str:
    return format_datetime(NOW + timedelta(seconds=delta_s), usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        ("120", 120.0),
        ("2.128", 2.128),
        (" 3 ", 3.0),
        ("0", 0.0),
        ("0.0", 0.0),
        ("-1", None),
        ("abc", None),
        ("nan", None),
        ("inf", None),
        ("1e3", None),
        ("", None),
        (None, None),
        (http_date(30), 30.0),
        (http_date(-30), 0.0),
        ("Tue, 05 Nov 2024 12:00:10 -0000", 10.0),  # parses naive: read as GMT
        ("Tue, 05 Nov 2024 25:61:00 GMT", None),
        ("99999999", MAX_RETRY_AFTER_S),
        ("1" * 400, MAX_RETRY_AFTER_S),
        (http_date(10 * 86400), MAX_RETRY_AFTER_S),
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, now=NOW) == expected


def test_an_http_date_counts_from_the_current_time_by_default():
    soon = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)

    waited = parse_retry_after(soon)

    assert waited is not None
    assert 55 <= waited <= 60


def test_a_naive_now_is_taken_as_utc():
    assert parse_retry_after(http_date(5), now=NOW.replace(tzinfo=None)) == 5.0
