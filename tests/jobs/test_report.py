"""The batch report: what a spreadsheet may run from it, and what scripts read from it."""

import csv
import io
import json
from pathlib import Path

import pytest
import redis
from pipeline_helpers import ORGANIZER

from jobs.enqueue import enqueue_file
from jobs.report import COLUMNS, neutralised, write_report
from worker.store.outcome_store import OutcomeStore

# Cells an attacker controls: an invalid row keeps them as given, and they are reported.
HOSTILE = [
    "x;=cmd|'/C calc'!A0;",
    "x,=cmd|'/C calc'!A0",
    "a\t@SUM(1+1)*cmd|' /C calc'!A0",
    'x;"=HYPERLINK(""http://evil"")"',
    "=HYPERLINK(1)",
    "ok;+1+1",
    "ok;-2+3",
]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def report_of(redis_client: redis.Redis, tmp_path: Path, fmt: str) -> str:
    lines = [f"{ORGANIZER},m-1"] + [
        '"' + cell.replace('"', '""') + '",m-' + str(i) for i, cell in enumerate(HOSTILE, 2)
    ]
    path = tmp_path / "hostile.csv"
    path.write_text("user_id,meeting_id\n" + "\n".join(lines) + "\n", encoding="utf-8")
    store = OutcomeStore(redis_client)
    enqueue_file(path, store=store, publish=lambda chunks: 0, batch_id="hostile")
    out = io.StringIO()
    write_report(store, "hostile", fmt, out)
    return out.getvalue()


def spreadsheet_cells(text: str) -> list[str]:
    """Every cell a spreadsheet could make of the report, whichever separator its locale
    uses and whether or not it honours the quotes, as its first characters decide."""
    cells: list[str] = []
    for separator in (",", ";", "\t"):
        for row in csv.reader(io.StringIO(text), delimiter=separator):
            cells.extend(row)
        for line in text.splitlines():
            cells.extend(line.split(separator))
    return [cell.lstrip('"') for cell in cells]


def test_no_cell_of_the_csv_report_starts_a_formula_in_any_spreadsheet_locale(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    text = report_of(redis_client, tmp_path, "csv")
    live = [cell for cell in spreadsheet_cells(text) if cell.startswith(FORMULA_STARTS)]
    assert live == []


def test_the_csv_report_keeps_its_columns_and_every_cell_quoted(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    text = report_of(redis_client, tmp_path, "csv")
    header, first, *hostile = list(csv.reader(io.StringIO(text)))
    assert header == list(COLUMNS)
    assert (first[1], first[2], first[0]) == (ORGANIZER, "m-1", "2")
    # Only a quote is added, where a segment would start a formula.
    assert [row[1] for row in hostile] == [
        "x;'=cmd|'/C calc'!A0;",
        "x,'=cmd|'/C calc'!A0",
        "a\t'@SUM(1+1)*cmd|' /C calc'!A0",
        'x;\'"=HYPERLINK(""http://evil"")"',
        "'=HYPERLINK(1)",
        "ok;'+1+1",
        "ok;'-2+3",
    ]
    assert all(line.startswith('"') and line.endswith('"') for line in text.splitlines())


def test_the_json_report_holds_the_cells_as_given(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    records = json.loads(report_of(redis_client, tmp_path, "json"))
    assert [record["user_id"] for record in records[1:]] == HOSTILE
    assert records[0]["line"] == 2 and records[0]["http_status"] is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain text", "plain text"),
        ("-1", "'-1"),
        ("a, b; c", "a, b; c"),
        ("error: x, -y", "error: x, -y"),  # a space first: a spreadsheet reads text
        ("\r\n=1", "'\r\n'=1"),
        (201, 201),
        (None, None),
    ],
)
def test_only_what_would_start_a_formula_is_quoted(value: object, expected: object) -> None:
    assert neutralised(value) == expected
