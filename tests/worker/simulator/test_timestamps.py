"""Graph's timestamps in the simulator: written with seven digits and a Z, read in any form
a client sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from worker.simulator.timestamps import graph_time, parse_time

MOMENT = datetime(2026, 11, 28, 10, 0, 0, 123456, tzinfo=UTC)


def test_graph_writes_utc_with_seven_fractional_digits_and_a_z() -> None:
    paris = MOMENT.astimezone(timezone(timedelta(hours=1)))
    assert graph_time(paris) == "2026-11-28T10:00:00.1234560Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-28T10:00:00Z", MOMENT.replace(microsecond=0)),
        ("2026-11-28T10:00:00.1Z", MOMENT.replace(microsecond=100_000)),
        ("2026-11-28T10:00:00.1234567Z", MOMENT),
        ("2026-11-28T11:00:00.123456+01:00", MOMENT),
        ("2026-11-28T10:00:00.123456", MOMENT),
        (" 2026-11-28T10:00:00.1234560z ", MOMENT),
    ],
)
def test_a_clients_timestamp_is_read_in_every_form_graph_accepts(
    text: str, expected: datetime
) -> None:
    assert parse_time(text) == expected


def test_what_graph_writes_reads_back() -> None:
    assert parse_time(graph_time(MOMENT)) == MOMENT


@pytest.mark.parametrize("text", ["", "tomorrow", "2026-13-01T00:00:00Z"])
def test_anything_else_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)
