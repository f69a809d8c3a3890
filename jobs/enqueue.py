"""Turning a source's rows into a batch: recorded in the outcome store, then enqueued.

One pass over the source writes every row to Redis in pipelined pages; the batch's
header goes last and the chunk messages after it. Duplicate rows are found in Redis too,
a page at a time, so the producer's memory stays flat whatever the file's size. A source
refused part-way (a broken quote on line 90,000) leaves only header-less rows behind,
which no command shows, and which are deleted at once: nothing is half-enqueued.

Enqueueing an existing batch id again resumes it: the source must hold the same rows in
the same order (a digest of them is kept with the batch), and only chunks holding rows
that are not final yet are sent again.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

from jobs.sources.csv_file import WEBINARS, file_target, read_rows
from worker.errors import BatchConflict, InputError
from worker.models import Operation, RowRecord, RowsDigest, RowState
from worker.publications import PublicationRequest
from worker.registrants import DEFAULTS, Defaults, RegistrantRequest
from worker.settings import DEFAULT_CHUNK_SIZE
from worker.store.core import READ_PAGE
from worker.store.outcome_store import OutcomeStore
from worker.validation import (
    AllowedRegistrant,
    InvalidRow,
    RegistrationRequest,
    SourceRow,
    ValidRow,
)

# A message costs a worker's consumer thread several Redis round trips, one after another
# (bench/, no limit: 10-row messages made ~540 rows/s, 30-row ones ~780): a batch is sent
# in at most this many; a worker takes a message's rows in waves of MEETREG_CHUNK_SIZE.
MAX_MESSAGES_PER_BATCH = 500
BATCH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")

Chunk = tuple[str, int, int]
PublishMany = Callable[[Iterable[Chunk]], int]
# For each (row key, line), the first line that had the key, remembering the new ones.
FirstLines = Callable[[Sequence[tuple[bytes, int]]], list[int]]
# Rows whose duplicates are looked up together: one Redis round trip per page.
DEDUP_PAGE = 1_000


@dataclass(frozen=True, slots=True)
class Enqueued:
    """What `enqueue_rows` did."""

    batch_id: str
    total: int
    chunks: int
    resumed: bool


def new_batch_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def check_batch_id(batch_id: str) -> str:
    if not BATCH_ID.fullmatch(batch_id):
        raise InputError(
            f"batch id {batch_id[:40]!r} is not usable: 1-128 letters, digits, '.', '_', ':', '-'"
        )
    return batch_id


def to_records(
    rows: Iterable[SourceRow], first_lines: FirstLines | None = None
) -> Iterator[RowRecord]:
    """Number the rows and mark what needs no Graph call: invalid rows and duplicates.

    `first_lines` remembers the rows seen (`OutcomeStore.first_lines` for a batch being
    written); by default a dict in memory, about 125 bytes per row.
    """
    first_lines = first_lines or lines_in_memory()
    numbered = enumerate(rows, start=1)
    while page := list(islice(numbered, DEDUP_PAGE)):
        records = [_record(seq, row) for seq, row in page]
        keyed = [
            (record, _row_key(row))
            for record, (_, row) in zip(records, page, strict=True)
            if isinstance(row, ValidRow)
        ]
        firsts = first_lines([(key, record.line) for record, key in keyed])
        for (record, _), first in zip(keyed, firsts, strict=True):
            if first != record.line:
                record.status = RowState.SKIPPED
                record.error = f"duplicate of line {first}"
        yield from records


def lines_in_memory() -> FirstLines:
    """A `FirstLines` for rows that are not written anywhere (a dry run)."""
    first_line: dict[bytes, int] = {}

    def first_lines(seen: Sequence[tuple[bytes, int]]) -> list[int]:
        return [first_line.setdefault(key, line) for key, line in seen]

    return first_lines


def _record(seq: int, row: SourceRow) -> RowRecord:
    if isinstance(row, InvalidRow):
        return RowRecord(
            seq=seq,
            line=row.line,
            user_id=row.user_id,
            meeting_id=row.meeting_id,
            allowed_registrant=row.allowed_registrant,
            status=RowState.INVALID,
            error=row.error,
            webinar_id=row.webinar_id,
            email=row.email,
        )
    request = row.request
    if isinstance(request, RegistrantRequest | PublicationRequest):
        # A webinar's row: a registrant's names the person; a publication's, the webinar only.
        return RowRecord(
            seq=seq,
            line=row.line,
            user_id="",
            meeting_id="",
            allowed_registrant="",
            status=RowState.QUEUED,
            webinar_id=request.webinar_id,
            email=request.email if isinstance(request, RegistrantRequest) else "",
            person=person_of(request) if isinstance(request, RegistrantRequest) else {},
        )
    if not isinstance(request, RegistrationRequest):
        raise TypeError(f"not a request meetreg knows: {type(request).__name__}")
    return RowRecord(
        seq=seq,
        line=row.line,
        user_id=request.user_id,
        meeting_id=request.meeting_id or "",
        join_web_url=request.join_web_url or "",
        allowed_registrant=str(request.allowed_registrant),
        status=RowState.QUEUED,
    )


def person_of(request: RegistrantRequest) -> dict[str, Any]:
    """What a registrant's row keeps of the person, for the worker's POST."""
    return {
        "first_name": request.first_name,
        "last_name": request.last_name,
        "preferred_timezone": request.preferred_timezone,
        "preferred_language": request.preferred_language,
        "answers": dict(request.answers),
    }


def _row_key(row: ValidRow) -> bytes:
    """What makes two rows the same request. A digest, not the ids: shorter in Redis."""
    return hashlib.blake2b("\x00".join(row.request.dedup_key).encode(), digest_size=16).digest()


def chunks_to_send(records: Iterable[RowRecord], batch_id: str, chunk_size: int) -> Iterator[Chunk]:
    """Runs of up to `chunk_size` consecutive rows that hold at least one unfinished row."""
    unfinished = (record.seq for record in records if not record.status.is_final)
    return _runs(unfinished, batch_id, chunk_size)


def _runs(seqs: Iterable[int], batch_id: str, chunk_size: int) -> Iterator[Chunk]:
    """Chunks covering the ascending `seqs`, each spanning at most `chunk_size` rows."""
    start: int | None = None
    last = 0
    for seq in seqs:
        if start is not None and seq - start >= chunk_size:
            yield (batch_id, start, last + 1)
            start = None
        if start is None:
            start = seq
        last = seq
    if start is not None:
        yield (batch_id, start, last + 1)


def enqueue_rows(
    rows: Iterable[SourceRow],
    *,
    store: OutcomeStore,
    publish: PublishMany,
    source: str,
    batch_id: str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    operation: Operation = Operation.CREATE,
) -> Enqueued:
    """Record the rows as a batch and enqueue its unfinished rows. `operation`: CREATE for
    meetings, REGISTER for webinar registrants, PUBLISH for webinars (the rows' kind).

    Raises InputError when the source is refused (whatever the row), BatchConflict when
    it does not hold the rows of the batch it would resume; nothing is enqueued then.
    """
    batch_id = check_batch_id(batch_id) if batch_id else new_batch_id()
    if store.batch_exists(batch_id):
        return _resume(rows, store=store, publish=publish, batch_id=batch_id, chunk_size=chunk_size)
    finals = bytearray()  # one byte per row: 1 if it needs no Graph call (invalid, duplicate)
    store.forget_first_lines(batch_id)  # left by an attempt cut short, if any
    records = to_records(rows, partial(store.first_lines, batch_id))
    try:
        total = store.create_batch(
            batch_id, source, _noting_finals(records, finals), operation=operation
        )
    except BaseException:
        store.delete_batch(batch_id)
        raise
    finally:
        store.forget_first_lines(batch_id)
    size = chunk_size_for(total, chunk_size)
    unfinished = (seq for seq, final in enumerate(finals, start=1) if not final)
    sent = publish(_runs(unfinished, batch_id, size))
    return Enqueued(batch_id=batch_id, total=total, chunks=sent, resumed=False)


def enqueue_file(
    path: Path,
    *,
    store: OutcomeStore,
    publish: PublishMany,
    batch_id: str | None = None,
    allowed_registrant: AllowedRegistrant | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    regular_only: bool = False,
    target: str | None = None,
    defaults: Defaults = DEFAULTS,
) -> Enqueued:
    """`enqueue_rows` over a CSV file: what `meetreg enqueue` and the nightly job do.
    `regular_only` refuses a link, FIFO or device unread (the drop folder's files);
    a path the operator gives is followed. `target` (`meetings`, `webinars`): what the
    rows are; None: the header says.

    Raises InputError for a file refused whole (nothing is enqueued then), StoreError.
    """
    target = target or file_target(path, regular_only=regular_only)
    rows = read_rows(
        path,
        default_registrant=allowed_registrant,
        regular_only=regular_only,
        target=target,
        defaults=defaults,
    )
    return enqueue_rows(
        rows,
        store=store,
        publish=publish,
        source=str(path),
        batch_id=batch_id,
        chunk_size=chunk_size,
        operation=Operation.REGISTER if target == WEBINARS else Operation.CREATE,
    )


def chunk_size_for(total: int, chunk_size: int) -> int:
    """Rows per message: the setting, or larger for a big batch, so that enqueueing
    100,000 rows sends 500 messages rather than 10,000."""
    return max(chunk_size, -(-total // MAX_MESSAGES_PER_BATCH))


def _noting_finals(records: Iterable[RowRecord], finals: bytearray) -> Iterator[RowRecord]:
    for record in records:
        finals.append(record.status.is_final)
        yield record


def _resume(
    rows: Iterable[SourceRow],
    *,
    store: OutcomeStore,
    publish: PublishMany,
    batch_id: str,
    chunk_size: int,
) -> Enqueued:
    status = store.batch_status(batch_id)
    if status.operation.undoes:
        raise InputError(f"batch {batch_id} is an undo batch; `meetreg disable` resumes it")
    digest = RowsDigest()
    total = 0
    for total, row in enumerate(rows, start=1):  # the whole source is read (and checked) first
        digest.add(_record(total, row))
    # A batch written before digests were kept can only be told apart by its size.
    known = status.rows_digest
    if total != status.total or (known and digest.hexdigest() != known):
        sizes = f" ({status.total} there, {total} here)" if total != status.total else ""
        raise BatchConflict(
            f"batch {batch_id} already exists and its rows differ from these{sizes}; "
            "give the same rows to resume it, or another batch id"
        )
    size = chunk_size_for(total, chunk_size)
    sent = publish(chunks_to_send(store.iter_rows(batch_id, total), batch_id, size))
    return Enqueued(batch_id=batch_id, total=total, chunks=sent, resumed=True)


def requeue_failed(
    store: OutcomeStore,
    batch_id: str,
    *,
    publish: PublishMany,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> int:
    """Put the batch's `failed` rows back to `queued` and enqueue them; returns how many.

    Raises UnknownBatchError. A failed row whose POST may have reached Graph is still
    looked up (GET) before any new POST: the meeting's record remembers that POST.
    The rows are put back a page at a time (one round trip each), and a chunk is published
    only once all its rows are queued: memory stays flat however many rows failed.
    """
    status = store.batch_status(batch_id)
    requeued = 0

    def put_back() -> Iterator[RowRecord]:
        nonlocal requeued
        rows = store.iter_rows(batch_id, status.total)
        while page := list(islice(rows, READ_PAGE)):
            failed = [row for row in page if row.status is RowState.FAILED]
            for row in failed:
                row.status = RowState.QUEUED
                row.http_status = None
                row.error = ""
                row.request_id = ""
            store.save_rows(batch_id, failed, overwrite_final=True)
            requeued += len(failed)
            yield from failed

    size = chunk_size_for(status.counts.get(str(RowState.FAILED), 0), chunk_size)
    publish(chunks_to_send(put_back(), batch_id, size))
    return requeued


def resume_batch(
    store: OutcomeStore,
    batch_id: str,
    *,
    publish: PublishMany,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> int:
    """Lift a pause and enqueue the batch's unfinished rows again; returns the chunks sent.

    Raises UnknownBatchError, and InputError for a cancelled batch. A row still in a
    worker's hands may be sent twice: its meeting's lease keeps the second copy waiting
    until the first is done, and the row is final by then.
    """
    store.unpause_batch(batch_id)
    status = store.batch_status(batch_id)
    size = chunk_size_for(status.total, chunk_size)
    return publish(chunks_to_send(store.iter_rows(batch_id, status.total), batch_id, size))
