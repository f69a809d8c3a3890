"""The nightly job: dropped files become batches, subscriptions are renewed, the last 24
hours are summed up.

`run_nightly` is a plain function; the Celery task `meetreg.nightly` (sent by beat at
MEETREG_NIGHTLY_CRON) and `meetreg nightly --once` call it. Its three steps each record
what they did; one failing is recorded and the next still runs. It only enqueues:
workers do the rows.

Two guards, both in Redis, keep a file from being enqueued twice:
- one run at a time on every machine: a run holds `meetreg:nightly:lock` (SET NX PX, a
  token, released at the end; a dead run's lock expires after RUN_LOCK_TTL_MS);
- one run per scheduled slot (`run_scheduled`): two beats that both believed they led,
  or a message delivered twice, make one run. `--once` claims no slot: it runs now.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import redis

from jobs.enqueue import PublishMany
from jobs.events.subscriptions import RenewalSummary, SubscriptionBook, renew_due
from jobs.sources.drop_folder import FileOutcome, FileResult, take_folder
from worker import keys
from worker.errors import MeetregError, UnknownBatchError
from worker.graph.calendar import CalendarApi
from worker.models import Operation, RowState
from worker.redis.connection import store_errors
from worker.redis.lua import LuaFile, lua_script
from worker.schedule import slot_for
from worker.settings import Settings
from worker.store.outcome_store import OutcomeStore
from worker.store.records import BatchStatus

log = logging.getLogger(__name__)

# Far longer than a run takes (enqueueing runs at tens of thousands of rows a second); a
# run extends it before each step. Only a run that died leaves it to expire.
RUN_LOCK_TTL_MS = 30 * 60 * 1000
# A slot's claim outlives any second delivery of its message: the broker's redelivery of
# an unacknowledged one comes after 12 hours (worker.app.VISIBILITY_TIMEOUT_S).
SLOT_CLAIM_TTL_S = 2 * 86_400
SUMMARY_WINDOW = timedelta(hours=24)

_EXTEND = lua_script(LuaFile("jobs.nightly", "extend_lock"))
_RELEASE = lua_script(LuaFile("jobs.nightly", "release_lock"))


class StepStatus(StrEnum):
    DONE = "done"  # the step ran; its items say how each went
    SKIPPED = "skipped"  # nothing to do, or not configured; `detail` says which
    FAILED = "failed"  # the step could not run; `detail` says why


@dataclass(slots=True)
class Step:
    status: StepStatus = StepStatus.DONE
    detail: str = ""

    def to_json_dict(self) -> dict[str, str]:
        return {"status": str(self.status), "detail": self.detail}


@dataclass(frozen=True, slots=True)
class NightlyDeps:
    """What a run needs. `calendar` opens a Graph calendar client, only when a
    subscription is recorded."""

    settings: Settings
    store: OutcomeStore
    publish: PublishMany
    calendar: Callable[[], AbstractContextManager[CalendarApi]]


@dataclass(slots=True)
class NightlyReport:
    """What one run did, step by step."""

    started_at: datetime
    files_step: Step = field(default_factory=Step)
    files: list[FileOutcome] = field(default_factory=list)
    renewal_step: Step = field(default_factory=Step)
    renewal: RenewalSummary = field(default_factory=RenewalSummary)
    summary_step: Step = field(default_factory=Step)
    batches: list[BatchStatus] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every file enqueued (or none to take), every step done or skipped, every due
        subscription renewed."""
        steps = (self.files_step, self.renewal_step, self.summary_step)
        return (
            all(step.status is not StepStatus.FAILED for step in steps)
            and all(outcome.ok for outcome in self.files)
            and not self.renewal.failed
        )

    def states(self) -> list[RowState]:
        """The states the summed-up batches' rows can be in (an undo batch has its own)."""
        return [s for s in RowState if any(s in b.counts for b in self.batches)] or list(
            Operation.CREATE.states
        )

    def totals(self) -> dict[str, int]:
        """Rows of the summed-up batches, by state, and `total`."""
        sums = {str(s): sum(b.counts.get(s, 0) for b in self.batches) for s in self.states()}
        sums["total"] = sum(batch.total for batch in self.batches)
        return sums

    def log_lines(self) -> list[tuple[int, str]]:
        """(logging level, line): what the run did, for a log or a plain-text terminal."""
        lines = [(logging.INFO, f"nightly run of {stamp(self.started_at)}")]
        lines.append(_step_line("files", self.files_step, f"{len(self.files)} taken"))
        for outcome in self.files:
            lines.append(_file_line(outcome))
        renewal = self.renewal
        lines.append(
            _step_line(
                "subscriptions",
                self.renewal_step,
                f"{len(renewal.renewed)} renewed, {len(renewal.recreated)} recreated, "
                f"{len(renewal.failed)} failed",
            )
        )
        for subscription_id, reason in renewal.failed.items():
            lines.append((logging.WARNING, f"  subscription {subscription_id}: {reason}"))
        for batch in self.batches:
            lines.append((logging.INFO, f"  {batch_line(batch)}"))
        totals = self.totals()
        lines.append(
            _step_line(
                "last 24 h",
                self.summary_step,
                f"{len(self.batches)} batches, {totals['total']} rows"
                + "".join(f", {s} {totals[s]}" for s in self.states() if totals[s]),
            )
        )
        return lines

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "started_at": stamp(self.started_at),
            "ok": self.ok,
            "files": {
                **self.files_step.to_json_dict(),
                "items": [outcome.to_json_dict() for outcome in self.files],
            },
            "subscriptions": {
                **self.renewal_step.to_json_dict(),
                "renewed": self.renewal.renewed,
                "recreated": self.renewal.recreated,
                "failed": self.renewal.failed,
            },
            "last_24h": {
                **self.summary_step.to_json_dict(),
                "since": stamp(self.started_at - SUMMARY_WINDOW),
                "batches": [batch.to_json_dict() for batch in self.batches],
                "totals": self.totals(),
            },
        }


