"""The nightly job as a function, on a real Redis: its steps, its guards, its summary."""

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from pipeline_helpers import ORGANIZER

from jobs.enqueue import Chunk, enqueue_file
from jobs.events.subscriptions import SubscriptionBook, SubscriptionRecord
from jobs.nightly.job import (
    NightlyDeps,
    NightlyReport,
    RunLock,
    StepStatus,
    claim_slot,
    run_nightly,
    run_scheduled,
)
from jobs.sources.drop_folder import FileResult, take_file
from worker import keys
from worker.errors import ConfigError
from worker.graph.calendar import CalendarApi
from worker.models import Operation
from worker.settings import load_settings
from worker.store.outcome_store import OutcomeStore, open_store

NOW = datetime(2026, 11, 28, 2, 0, 3, tzinfo=UTC)
GOOD = f"user_id,meeting_id\n{ORGANIZER},m-1\n{ORGANIZER},m-2\n"
CLIENT_STATE = "client-state-for-tests-0123456789"


def no_calendar() -> contextlib.AbstractContextManager[CalendarApi]:
    raise AssertionError("no Graph client may be built")


class Nightly:
    """A drop folder, the store, and what the job published."""

    def __init__(self, redis_url: str, root: Path, **settings: object) -> None:
        self.drop = root / "drop"
        self.drop.mkdir()
        self.settings = load_settings(redis_url=redis_url, drop_dir=self.drop, **settings)
        self.store = open_store(self.settings)
        self.published: list[Chunk] = []
        self.calendar = no_calendar

    def publish(self, chunks: Iterable[Chunk]) -> int:
        before = len(self.published)
        self.published.extend(chunks)
        return len(self.published) - before

    def deps(self) -> NightlyDeps:
        return NightlyDeps(self.settings, self.store, self.publish, lambda: self.calendar())

    def drop_file(self, name: str, body: str, *, age_s: float = 60.0) -> Path:
        path = self.drop / name
        path.write_text(body, encoding="utf-8")
        then = time.time() - age_s
        os.utime(path, (then, then))
        return path

    def names(self, folder: str = "") -> list[str]:
        where = self.drop / folder
        return sorted(path.name for path in where.iterdir()) if where.is_dir() else []


