"""The drop folder's policies: which files are taken, their batch ids, their new names."""

import os
import time
from datetime import date
from pathlib import Path

import pytest
from cli_helpers import free_port
from pipeline_helpers import ORGANIZER

from jobs.enqueue import check_batch_id
from jobs.sources.drop_folder import (
    FileResult,
    batch_id_for,
    file_names,
    free_batch_id,
    is_candidate,
    is_settled,
    ready_files,
    take_folder,
)
from worker.settings import load_settings
from worker.store.outcome_store import open_store

DAY = date(2026, 11, 28)


@pytest.mark.parametrize(
    ("name", "batch_id"),
    [
        ("meetings.csv", "meetings-20261128"),
        ("Meetings.CSV", "meetings-20261128"),
        ("Réunions Q4 (final).csv", "reunions-q4-final-20261128"),
        ("export_2026.11.28.csv", "export_2026.11.28-20261128"),
        ("--weird--.csv", "weird-20261128"),
        ("日本.csv", "batch-20261128"),
        ("x" * 300 + ".csv", "x" * 100 + "-20261128"),
    ],
)
def test_batch_id_is_the_file_name_and_the_day(name: str, batch_id: str) -> None:
    assert batch_id_for(name, DAY) == batch_id
    assert check_batch_id(batch_id) == batch_id  # a usable id, whatever the name


@pytest.mark.parametrize(
    ("taken", "expected"),
    [
        (set(), "meetings-20261128"),
        ({"meetings-20261128"}, "meetings-20261128-2"),
        ({"meetings-20261128", "meetings-20261128-2"}, "meetings-20261128-3"),
        ({"meetings-20261128-2"}, "meetings-20261128"),
    ],
)
def test_batch_id_takes_a_suffix_when_the_batch_exists(taken: set[str], expected: str) -> None:
    assert free_batch_id("meetings-20261128", taken.__contains__) == expected


@pytest.mark.parametrize(
    ("name", "taken", "expected"),
    [
        ("meetings.csv", set(), "meetings.csv"),
        ("meetings.csv", {"meetings.csv"}, "meetings-2.csv"),
        ("meetings.csv", {"meetings.csv", "meetings-2.csv"}, "meetings-3.csv"),
        ("a.b.CSV", {"a.b.CSV"}, "a.b-2.CSV"),
    ],
)
def test_a_moved_file_never_overwrites_another(name: str, taken: set[str], expected: str) -> None:
    assert next(candidate for candidate in file_names(name) if candidate not in taken) == expected


@pytest.mark.parametrize(
    ("name", "taken"),
    [
        ("meetings.csv", True),
        ("MEETINGS.CSV", True),
        (".meetings.csv", False),  # hidden: an upload in progress, by convention
        ("meetings.csv.part", False),
        ("meetings.txt", False),
        (".csv", False),
    ],
)
def test_only_visible_csv_files_are_taken(name: str, taken: bool) -> None:
    assert is_candidate(name) is taken


def test_a_file_changed_in_the_last_seconds_is_left_for_the_next_run() -> None:
    assert not is_settled(modified_s=100.0, now_s=105.0, settle_s=10.0)
    assert is_settled(modified_s=100.0, now_s=110.0, settle_s=10.0)


def write(folder: Path, name: str, body: str, *, age_s: float = 60.0) -> Path:
    path = folder / name
    path.write_text(body, encoding="utf-8")
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_ready_files_come_in_name_order_without_folders(tmp_path: Path) -> None:
    for name in ("b.csv", "A.csv", "c.CSV"):
        write(tmp_path, name, "user_id,meeting_id\n")
    (tmp_path / "d.csv").mkdir()
    write(tmp_path, "fresh.csv", "user_id,meeting_id\n", age_s=0)
    assert [path.name for path in ready_files(tmp_path, time.time())] == ["A.csv", "b.csv", "c.CSV"]


def test_when_redis_is_unreachable_every_file_stays_where_it_is(tmp_path: Path) -> None:
    body = f"user_id,meeting_id\n{ORGANIZER},m-1\n"
    for name in ("a.csv", "b.csv"):
        write(tmp_path, name, body)
    store = open_store(load_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))

    outcomes = take_folder(
        tmp_path, store=store, publish=lambda chunks: 0, day=DAY, now_s=time.time()
    )

    assert [(o.name, o.result) for o in outcomes] == [("a.csv", FileResult.LEFT)]
    assert "Redis" in outcomes[0].error
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.csv", "b.csv"]
