"""A batch's report: one record per input row, as CSV or JSON (CONTRACT.md, Outcomes)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import Any, TextIO

from worker.errors import InputError
from worker.models import RowRecord
from worker.store import OutcomeStore

COLUMNS = (
    "line",
    "user_id",
    "meeting_id",
    "allowed_registrant",
    "status",
    "registration_id",
    "http_status",
    "error",
    "attempts",
    "request_id",
    "updated_at",
)
FORMATS = ("csv", "json")
# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def report_record(row: RowRecord) -> dict[str, Any]:
    data = row.to_json_dict()
    record = {column: data[column] for column in COLUMNS}
    if not record["meeting_id"] and row.join_web_url:
        record["meeting_id"] = row.join_web_url
    return record


def neutralised(value: object) -> object:
    """Prefix a quote to text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(rows: Iterable[RowRecord], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        record = report_record(row)
        writer.writerow([neutralised("" if record[c] is None else record[c]) for c in COLUMNS])
        count += 1
    return count


def write_json(rows: Iterable[RowRecord], out: TextIO) -> int:
    """A JSON array, written a row at a time so a large batch is never held whole."""
    count = 0
    out.write("[")
    for row in rows:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(report_record(row), ensure_ascii=False))
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
    return write(store.iter_rows(batch_id, store.batch_status(batch_id).total), out)
