"""A batch's report: one record per input row, as CSV or JSON (docs/commands.md, Outcomes)."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from typing import Any, TextIO

from worker.errors import InputError
from worker.models import Operation, RowRecord
from worker.store.outcome_store import OutcomeStore

# What happened to the row: the same columns whatever the row names.
_OUTCOME = ("status", "registration_id", "http_status", "error", "attempts")
_WHEN = ("request_id", "updated_at")
COLUMNS = ("line", "user_id", "meeting_id", "allowed_registrant", *_OUTCOME, *_WHEN)
REGISTRANT_COLUMNS = ("line", "webinar_id", "email", *_OUTCOME, *_WHEN)
"""A webinar registrant batch's columns: the webinar and the person in place of the meeting's."""
PUBLICATION_COLUMNS = ("line", "webinar_id", "status", *_OUTCOME[2:], *_WHEN)
"""A webinar publication batch's columns: the webinar alone (publishing makes no id)."""
FORMATS = ("csv", "json")
# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Where a spreadsheet may start a cell inside ours: its locale's separator may be `;` or a
# tab rather than our `,`, and one that ignores quotes splits `x;=cmd` into a live `=cmd`.
# A `"` or two before the formula start changes nothing to such a reader.
_STARTS_CLASS = f"[{re.escape(''.join(FORMULA_STARTS))}]"
_FORMULA_SEGMENT = re.compile(rf'(?:^|(?<=[,;\t\r\n]))(?="*{_STARTS_CLASS})')
_FORMULA_INSIDE = re.compile(rf'[,;\t\r\n]"*{_STARTS_CLASS}')  # the fast test: any to quote?
_RISKY_FIRST = frozenset(FORMULA_STARTS) | {'"'}


def report_record(row: RowRecord, columns: tuple[str, ...] = COLUMNS) -> dict[str, Any]:
    data = row.to_json_dict()
    if columns is not COLUMNS:
        return {column: data.get(column, "") for column in columns}
    record = {column: data[column] for column in columns}
    if not record["meeting_id"] and row.join_web_url:
        record["meeting_id"] = row.join_web_url
    return record


def columns_for(operation: Operation) -> tuple[str, ...]:
    """The report's columns for a batch of `operation`."""
    if operation is Operation.PUBLISH:
        return PUBLICATION_COLUMNS
    return REGISTRANT_COLUMNS if operation.webinars else COLUMNS


def neutralised(value: object) -> object:
    """Prefix a quote to text a spreadsheet would run as a formula: the cell's start, and
    each part after a `,`, `;`, tab or line break."""
    if isinstance(value, str) and (value[:1] in _RISKY_FIRST or _FORMULA_INSIDE.search(value)):
        return _FORMULA_SEGMENT.sub("'", value)
    return value


def write_csv(rows: Iterable[RowRecord], out: TextIO, columns: tuple[str, ...] = COLUMNS) -> int:
    # Every cell quoted, so a spreadsheet splitting on our `,` never splits inside a cell.
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(columns)
    count = 0
    for row in rows:
        record = report_record(row, columns)
        writer.writerow([neutralised("" if record[c] is None else record[c]) for c in columns])
        count += 1
    return count


def write_json(rows: Iterable[RowRecord], out: TextIO, columns: tuple[str, ...] = COLUMNS) -> int:
    """A JSON array, written a row at a time so a large batch is never held whole."""
    count = 0
    out.write("[")
    for row in rows:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(report_record(row, columns), ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def check_format(fmt: str) -> str:
    """Raises InputError for a report format other than csv or json."""
    if fmt not in FORMATS:
        raise InputError(f"--format must be csv or json, not {fmt!r}")
    return fmt


def write_report(store: OutcomeStore, batch_id: str, fmt: str, out: TextIO) -> int:
    """`meetreg report`: the batch's rows in input order, as `fmt`; returns how many.

    Raises UnknownBatchError, InputError (a format other than csv or json), StoreError.
    """
    write = write_csv if check_format(fmt) == "csv" else write_json
    status = store.batch_status(batch_id)
    columns = columns_for(status.operation)
    return write(store.iter_rows(batch_id, status.total), out, columns)
