"""The nightly schedule: cron expressions, and the runs they name."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from worker.errors import ConfigError
from worker.schedule import next_run, parse_cron, previous_run, slot_for
from worker.settings import load_settings


def at(text: str, zone: str = "UTC") -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("0 2 * * *", "0 2 * * *"),
        ("  0   2 * * *  ", "0 2 * * *"),
        ("*/15 1-3 * * mon-fri", "*/15 1-3 * * mon-fri"),
        ("30 4 29 2 *", "30 4 29 2 *"),
    ],
)
def test_valid_expressions_are_read_as_celery_reads_them(text: str, normalised: str) -> None:
    cron = parse_cron(text)
    assert cron.text == normalised
    assert cron.to_celery().minute == set(cron.minutes)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0 2 * *", "expected 5 fields"),
        ("", "expected 5 fields"),
        ("61 * * * *", "minute field"),
        ("0 25 * * *", "hour field"),
        ("0 0 0 * *", "day of month field"),
        ("0 0 * 13 *", "month field"),
        ("0 0 * * 8", "day of week field"),
        ("0 0 * * funday", "day of week field"),
        ("0 0 31 2 *", "never occurs"),
    ],
)
def test_a_bad_expression_names_the_field_that_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_cron(text)


@pytest.mark.parametrize(
    ("cron", "now", "previous", "following"),
    [
        ("0 2 * * *", "2026-11-28 01:59:59", "2026-11-27 02:00", "2026-11-28 02:00"),
        ("0 2 * * *", "2026-11-28 02:00:00", "2026-11-28 02:00", "2026-11-29 02:00"),
        ("0 2 * * *", "2026-11-28 02:00:30", "2026-11-28 02:00", "2026-11-29 02:00"),
        ("*/15 * * * *", "2026-11-28 10:07:00", "2026-11-28 10:00", "2026-11-28 10:15"),
        ("0 0 * * *", "2026-12-31 23:59:00", "2026-12-31 00:00", "2027-01-01 00:00"),
        # Saturday 28 November 2026: weekdays only
        ("0 9 * * mon-fri", "2026-11-28 12:00:00", "2026-11-27 09:00", "2026-11-30 09:00"),
        # 29 February only
        ("30 4 29 2 *", "2026-03-01 00:00:00", "2024-02-29 04:30", "2028-02-29 04:30"),
        # both day fields must match, as in Celery: Friday the 13th
        ("0 0 13 * fri", "2026-11-28 00:00:00", "2026-11-13 00:00", "2027-08-13 00:00"),
    ],
)
def test_previous_and_next_run(cron: str, now: str, previous: str, following: str) -> None:
    parsed = parse_cron(cron)
    assert previous_run(parsed, at(now)) == at(previous)
    assert next_run(parsed, at(now)) == at(following)


def test_runs_are_wall_clock_times_of_the_configured_zone() -> None:
    now = datetime(2026, 11, 28, 0, 30, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    upcoming = next_run(parse_cron("0 2 * * *"), now)
    assert upcoming == at("2026-11-28 02:00", "Europe/Paris")
    assert upcoming.astimezone(UTC).hour == 1


@pytest.mark.parametrize(
    ("cron", "now", "slot"),
    [
        ("0 2 * * *", "2026-11-28 02:00:05", "2026-11-28 02:00"),  # beat's message, at once
        ("0 2 * * *", "2026-11-28 09:30:00", "2026-11-28 02:00"),  # hours late: same night
        ("0 2 * * *", "2026-11-28 01:59:45", "2026-11-28 02:00"),  # this clock 15 s behind
        ("0 2 * * *", "2026-11-28 01:59:00", "2026-11-27 02:00"),  # a minute is no skew
        ("* * * * *", "2026-11-28 12:00:50", "2026-11-28 12:01"),  # skew ≤ a quarter period
        ("* * * * *", "2026-11-28 12:00:40", "2026-11-28 12:00"),
    ],
)
def test_slot_of_a_message_is_the_run_beat_sent_it_for(cron: str, now: str, slot: str) -> None:
    assert slot_for(parse_cron(cron), at(now)) == at(slot)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MEETREG_NIGHTLY_CRON", "0 2 * *"),
        ("MEETREG_NIGHTLY_CRON", "0 24 * * *"),
        ("MEETREG_TIMEZONE", "Mars/Olympus"),
        ("MEETREG_BEAT_LOCK_TIMEOUT_S", "1"),
    ],
)
def test_bad_nightly_setting_is_one_line_naming_it(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{variable}: ") and "\n" not in message
    assert "Value error" not in message


def test_nightly_settings_defaults_and_a_blank_drop_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEETREG_DROP_DIR", " ")
    settings = load_settings()
    assert (settings.nightly_cron, settings.timezone, settings.drop_dir) == (
        "0 2 * * *",
        "UTC",
        None,
    )
