"""worker.settings: environment names that were renamed still work, with one warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from worker import settings as settings_module
from worker.settings import RENAMED, load_settings, renamed_in_use

OLD, NEW = "MEETREG_BATCH_SIZE", "MEETREG_ENVELOPE_SIZE"
WARNING = f"{OLD} is deprecated; use {NEW}"


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No renamed name warned yet, neither name in the environment, no .env around."""
    monkeypatch.setattr(settings_module, "_warned", set())
    for name in (OLD, NEW):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_the_envelope_size_is_renamed() -> None:
    assert RENAMED[OLD] == NEW


def test_the_new_name_sets_the_envelope_size_without_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(NEW, "7")
    assert load_settings().envelope_size == 7
    assert warnings_in(caplog) == []
    assert renamed_in_use() == []


def test_the_old_name_still_works_and_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(OLD, "5")
    assert load_settings().envelope_size == 5
    assert load_settings().envelope_size == 5
    assert warnings_in(caplog) == [WARNING]
    assert renamed_in_use() == [OLD]


def test_the_old_name_in_dotenv_still_works_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / ".env").write_text(f"{OLD}=3\n")
    assert load_settings().envelope_size == 3
    assert warnings_in(caplog) == [WARNING]


@pytest.mark.parametrize(
    ("environment", "dotenv"),
    [
        ({OLD: "5", NEW: "7"}, ""),
        ({}, f"{OLD}=5\n{NEW}=7\n"),
        ({OLD: "5"}, f"{NEW}=7\n"),
        ({NEW: "7"}, f"{OLD}=5\n"),
    ],
    ids=["both-in-environment", "both-in-dotenv", "old-in-environment", "old-in-dotenv"],
)
def test_the_new_name_wins_when_both_are_set(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    environment: dict[str, str],
    dotenv: str,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    if dotenv:
        (tmp_path / ".env").write_text(dotenv)
    assert load_settings().envelope_size == 7
    assert warnings_in(caplog) == [WARNING]


def test_a_bad_value_under_the_old_name_is_named_by_the_new_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(OLD, "50")
    with pytest.raises(Exception, match=f"^{NEW}: "):
        load_settings()
