"""Hostile CSV files: any bytes, encodings, quoting, giant fields, many columns, NULs.

Every file is either refused whole (InputError, one line) or read into valid and invalid
rows; nothing else escapes, nothing hangs, and memory does not grow with a field's size.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.sources.csv_file import read_rows
from worker.errors import InputError
from worker.validation import InvalidRow, ValidRow

GUID = "0f3a9c2e-5b7d-4e1f-9a8b-6c5d4e3f2a1b"
HEADERS = [
    "user_id,meeting_id",
    "userId;meetingId;allowedRegistrant",
    "user_id,join_web_url",
    "a,b",
]
CELLS = st.one_of(
    st.sampled_from(
        [
            GUID,
            "ada@contoso.example",
            "m-1",
            "everyone",
            "organization",
            "",
            '"',
            '""',
            "https://x/y",
        ]
    ),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=10),
)
FUZZ = settings(
    max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def outcome(path: Path) -> str:
    """'refused' or 'read'; anything else (another exception) fails the test."""
    try:
        for row in read_rows(path):
            assert isinstance(row, ValidRow | InvalidRow)
            if isinstance(row, InvalidRow):
                assert row.error and "\n" not in row.error
    except InputError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and "\n" not in message
        return "refused"
    return "read"


def refused_within(path: Path, max_bytes: int) -> bool:
    """The file is refused, and reading it never held more than `max_bytes` at once."""
    tracemalloc.start()
    try:
        refused = outcome(path) == "refused"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < max_bytes, f"peak {peak >> 20} MiB while reading {path.name}"
    return refused


@FUZZ
@given(data=st.binary(max_size=2000))
def test_any_bytes_are_refused_or_read_never_a_crash(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "any.csv"
    path.write_bytes(data)
    outcome(path)


@FUZZ
@given(
    header=st.sampled_from(HEADERS),
    rows=st.lists(st.lists(CELLS, max_size=6), max_size=20),
    separator=st.sampled_from([",", ";", "\t"]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]),
)
def test_csv_shaped_text_in_any_encoding_is_refused_or_read(
    tmp_path_factory,
    header: str,
    rows: list[list[str]],
    separator: str,
    newline: str,
    encoding: str,
) -> None:
    text = newline.join([header, *(separator.join(cells) for cells in rows)]) + newline
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    path = tmp_path_factory.mktemp("fuzz") / "shaped.csv"
    path.write_bytes(data)
    outcome(path)


def test_a_giant_field_is_refused_in_one_line_without_holding_it(tmp_path: Path) -> None:
    path = tmp_path / "giant.csv"
    with path.open("w") as handle:
        handle.write(f"user_id,meeting_id\n{GUID},")
        chunk = "x" * (1 << 20)
        for _ in range(64):  # a 64 MiB meeting id on one line
            handle.write(chunk)
        handle.write("\n")
    assert refused_within(path, 16 << 20)


def test_a_giant_quoted_field_across_lines_is_refused_without_holding_it(tmp_path: Path) -> None:
    path = tmp_path / "quoted.csv"
    with path.open("w") as handle:
        handle.write(f'user_id,meeting_id\n{GUID},"')
        for _ in range(64 * 1024):
            handle.write("y" * 1023 + "\n")
    assert refused_within(path, 16 << 20)


def test_very_many_columns_are_read(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    extra = ",".join(f"c{i}" for i in range(20_000))
    path.write_text(f"user_id,meeting_id,{extra}\n{GUID},m-1,{',' * 19_999}\n")
    (row,) = list(read_rows(path))
    assert isinstance(row, ValidRow)


def test_nul_bytes_refuse_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nul.csv"
    path.write_bytes(f"user_id,meeting_id\n{GUID},m\x00-1\n".encode())
    assert outcome(path) == "refused"
