"""jobs.sources.csv_file: what a user's CSV file becomes, and which files are refused whole."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from jobs.sources.csv_file import FIELD_LIMIT_CHARS, read_rows
from worker.errors import InputError
from worker.validation import (
    AllowedRegistrant,
    InvalidRow,
    RegistrationRequest,
    SourceRow,
    ValidRow,
)

GUID = "0f3a9c2e-5b7d-4e1f-9a8b-6c5d4e3f2a1b"
MEETING = "MSo1N2Y5ZGFjYy03MWJmLTQ3NDMtYjQxMy01M2EdFGkdRWHJlQ"
JOIN_URL = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_abc%40thread.v2/0"

WriteCsv = Callable[..., Path]


@pytest.fixture
def write_csv(tmp_path: Path) -> WriteCsv:
    """Write `text` (or raw bytes) to a file in tmp_path and return its path."""

    def write(content: str | bytes, name: str = "input.csv", encoding: str = "utf-8") -> Path:
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
        return path

    return write


def rows_of(path: Path, **kwargs: object) -> list[SourceRow]:
    return list(read_rows(path, **kwargs))  # type: ignore[arg-type]


def refusal(path: Path) -> str:
    with pytest.raises(InputError) as caught:
        rows_of(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    assert "Traceback" not in message
    return message


# --- files refused whole -----------------------------------------------------------------

REFUSED_CONTENT = [
    pytest.param(b"", "no header row", id="empty"),
    pytest.param(b"\xef\xbb\xbf", "no header row", id="bom-only"),
    pytest.param(b"\r\n\n  \n", "no header row", id="blank-lines-only"),
    pytest.param(b",,\n", "no header row", id="header-of-empty-cells"),
    pytest.param(
        "user_id,meeting_id\n".encode("utf-16"), "UTF-16 text; save it as UTF-8", id="utf16-le"
    ),
    pytest.param(
        b"\xfe\xff" + "user_id,meeting_id\n".encode("utf-16-be"),
        "UTF-16 text; save it as UTF-8",
        id="utf16-be",
    ),
    pytest.param(
        "user_id,meeting_id\n".encode("utf-32"), "UTF-32 text; save it as UTF-8", id="utf32"
    ),
    pytest.param(
        "user_id,meeting_id\n".encode("utf-16-le"), "NUL byte at line 1", id="utf16-without-bom"
    ),
    pytest.param(
        f"user_id,meeting_id\n{GUID},m1\n{GUID},m\x002\n".encode(),
        "NUL byte at line 3",
        id="nul-byte",
    ),
    pytest.param(
        f"user_id,meeting_id\n{GUID},m1\n\n{GUID},r\xe9union\n".encode("latin-1"),
        "not UTF-8 (byte 0xE9 at line 4)",
        id="latin-1",
    ),
    pytest.param(b"PK\x03\x04\x14\x00\x06\x00", "NUL byte at line 1", id="xlsx"),
    pytest.param(b"meeting_id,subject\nm1,x\n", "no user_id column", id="no-user-column"),
    pytest.param(
        f"{GUID},{MEETING}\n".encode(), "no user_id column", id="data-where-the-header-belongs"
    ),
    pytest.param(
        b"user_id,subject\nu@x.com,x\n", "no meeting_id or join_web_url column", id="no-meeting"
    ),
    pytest.param(
        b"userId,meeting_id,organizer_id\n", "column user_id appears twice", id="user-id-twice"
    ),
    pytest.param(
        b"user_id;Meeting ID;meetingId\n", "column meeting_id appears twice", id="meeting-twice"
    ),
    pytest.param(
        f'user_id,meeting_id\n{GUID},m1\n{GUID},"m2\n{GUID},m3\n'.encode(),
        "unterminated quote in the record starting at line 3",
        id="unterminated-quote",
    ),
    pytest.param(
        b'user_id,"meeting_id\n',
        "unterminated quote in the record starting at line 1",
        id="unterminated-quote-in-header",
    ),
    pytest.param(
        f'user_id,meeting_id\n{GUID},"m1"x\n'.encode(),
        "text after a closing quote in the record starting at line 2",
        id="text-after-quote",
    ),
    pytest.param(
        f"user_id,meeting_id\n{GUID},{'m' * (FIELD_LIMIT_CHARS + 1)}\n".encode(),
        f"field longer than {FIELD_LIMIT_CHARS} characters at line 2",
        id="field-too-long",
    ),
]


@pytest.mark.parametrize(("content", "problem"), REFUSED_CONTENT)
def test_unusable_file_is_refused_with_one_line_naming_file_and_problem(
    write_csv: WriteCsv, content: bytes, problem: str
) -> None:
    assert problem in refusal(write_csv(content))


def test_missing_file_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path / "nope.csv") == f"{tmp_path / 'nope.csv'}: no such file"


def test_directory_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path) == f"{tmp_path}: is a directory"


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("AZURE_CLIENT_SECRET=s3cr3t-from-a-file", "no user_id column; the header has 1 column"),
        (
            "user_id,subject,MEETREG_API_KEY=s3cr3t-from-a-file",
            "no meeting_id or join_web_url column; the header has 3 columns, of which "
            "meetreg reads user_id",
        ),
        (
            "Organizer_ID,userId,meeting_id",
            "column user_id appears twice (columns 1 and 2)",
        ),
    ],
)
def test_a_refusal_names_the_problem_never_the_files_text(
    write_csv: WriteCsv, header: str, problem: str
) -> None:
    path = write_csv(f"{header}\nu@x.com,m\n")
    message = refusal(path)
    assert message == f"{path}: {problem}"
    assert "s3cr3t" not in message


def test_quote_left_open_in_a_long_file_is_reported_where_it_opens(write_csv: WriteCsv) -> None:
    # The open quote swallows the rest of the file until the field limit stops it.
    rows = "".join(f"{GUID},meeting-{i:06}\n" for i in range(30_000))
    path = write_csv(f'user_id,meeting_id\n{GUID},"m1\n{rows}')
    message = refusal(path)
    assert f"field longer than {FIELD_LIMIT_CHARS} characters at line 2" in message
    assert "quote left open" in message


def test_bad_byte_late_in_the_file_is_found_while_streaming(write_csv: WriteCsv) -> None:
    good = "".join(f"{GUID},m{i}\n" for i in range(5_000))
    path = write_csv(b"user_id,meeting_id\n" + good.encode() + b"u@x.com,caf\xe9\n")
    rows = read_rows(path)
    taken = [next(rows) for _ in range(5_000)]
    assert all(isinstance(row, ValidRow) for row in taken)
    with pytest.raises(InputError, match=r"byte 0xE9 at line 5002"):
        next(rows)


# --- the formats accepted ----------------------------------------------------------------

EXPECTED_LINES = [2, 3, 5]


@pytest.mark.parametrize("bom", ["", "\ufeff"], ids=["no-bom", "bom"])
@pytest.mark.parametrize("delimiter", [",", ";"], ids=["comma", "semicolon"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_utf8_with_or_without_bom_comma_or_semicolon_lf_or_crlf(
    write_csv: WriteCsv, bom: str, delimiter: str, newline: str
) -> None:
    records = [
        ["user_id", "meeting_id", "allowed_registrant"],
        [GUID, MEETING, "organization"],
        ["Ana.Müller@contoso.com", "m-2", ""],
        [],
        ["u3@contoso.com", "m-3", "everyone"],
    ]
    text = bom + newline.join(delimiter.join(cells) for cells in records) + newline
    rows = rows_of(write_csv(text))
    assert [row.line for row in rows] == EXPECTED_LINES
    assert all(isinstance(row, ValidRow) for row in rows)
    requests = [row.request for row in rows if isinstance(row, ValidRow)]
    assert [r.user_id for r in requests] == [GUID, "ana.müller@contoso.com", "u3@contoso.com"]
    assert [r.meeting_id for r in requests] == [MEETING, "m-2", "m-3"]
    assert [r.allowed_registrant for r in requests] == ["organization", "everyone", "everyone"]


def test_quoted_cells_may_hold_the_other_delimiter(write_csv: WriteCsv) -> None:
    rows = rows_of(write_csv(f'"user_id";"meeting_id";"note, with comma"\n{GUID};m1;"a, b"\n'))
    assert isinstance(rows[0], ValidRow)
    assert rows[0].request.meeting_id == "m1"


@pytest.mark.parametrize(
    "header",
    [
        "user_id,meeting_id,allowed_registrant",
        "userId,meetingId,allowedRegistrant",
        "Organizer_ID,MEETINGID,Allowed_Registrant",
        " UserId , Meeting_Id , allowedregistrant ",
    ],
)
def test_header_spellings_read_the_same_rows(write_csv: WriteCsv, header: str) -> None:
    (row,) = rows_of(write_csv(f"{header}\n{GUID},{MEETING},organization\n"))
    assert row == ValidRow(
        2,
        RegistrationRequest(
            user_id=GUID, meeting_id=MEETING, allowed_registrant=AllowedRegistrant.ORGANIZATION
        ),
    )


def test_other_columns_are_ignored_wherever_they_stand(write_csv: WriteCsv) -> None:
    text = f"subject,user_id,start,meeting_id,owner\nWeekly,{GUID},2024-01-01,m1,someone\n"
    (row,) = rows_of(write_csv(text))
    assert isinstance(row, ValidRow)
    assert (row.request.user_id, row.request.meeting_id) == (GUID, "m1")


# --- what each row becomes ---------------------------------------------------------------


def test_guid_is_lower_cased_and_upn_is_lower_cased(write_csv: WriteCsv) -> None:
    rows = rows_of(write_csv(f"user_id,meeting_id\n{GUID.upper()},m1\nAlice@Contoso.COM,m2\n"))
    users = [row.request.user_id for row in rows if isinstance(row, ValidRow)]
    assert users == [GUID, "alice@contoso.com"]


def test_join_web_url_names_the_meeting_when_there_is_no_meeting_id(write_csv: WriteCsv) -> None:
    (row,) = rows_of(write_csv(f"organizerId,joinWebUrl\n{GUID},{JOIN_URL}\n"))
    assert isinstance(row, ValidRow)
    assert row.request.meeting_id is None
    assert row.request.join_web_url == JOIN_URL


def test_meeting_id_cell_or_else_join_url_cell(write_csv: WriteCsv) -> None:
    text = f"user_id,meeting_id,join_web_url\n{GUID},m1,{JOIN_URL}\n{GUID},,{JOIN_URL}\n"
    first, second = rows_of(write_csv(text))
    assert isinstance(first, ValidRow)
    assert isinstance(second, ValidRow)
    assert (first.request.meeting_id, first.request.join_web_url) == ("m1", JOIN_URL)
    assert (second.request.meeting_id, second.request.join_web_url) == (None, JOIN_URL)


TWO = "user_id,meeting_id"
THREE = "user_id,meeting_id,allowed_registrant"


@pytest.mark.parametrize(
    ("header", "cell", "default", "expected"),
    [
        (TWO, "", None, "everyone"),
        (TWO, "", AllowedRegistrant.ORGANIZATION, "organization"),
        (THREE, ",", AllowedRegistrant.ORGANIZATION, "organization"),
        (THREE, ",  ", None, "everyone"),
        (THREE, ",everyone", AllowedRegistrant.ORGANIZATION, "everyone"),
        (THREE, ", Organization ", None, "organization"),
    ],
    ids=["absent", "absent+default", "empty+default", "blank", "cell-wins", "cell-case"],
)
def test_allowed_registrant_default(
    write_csv: WriteCsv,
    header: str,
    cell: str,
    default: AllowedRegistrant | None,
    expected: str,
) -> None:
    path = write_csv(f"{header}\n{GUID},m1{cell}\n")
    (row,) = rows_of(path, default_registrant=default)
    assert isinstance(row, ValidRow)
    assert row.request.allowed_registrant == expected


INVALID_CELLS = [
    ("not-a-user", "m1", "", "user_id is neither a GUID nor a UPN"),
    ("", "m1", "", "user_id is empty"),
    ("alice smith@contoso.com", "m1", "", "user_id contains whitespace or a control character"),
    (f"{{{GUID}}}", "m1", "", "user_id is neither a GUID nor a UPN"),
    (GUID, "", "", "meeting_id (or join_web_url) is required"),
    (GUID, '"m 1"', "", "meeting_id contains whitespace or a control character"),
    (GUID, "..", "", "meeting_id is '..', which a URL reads as a path step, never an id"),
    (GUID, ".", "", "meeting_id is '.', which a URL reads as a path step, never an id"),
    (GUID, "m1", "anyone", "allowed_registrant must be everyone or organization"),
    (GUID, "m1", "unknownFutureValue", "allowed_registrant must be everyone or organization"),
    (
        "nobody",
        '"bad id"',
        "",
        "user_id is neither a GUID nor a UPN;"
        " meeting_id contains whitespace or a control character",
    ),
]


@pytest.mark.parametrize(("user", "meeting", "registrant", "error"), INVALID_CELLS)
def test_invalid_row_says_what_is_wrong_in_one_line(
    write_csv: WriteCsv, user: str, meeting: str, registrant: str, error: str
) -> None:
    text = f"user_id,meeting_id,allowed_registrant\n{GUID},ok\n{user},{meeting},{registrant}\n"
    first, second = rows_of(write_csv(text))
    assert isinstance(first, ValidRow)
    assert second == InvalidRow(3, user, meeting.strip('"'), registrant, error)


def test_join_url_that_is_not_https_is_invalid(write_csv: WriteCsv) -> None:
    (row,) = rows_of(write_csv(f"user_id,join_web_url\n{GUID},http://teams.example/x\n"))
    assert row == InvalidRow(
        2, GUID, "http://teams.example/x", "", "join_web_url is not an https:// link"
    )


def test_line_numbers_count_physical_lines_across_quoted_newlines_and_blanks(
    write_csv: WriteCsv,
) -> None:
    text = (
        "user_id,meeting_id,note\r\n"  # 1
        f'{GUID},m1,"first line\r\nsecond line\r\nthird line"\r\n'  # 2-4
        "\r\n"  # 5
        "bad-user,m2,\r\n"  # 6
        " , ,  \r\n"  # 7: whitespace only, skipped
        ",,\r\n"  # 8: empty cells, skipped
        f'{GUID},"m 3",x\r\n'  # 9
    )
    rows = rows_of(write_csv(text))
    assert [(row.line, type(row).__name__) for row in rows] == [
        (2, "ValidRow"),
        (6, "InvalidRow"),
        (9, "InvalidRow"),
    ]


def test_blank_lines_before_the_header_keep_physical_line_numbers(write_csv: WriteCsv) -> None:
    (row,) = rows_of(write_csv(f"\n\nuser_id,meeting_id\n{GUID},m1\n"))
    assert row.line == 4


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (f"{GUID};m1;extra", InvalidRow(2, GUID, "m1", "", "row has 3 fields, the header has 2")),
        (";;extra", InvalidRow(2, "", "", "", "row has 3 fields, the header has 2")),
        (" ; ;  ;", None),
    ],
    ids=["extra-cell", "only-the-extra-cell-filled", "all-blank"],
)
def test_row_with_more_cells_than_the_header_is_invalid_unless_blank(
    write_csv: WriteCsv, record: str, expected: InvalidRow | None
) -> None:
    rows = rows_of(write_csv(f"user_id;meeting_id\n{record}\n"))
    assert rows == ([expected] if expected else [])


def test_row_with_fewer_cells_reads_the_missing_ones_as_empty(write_csv: WriteCsv) -> None:
    text = f"user_id,meeting_id,allowed_registrant\n{GUID},m1\n{GUID}\n"
    valid, invalid = rows_of(write_csv(text), default_registrant=AllowedRegistrant.ORGANIZATION)
    assert isinstance(valid, ValidRow)
    assert valid.request.allowed_registrant == AllowedRegistrant.ORGANIZATION
    assert invalid == InvalidRow(3, GUID, "", "", "meeting_id (or join_web_url) is required")


def test_invalid_row_cells_are_cut_for_the_report(write_csv: WriteCsv) -> None:
    long_user = "x" * 2000
    (row,) = rows_of(write_csv(f"user_id,meeting_id\n{long_user},m1\n"))
    assert isinstance(row, InvalidRow)
    assert row.user_id == "x" * 512
    assert row.error == "user_id is longer than 320 characters"


# --- streaming ---------------------------------------------------------------------------


@pytest.mark.slow
def test_memory_stays_flat_however_long_the_file(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("user_id,meeting_id,allowed_registrant\r\n")
        for i in range(200_000):
            out.write(f"user{i}@contoso.com,MSo{i:040d},{'organization' if i % 2 else ''}\r\n")
    assert path.stat().st_size > 10_000_000

    tracemalloc.start()
    try:
        count = 0
        for row in read_rows(path):
            assert isinstance(row, ValidRow)
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 200_000
    assert peak < 2_000_000, f"peak traced memory {peak:,} bytes"
