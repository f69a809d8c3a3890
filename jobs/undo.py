"""Undoing a batch: an undo batch that deletes the registrations a batch created.

Its rows are the source batch's `created` rows, each with the registration id Graph gave
that batch; rows `already_enabled` or `skipped` found a registration someone else made and
are never touched. Workers take it through the same protocol as any batch (worker.protocol.row,
Operation.DISABLE): rate limit, leases, retries, outcomes, report.

One source batch has one undo batch, noted in its header: `meetreg disable` run again
resumes that one (sending only its unfinished rows) rather than make another.
"""

from __future__ import annotations

from collections.abc import Iterator

from jobs.enqueue import (
    Enqueued,
    PublishMany,
    check_batch_id,
    chunk_size_for,
    chunks_to_send,
    new_batch_id,
)
from worker.errors import InputError
from worker.models import RowRecord, RowState
from worker.settings import DEFAULT_CHUNK_SIZE
from worker.store.outcome_store import OutcomeStore
from worker.store.records import BatchStatus


def check_source(store: OutcomeStore, source_id: str) -> BatchStatus:
    """The batch to undo, if it can be undone now.

    Raises UnknownBatchError, and InputError for an undo batch, a publication batch
    (publishing cannot be undone), or one still running or paused (its rows may still
    create registrations; cancel it first to undo it early).
    """
    status = store.batch_status(source_id)
    if status.operation.undoes:
        raise InputError(f"batch {source_id} is an undo batch itself; it cannot be undone")
    if not status.operation.undoable:
        raise InputError(
            f"batch {source_id} published webinars; Graph cannot unpublish a webinar, so it "
            "cannot be undone"
        )
    if status.finished or status.cancelled:
        return status
    progress = f"{status.done}/{status.total} rows done"
    if status.paused:
        raise InputError(
            f"batch {source_id} is paused ({progress}): resume it, or cancel it, before undoing it"
        )
    raise InputError(
        f"batch {source_id} is still running ({progress}): wait for it, or cancel it, "
        "before undoing it"
    )


def undo_rows(store: OutcomeStore, source: BatchStatus) -> Iterator[RowRecord]:
    """One queued row per registration the source batch created, numbered from 1; `line`
    stays the source file's, `registration_id` is the one to delete."""
    seq = 0
    made = source.operation.made
    for row in store.iter_rows(source.batch_id, source.total):
        if row.status is not made or not _names_its_resource(row):
            continue
        seq += 1
        yield RowRecord(
            seq=seq,
            line=row.line,
            user_id=row.user_id,
            meeting_id=row.meeting_id,
            allowed_registrant=row.allowed_registrant,
            status=RowState.QUEUED,
            join_web_url=row.join_web_url,
            registration_id=row.registration_id,
            webinar_id=row.webinar_id,
            email=row.email,
            external_id=row.external_id,
        )


def _names_its_resource(row: RowRecord) -> bool:
    """Whether an undo can tell the resource the row made: a meeting's registration by its
    id; a person's registration by the key it carries (app-only, Graph gives no id)."""
    if row.webinar_id:
        return bool(row.email and row.external_id)
    return bool(row.registration_id and row.meeting_id)


def enqueue_undo(
    store: OutcomeStore,
    source_id: str,
    *,
    publish: PublishMany,
    batch_id: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Enqueued | None:
    """Record the source batch's undo batch (or find the one it has) and enqueue its
    unfinished rows; None when the source created no registration (nothing to undo).

    Raises what `check_source` raises, and InputError for a `batch_id` that is taken, or
    that is not the undo batch the source already has.
    """
    source = check_source(store, source_id)
    undo_id = source.undone_by or (check_batch_id(batch_id) if batch_id else new_batch_id())
    if batch_id and batch_id != undo_id:
        raise InputError(
            f"batch {source_id} is undone by {undo_id} already; "
            f"`meetreg disable --batch {source_id}` resumes that one"
        )
    if store.batch_exists(undo_id):
        if store.batch_status(undo_id).undoes != source_id:
            raise InputError(f"batch id {undo_id} is taken by another batch")
        resumed = True
    else:
        total = store.create_batch(
            undo_id,
            f"undo of {source_id}",
            undo_rows(store, source),
            operation=source.operation.undo,
            undoes=source_id,
        )
        if total == 0:
            store.delete_batch(undo_id)
            return None
        standing = store.mark_undone(source_id, undo_id)
        resumed = standing != undo_id
        if resumed:  # another `meetreg disable` got there first: use its batch
            store.delete_batch(undo_id)
            undo_id = standing
    status = store.batch_status(undo_id)
    size = chunk_size_for(status.total, chunk_size)
    sent = publish(chunks_to_send(store.iter_rows(undo_id, status.total), undo_id, size))
    return Enqueued(batch_id=undo_id, total=status.total, chunks=sent, resumed=resumed)