def run_nightly(deps: NightlyDeps, *, now: datetime) -> NightlyReport | None:
    """Run the three steps under the run lock. None: another run holds the lock, nothing
    was done. Raises StoreError only when Redis fails before the run starts: a step's
    failure is recorded in the report."""
    lock = RunLock(deps.store.redis)
    if not lock.acquire():
        return None
    try:
        report = NightlyReport(started_at=now)
        report.files_step = _step("files", lambda: _take_files(deps, report, now))
        _keep(lock)
        report.renewal_step = _step("subscriptions", lambda: _renew(deps, report, now))
        _keep(lock)
        report.summary_step = _step("last 24 h", lambda: _sum_up(deps, report, now))
        return report
    finally:
        with contextlib.suppress(MeetregError):
            lock.release()


def run_scheduled(deps: NightlyDeps, *, now: datetime) -> NightlyReport | None:
    """A run beat asked for: once per slot of MEETREG_NIGHTLY_CRON, whoever asks again.
    None when this slot was run already or another run is in progress (logged)."""
    slot = slot_for(deps.settings.nightly, now)
    if not claim_slot(deps.store.redis, slot):
        log.info("nightly slot %s: already run or running; nothing done", stamp(slot))
        return None
    report = run_nightly(deps, now=now)
    if report is None:
        log.warning("nightly slot %s: another run is in progress; nothing done", stamp(slot))
    return report


@store_errors
def claim_slot(client: redis.Redis, slot: datetime) -> bool:
    """True for the first caller about this scheduled run, False for every later one."""
    key = keys.nightly_slot(slot.astimezone(UTC).strftime("%Y%m%dT%H%MZ"))
    return bool(client.set(key, stamp(datetime.now(UTC)), nx=True, ex=SLOT_CLAIM_TTL_S))