@pytest.fixture
def nightly(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Nightly:
    return Nightly(redis_url, tmp_path)


def test_good_files_become_batches_and_broken_ones_are_rejected_with_their_reason(
    nightly: Nightly,
) -> None:
    nightly.drop_file("meetings.csv", GOOD)
    nightly.drop_file("broken.csv", "user_id,subject\nx,y\n")
    nightly.drop_file("uploading.csv", GOOD, age_s=0)
    nightly.drop_file("notes.txt", "not for us")
    nightly.drop_file(".hidden.csv", GOOD)

    report = run_nightly(nightly.deps(), now=NOW)

    assert report is not None and not report.ok
    assert [(o.name, o.result, o.batch_id) for o in report.files] == [
        ("broken.csv", FileResult.REJECTED, ""),
        ("meetings.csv", FileResult.ENQUEUED, "meetings-20261128"),
    ]
    assert nightly.names("processed") == ["meetings.csv"]
    assert nightly.names("rejected") == ["broken.csv", "broken.csv.error.txt"]
    reason = (nightly.drop / "rejected" / "broken.csv.error.txt").read_text()
    assert reason.startswith("broken.csv: no meeting_id or join_web_url column")
    assert reason.count("\n") == 1
    assert nightly.names() == [".hidden.csv", "notes.txt", "processed", "rejected", "uploading.csv"]
    assert nightly.published == [("meetings-20261128", 1, 3)]  # the rejected file: nothing
    assert nightly.store.batch_status("meetings-20261128").total == 2


def test_the_same_name_again_makes_a_new_batch_and_keeps_the_first_file(
    nightly: Nightly,
) -> None:
    nightly.drop_file("meetings.csv", GOOD)
    run_nightly(nightly.deps(), now=NOW)
    nightly.drop_file("meetings.csv", f"user_id,meeting_id\n{ORGANIZER},m-3\n")

    report = run_nightly(nightly.deps(), now=NOW)

    assert report is not None and report.ok
    (outcome,) = report.files
    assert (outcome.batch_id, outcome.moved_to) == (
        "meetings-20261128-2",
        "processed/meetings-2.csv",
    )
    assert nightly.names("processed") == ["meetings-2.csv", "meetings.csv"]
    assert (nightly.drop / "processed" / "meetings.csv").read_text() == GOOD


def test_the_batch_date_is_the_day_in_the_configured_time_zone(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    nightly = Nightly(redis_url, tmp_path, timezone="Pacific/Auckland")
    nightly.drop_file("meetings.csv", GOOD)
    report = run_nightly(nightly.deps(), now=datetime(2026, 11, 28, 14, 0, tzinfo=UTC))
    assert report is not None
    assert report.files[0].batch_id == "meetings-20261129"  # 03:00 the next day there


def test_summary_counts_the_batches_of_the_last_24_hours(nightly: Nightly) -> None:
    for name in ("old", "recent"):
        path = nightly.drop_file(f"{name}.csv", GOOD)
        enqueue_file(path, store=nightly.store, publish=nightly.publish, batch_id=name)
        path.unlink()
    day_ago_ms = int((time.time() - 25 * 3600) * 1000)
    nightly.store.redis.zadd(keys.BATCHES, {"old": day_ago_ms})
    nightly.drop_file("tonight.csv", f"user_id,meeting_id\n{ORGANIZER},m-1\nnot-a-user,m-2\n")

    report = run_nightly(nightly.deps(), now=datetime.now(UTC))

    assert report is not None
    assert [batch.batch_id for batch in report.batches] == ["recent", report.files[0].batch_id]
    totals = report.totals()
    assert (totals["total"], totals["queued"], totals["invalid"]) == (4, 3, 1)
    lines = [line for _, line in report.log_lines()]
    assert sum(line.strip().startswith("batch ") for line in lines) == 2
    assert lines[-1] == "last 24 h: 2 batches, 4 rows, queued 3, invalid 1"


def test_without_subscriptions_renewal_reports_nothing_renewed_and_calls_no_graph(
    nightly: Nightly,
) -> None:
    report = run_nightly(nightly.deps(), now=NOW)
    assert report is not None and report.ok
    assert (report.renewal_step.status, report.renewal_step.detail) == (
        StepStatus.SKIPPED,
        "no subscriptions",
    )
    assert report.to_json_dict()["subscriptions"]["renewed"] == []


def record_subscription(store: OutcomeStore, now: datetime = NOW) -> None:
    SubscriptionBook(store.redis).save(
        SubscriptionRecord(
            id="sub-1",
            user_id=ORGANIZER,
            notification_url="https://meetreg.example/graph/notifications",
            lifecycle_url=None,
            expires_at=(now + timedelta(hours=3)).isoformat(),
            created_at=now.isoformat(),
        )
    )


def test_renewal_is_skipped_without_the_client_state(nightly: Nightly) -> None:
    record_subscription(nightly.store)
    report = run_nightly(nightly.deps(), now=NOW)
    assert report is not None
    assert report.renewal_step.status is StepStatus.SKIPPED
    assert "MEETREG_WEBHOOK_CLIENT_STATE" in report.renewal_step.detail


def test_a_failing_renewal_does_not_stop_the_files_or_the_summary(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    nightly = Nightly(redis_url, tmp_path, webhook_client_state=CLIENT_STATE)
    now = datetime.now(UTC)
    record_subscription(nightly.store, now)

    def refused() -> contextlib.AbstractContextManager[CalendarApi]:
        raise ConfigError("missing configuration: AZURE_TENANT_ID")

    nightly.calendar = refused
    nightly.drop_file("meetings.csv", GOOD)

    report = run_nightly(nightly.deps(), now=now)

    assert report is not None and not report.ok
    assert report.renewal_step.status is StepStatus.FAILED
    assert "AZURE_TENANT_ID" in report.renewal_step.detail
    assert report.files_step.status is StepStatus.DONE and nightly.names("processed")
    assert report.summary_step.status is StepStatus.DONE and len(report.batches) == 1


def test_while_a_run_holds_the_lock_another_does_nothing(nightly: Nightly) -> None:
    nightly.drop_file("meetings.csv", GOOD)
    holder = RunLock(nightly.store.redis)
    assert holder.acquire()

    assert run_nightly(nightly.deps(), now=NOW) is None
    assert nightly.names() == ["meetings.csv"]

    holder.release()
    assert run_nightly(nightly.deps(), now=NOW) is not None
    assert nightly.names() == ["processed"]


def test_a_scheduled_slot_runs_once_however_often_it_is_asked(nightly: Nightly) -> None:
    nightly.drop_file("meetings.csv", GOOD)
    first = run_scheduled(nightly.deps(), now=NOW)
    nightly.drop_file("later.csv", GOOD)

    again = run_scheduled(nightly.deps(), now=NOW + timedelta(minutes=5))

    assert first is not None and again is None
    assert nightly.names() == ["later.csv", "processed"]  # waits for the next night
    assert run_scheduled(nightly.deps(), now=NOW + timedelta(days=1)) is not None
    assert not claim_slot(nightly.store.redis, NOW.replace(second=0))


# --- what someone who can write into the drop folder can do --------------------------------

SECRET = "s3cr3t-value-of-the-env-file"


def age(path: Path, age_s: float = 60.0) -> None:
    """Make a file, or a symbolic link itself, look written `age_s` ago."""
    then = time.time() - age_s
    os.utime(path, (then, then), follow_symlinks=False)


def everything_written(nightly: Nightly, report: NightlyReport, logged: str) -> str:
    """What the run said (its report, its log) and every file in the drop folder."""
    texts = [json.dumps(report.to_json_dict()), logged]
    texts += [line for _, line in report.log_lines()]
    for path in nightly.drop.rglob("*"):
        if path.is_file() and not path.is_symlink():
            texts.append(path.read_text(errors="replace"))
    return "\n".join(texts)


def test_a_link_to_a_secret_file_is_not_read_and_nothing_of_it_is_said(
    nightly: Nightly, caplog: pytest.LogCaptureFixture
) -> None:
    env_file = nightly.drop.parent / "meetreg.env"
    env_file.write_text(f"AZURE_CLIENT_SECRET={SECRET}\nMEETREG_API_KEY={SECRET}\n")
    age(env_file)
    link = nightly.drop / "a.csv"
    link.symlink_to("../meetreg.env")
    age(link)
    nightly.drop_file("meetings.csv", GOOD)

    with caplog.at_level(logging.INFO):
        report = run_nightly(nightly.deps(), now=NOW)

    assert report is not None
    assert [(o.name, o.result) for o in report.files] == [("meetings.csv", FileResult.ENQUEUED)]
    assert link.is_symlink() and nightly.names() == ["a.csv", "processed"]  # left as it was
    assert nightly.names("rejected") == []
    assert "a.csv is a symbolic link" in caplog.text
    assert SECRET not in everything_written(nightly, report, caplog.text)
    assert nightly.published == [("meetings-20261128", 1, 3)]


def test_a_planted_link_in_rejected_or_processed_is_never_written_through(
    nightly: Nightly,
) -> None:
    outside = nightly.drop.parent / "outside"
    outside.mkdir()
    (nightly.drop / "rejected").mkdir()
    (nightly.drop / "processed").mkdir()
    planted_reason = nightly.drop / "rejected" / "broken.csv.error.txt"
    planted_reason.symlink_to(outside / "evil.pth")  # dangling: would be created
    planted_file = nightly.drop / "processed" / "meetings.csv"
    planted_file.symlink_to(outside / "meetings.csv")
    nightly.drop_file("broken.csv", "user_id,subject\nx,y\n")
    nightly.drop_file("meetings.csv", GOOD)

    report = run_nightly(nightly.deps(), now=NOW)

    assert report is not None
    assert [(o.name, o.moved_to) for o in report.files] == [
        ("broken.csv", "rejected/broken-2.csv"),
        ("meetings.csv", "processed/meetings-2.csv"),
    ]
    assert list(outside.iterdir()) == []
    assert planted_reason.is_symlink() and planted_file.is_symlink()
    reason = (nightly.drop / "rejected" / "broken-2.csv.error.txt").read_text()
    assert reason.startswith("broken.csv: no meeting_id or join_web_url column")
    assert (nightly.drop / "processed" / "meetings-2.csv").read_text() == GOOD


@pytest.mark.parametrize("subfolder", ["processed", "rejected"])
def test_a_subfolder_that_is_a_link_is_refused_and_every_file_stays(
    nightly: Nightly, subfolder: str
) -> None:
    elsewhere = nightly.drop.parent / "elsewhere"
    elsewhere.mkdir()
    (nightly.drop / subfolder).symlink_to(elsewhere)
    nightly.drop_file("meetings.csv", GOOD)
    nightly.drop_file("broken.csv", "user_id,subject\nx,y\n")

    report = run_nightly(nightly.deps(), now=NOW)

    assert report is not None and not report.ok
    assert report.files_step.status is StepStatus.FAILED
    assert f"{subfolder}/" in report.files_step.detail
    assert "symbolic link" in report.files_step.detail
    assert "\n" not in report.files_step.detail
    assert report.files == [] and nightly.published == []
    assert nightly.store.batch_ids_since(0) == []
    assert list(elsewhere.iterdir()) == []
    assert {"meetings.csv", "broken.csv"} <= set(nightly.names())


@pytest.mark.timeout(20)
def test_a_fifo_or_a_folder_named_csv_is_skipped_not_waited_on(nightly: Nightly) -> None:
    os.mkfifo(nightly.drop / "x.csv")
    age(nightly.drop / "x.csv")
    (nightly.drop / "y.csv").mkdir()
    age(nightly.drop / "y.csv")
    nightly.drop_file("meetings.csv", GOOD)

    report = run_nightly(nightly.deps(), now=NOW)

    assert report is not None and report.ok
    assert [o.name for o in report.files] == ["meetings.csv"]
    assert nightly.names() == ["processed", "x.csv", "y.csv"]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["fifo", "link"])
def test_a_file_swapped_after_the_listing_is_refused_unread(nightly: Nightly, kind: str) -> None:
    # What take_file meets when a regular file listed a moment ago became a FIFO or a link.
    path = nightly.drop / "a.csv"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        secret = nightly.drop.parent / "meetreg.env"
        secret.write_text(f"user_id,meeting_id,AZURE_CLIENT_SECRET={SECRET}\n")
        path.symlink_to(secret)

    outcome = take_file(path, store=nightly.store, publish=nightly.publish, day=NOW.date())

    assert outcome.result is FileResult.REJECTED
    assert "not read" in outcome.error and SECRET not in outcome.error
    assert outcome.moved_to == "rejected/a.csv"
    assert nightly.published == [] and nightly.store.batch_ids_since(0) == []


def test_a_registrant_file_dropped_becomes_a_register_batch_summed_with_the_meetings(
    nightly: Nightly,
) -> None:
    nightly.drop_file("meetings.csv", GOOD)
    nightly.drop_file(
        "people.csv",
        "webinar_id,email,first_name,last_name\n"
        "w-1@w-2,ann@contoso.example,Ann,Lee\n"
        "w-1@w-2,ANN@contoso.example,Ann,Lee\n"
        "w-1@w-2,not-an-address,Bo,Ek\n",
    )

    report = run_nightly(nightly.deps(), now=datetime.now(UTC))

    assert report is not None and report.ok
    by_name = {o.name: o.batch_id for o in report.files}
    people = nightly.store.batch_status(by_name["people.csv"])
    assert people.operation is Operation.REGISTER
    meetings = nightly.store.batch_status(by_name["meetings.csv"])
    assert meetings.operation is Operation.CREATE
    # Worked by the workers: registered and its words, beside the meetings' created.
    for state in ("registered", "already_registered", "created", "already_enabled"):
        assert state in report.states()
    totals = report.totals()
    assert (totals["total"], totals["queued"], totals["skipped"], totals["invalid"]) == (
        5,
        3,
        1,
        1,
    )