class RunLock:
    """One nightly run at a time, on every machine sharing Redis."""

    def __init__(self, client: redis.Redis, ttl_ms: int = RUN_LOCK_TTL_MS) -> None:
        self.redis = client
        self.ttl_ms = ttl_ms
        self.token = secrets.token_hex(16)

    @store_errors
    def acquire(self) -> bool:
        return bool(self.redis.set(keys.NIGHTLY_LOCK, self.token, nx=True, px=self.ttl_ms))

    @store_errors
    def extend(self) -> bool:
        return bool(self.redis.eval(_EXTEND, 1, keys.NIGHTLY_LOCK, self.token, self.ttl_ms))

    @store_errors
    def release(self) -> None:
        self.redis.eval(_RELEASE, 1, keys.NIGHTLY_LOCK, self.token)


def _keep(lock: RunLock) -> None:
    # If Redis failed, the next step meets the failure and records it; the run goes on.
    with contextlib.suppress(MeetregError):
        lock.extend()


def _step(name: str, run: Callable[[], Step]) -> Step:
    """Run one step; a failure becomes the step's outcome, never the run's end."""
    try:
        return run()
    except MeetregError as exc:
        return Step(StepStatus.FAILED, str(exc))
    except Exception as exc:  # a bug in one step must not cost the others
        log.exception("nightly step %s failed", name)
        return Step(StepStatus.FAILED, f"unexpected {type(exc).__name__}: {exc}")


def _take_files(deps: NightlyDeps, report: NightlyReport, now: datetime) -> Step:
    folder = deps.settings.drop_dir
    if folder is None:
        return Step(StepStatus.SKIPPED, "MEETREG_DROP_DIR is not set")
    report.files = take_folder(
        folder,
        store=deps.store,
        publish=deps.publish,
        day=now.astimezone(deps.settings.zone).date(),
        now_s=time.time(),
        chunk_size=deps.settings.chunk_size,
    )
    left = [outcome for outcome in report.files if outcome.result is FileResult.LEFT]
    if left:
        return Step(StepStatus.FAILED, f"Redis failed; files left in place: {left[0].error}")
    if not report.files:
        return Step(StepStatus.SKIPPED, "no files")
    return Step()


def _renew(deps: NightlyDeps, report: NightlyReport, now: datetime) -> Step:
    book = SubscriptionBook(deps.store.redis)
    if not book.all():
        return Step(StepStatus.SKIPPED, "no subscriptions")
    if deps.settings.webhook_client_state is None:
        return Step(StepStatus.SKIPPED, "MEETREG_WEBHOOK_CLIENT_STATE is not set")
    with deps.calendar() as calendar:
        report.renewal = renew_due(
            calendar,
            book,
            client_state=deps.settings.require_client_state(),
            now=now.astimezone(UTC),
        )
    return Step()


def _sum_up(deps: NightlyDeps, report: NightlyReport, now: datetime) -> Step:
    since_ms = int((now - SUMMARY_WINDOW).timestamp() * 1000)
    for batch_id in deps.store.batch_ids_since(since_ms):
        try:
            report.batches.append(deps.store.batch_status(batch_id))
        except UnknownBatchError:
            continue  # expired since
    return Step()


def batch_line(batch: BatchStatus) -> str:
    state = "finished" if batch.finished else "in progress"
    counts = "".join(f", {s} {n}" for s, n in batch.counts.items() if n)
    return f"batch {batch.batch_id}: {batch.total} rows{counts} ({state})"


def _file_line(outcome: FileOutcome) -> tuple[int, str]:
    if outcome.result is FileResult.ENQUEUED:
        text = f"  {outcome.name}: batch {outcome.batch_id}, {outcome.rows} rows"
    else:
        text = f"  {outcome.name}: {outcome.result}"
    if outcome.moved_to:
        text += f", moved to {outcome.moved_to}"
    if outcome.error:
        text += f" ({outcome.error})"
    return (logging.INFO if outcome.ok else logging.WARNING, text)


def _step_line(name: str, step: Step, done: str) -> tuple[int, str]:
    if step.status is StepStatus.DONE:
        return (logging.INFO, f"{name}: {done}")
    level = logging.WARNING if step.status is StepStatus.FAILED else logging.INFO
    return (level, f"{name}: {step.status} ({step.detail})")


def stamp(moment: datetime) -> str:
    """ISO 8601 in UTC, to the second: how the nightly job writes times."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
