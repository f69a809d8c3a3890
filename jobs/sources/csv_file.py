"""Read registration requests from a CSV file, one row at a time.

`read_rows(path)` is a generator: it opens the file on the first `next()` and never
holds more than the current record in memory, so a million-row file costs what a
ten-row file does. It yields a `ValidRow` (a `RegistrationRequest` and its line) or an
`InvalidRow` (the cells as given and one line saying what is wrong) for every data
row; blank lines are skipped.

A file that cannot be read as a meetreg CSV at all is refused whole with `InputError`
("<path>: <problem>"). Some of those problems only show where they are (a byte that is
not UTF-8 on line 90,000, a quote never closed), so the error can come from any
`next()`, not only the first: callers read the whole file once before enqueueing
anything, and enqueue nothing if that pass raises.

The format (docs/csv-format.md): UTF-8 with or without BOM; comma or
semicolon, whichever splits the header line; CRLF or LF; a header row whose cells are
matched case-insensitively in snake_case or camelCase.
"""

from __future__ import annotations

import csv
import errno
import io
import itertools
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

from pydantic import ValidationError

from worker.errors import InputError
from worker.keys import DOT_SEGMENTS
from worker.models import MAX_ID_LENGTH, MAX_JOIN_URL_LENGTH, AllowedRegistrant, RegistrationRequest

FIELD_LIMIT_CHARS = 1024 * 1024
"""The largest field accepted; csv's own default (128 KiB) is raised to this once, here."""
MAX_LINE_CHARS = 2 * FIELD_LIMIT_CHARS
"""The longest physical line read: one field at its limit, and room for the others."""
MAX_REPORTED_CHARS = 512
"""An invalid row's cells are cut to this length for the report."""

csv.field_size_limit(FIELD_LIMIT_CHARS)

_COLUMNS = {
    "userid": "user_id",
    "organizerid": "user_id",
    "meetingid": "meeting_id",
    "joinweburl": "join_web_url",
    "allowedregistrant": "allowed_registrant",
}
_FIELDS = ("user_id", "meeting_id", "join_web_url", "allowed_registrant")
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # what errors="surrogateescape" makes of a bad byte
_GUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_SIMPLE_UPN = re.compile(r"[!-?A-~]+@[!-?A-~]+\.[!-?A-~]+")  # printable ASCII, one "@", no space
_new_request = RegistrationRequest.__new__
_set = object.__setattr__
_REGISTRANTS = {member.value: member for member in AllowedRegistrant}
_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


@dataclass(frozen=True, slots=True)
class ValidRow:
    """A data row that makes a request. `line` is where it starts (the header is line 1)."""

    line: int
    request: RegistrationRequest


@dataclass(frozen=True, slots=True)
class InvalidRow:
    """A data row that makes no request: its cells as given, and why.

    `meeting_id` holds the meeting_id cell, or the join_web_url cell when the former is
    empty; cells are stripped and cut to `MAX_REPORTED_CHARS`.
    """

    line: int
    user_id: str
    meeting_id: str
    allowed_registrant: str
    error: str


SourceRow = ValidRow | InvalidRow


def canonical_column(name: str) -> str | None:
    """Map a header cell to its canonical field name, or None for a column meetreg ignores.

    Case, `_`, `-` and spaces do not count: `userId`, `User ID` and `organizer_id` all
    name `user_id`.
    """
    key = name.strip().lower().replace("_", "").replace("-", "").replace(" ", "")
    return _COLUMNS.get(key)


def validate_fields(
    fields: Mapping[str, str | None],
    line: int,
    *,
    default_registrant: AllowedRegistrant | None = None,
) -> SourceRow:
    """Turn one record's fields, keyed by canonical name, into a `ValidRow` or `InvalidRow`.

    Values are strings or None (absent); a missing or empty `allowed_registrant` means
    `default_registrant`, or `everyone` without one. Never raises for bad values: they
    make an `InvalidRow`, a value that is not a string included.
    """
    cells: list[str] = []
    wrong: list[str] = []
    for name in _FIELDS:
        value = fields.get(name)
        if value is None:
            cells.append("")
        elif isinstance(value, str):
            cells.append(value.strip())
        else:  # a JSON number or list, say
            cells.append(str(value).strip())
            wrong.append(f"{name} must be a string")
    user_id, meeting_id, join_web_url, registrant = cells
    if wrong:
        return _invalid(line, user_id, meeting_id or join_web_url, registrant, "; ".join(wrong))
    return _validate(user_id, meeting_id, join_web_url, registrant, line, default_registrant)


def read_rows(
    path: Path,
    *,
    default_registrant: AllowedRegistrant | None = None,
    regular_only: bool = False,
) -> Iterator[SourceRow]:
    """Stream the data rows of the CSV file at `path`, each as a `ValidRow` or `InvalidRow`.

    Raises `InputError` ("<path>: <problem>") for a file refused whole: missing,
    unreadable, not UTF-8 text, without a usable header or a required column, or with a
    broken quote or an oversized field. It may be raised by any `next()`. With
    `regular_only` (a folder others write to), a symbolic link, FIFO or device is refused
    unread too. A problem is named, never the file's text.
    """
    with _open_text(path, regular_only=regular_only) as text:
        lines = _checked_lines(text, path)
        first = next(lines, None)
        skipped = 0  # blank lines before the header
        while first is not None and not first.strip():
            skipped += 1
            first = next(lines, None)
        if first is None:
            raise InputError(f"{path}: no header row")
        reader = csv.reader(
            itertools.chain((first,), lines), delimiter=_delimiter(first), strict=True
        )
        end = 0  # physical lines the reader had consumed when the last record ended
        try:
            header = next(reader)
            columns = _map_header(header, path)
            width = len(header)
            # Absent columns read the empty cell appended past the row's end.
            pick = itemgetter(*(columns.get(name, width) for name in _FIELDS))
            end = reader.line_num
            for row in reader:
                line = skipped + end + 1
                end = reader.line_num
                if not any(row):
                    continue
                count = len(row)
                if count > width:
                    if "".join(row).strip():
                        user_id, meeting_id, join_web_url, registrant = pick([*row[:width], ""])
                        yield _invalid(
                            line,
                            user_id.strip(),
                            meeting_id.strip() or join_web_url.strip(),
                            registrant.strip(),
                            f"row has {count} fields, the header has {width}",
                        )
                    continue
                if count < width:
                    row.extend([""] * (width - count))
                row.append("")
                user_id, meeting_id, join_web_url, registrant = pick(row)
                user_id = user_id.strip()
                meeting_id = meeting_id.strip()
                join_web_url = join_web_url.strip()
                registrant = registrant.strip()
                if not (user_id or meeting_id or join_web_url or registrant) and not any(
                    cell.strip() for cell in row
                ):
                    continue  # only whitespace: a blank line in all but name
                yield _validate(
                    user_id, meeting_id, join_web_url, registrant, line, default_registrant
                )
        except csv.Error as exc:
            raise InputError(
                f"{path}: {_describe_csv_error(exc, skipped + end + 1, reader.line_num > end + 1)}"
            ) from None


def _open_text(path: Path, *, regular_only: bool = False) -> io.TextIOWrapper:
    """Open `path` as UTF-8 text (BOM dropped), refusing UTF-16/32 by their byte-order mark.

    Bytes that are not UTF-8 are kept as surrogates so `_checked_lines` can say on which
    line they are; the decoder itself would only know the offset in its buffer.
    """
    try:
        # Handed to the TextIOWrapper, closed with it.
        raw = _open_regular(path) if regular_only else open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP and regular_only:  # O_NOFOLLOW met a link
            raise InputError(f"{path}: a symbolic link, not read") from None
        raise InputError(f"{path}: cannot open it ({exc.strerror or exc})") from None
    try:
        head = raw.peek(4)[:4]
    except OSError as exc:
        raw.close()
        if isinstance(exc, IsADirectoryError):
            raise InputError(f"{path}: is a directory") from None
        raise InputError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            raw.close()
            raise InputError(f"{path}: {encoding} text; save it as UTF-8")
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _open_regular(path: Path) -> io.BufferedReader:
    """Open `path` only if it is a regular file itself: never through a symbolic link, and
    never a FIFO (which would wait for a writer forever) or a device."""
    # O_NONBLOCK: opening a FIFO returns at once, and fstat refuses it.
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    descriptor = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise InputError(f"{path}: not a regular file, not read")
        os.set_blocking(descriptor, True)
        return open(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _checked_lines(text: io.TextIOWrapper, path: Path) -> Iterator[str]:
    """The physical lines of `text`, refusing the file at the first one that is not text,
    or that is longer than any record could be: a line is read up to MAX_LINE_CHARS, never
    whole, so memory stays flat however long a hostile line is."""
    number = 0
    try:
        while line := text.readline(MAX_LINE_CHARS + 1):
            number += 1
            if len(line) > MAX_LINE_CHARS:
                raise InputError(
                    f"{path}: line {number} is longer than {MAX_LINE_CHARS} characters"
                )
            if "\x00" in line:
                raise InputError(
                    f"{path}: not a text file (NUL byte at line {number}); save it as UTF-8 CSV"
                )
            if not line.isascii() and (bad := _UNDECODABLE.search(line)):
                byte = ord(bad.group()) - 0xDC00
                raise InputError(
                    f"{path}: not UTF-8 (byte 0x{byte:02X} at line {number}); save it as UTF-8"
                )
            yield line
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def _delimiter(header_line: str) -> str:
    """Comma or semicolon, whichever occurs more often outside quotes in the header line."""
    outside = "".join(header_line.split('"')[::2])
    return ";" if outside.count(";") > outside.count(",") else ","


def _map_header(header: list[str], path: Path) -> dict[str, int]:
    """Canonical field name -> column index; refuses duplicate and missing columns."""
    if not any(cell.strip() for cell in header):
        raise InputError(f"{path}: no header row")
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        name = canonical_column(cell)
        if name is None:
            continue
        if name in columns:
            # Column numbers, never the cells: a file's text is not echoed into a reason
            # (the file may be anything, a link to a secret included).
            raise InputError(
                f"{path}: column {name} appears twice (columns {columns[name] + 1} and {index + 1})"
            )
        columns[name] = index
    if "user_id" not in columns:
        raise InputError(f"{path}: no user_id column{_header_hint(header, columns)}")
    if "meeting_id" not in columns and "join_web_url" not in columns:
        raise InputError(
            f"{path}: no meeting_id or join_web_url column{_header_hint(header, columns)}"
        )
    return columns


def _header_hint(header: list[str], columns: dict[str, int]) -> str:
    """What meetreg made of the header, in its own words: how many columns, which it read."""
    count = f"{len(header)} column{'s' if len(header) != 1 else ''}"
    read = f", of which meetreg reads {', '.join(columns)}" if columns else ""
    return f"; the header has {count}{read}"


def _short(text: str, limit: int = 60) -> str:
    """`text` cut to `limit` characters and made one line, for an error message."""
    text = text.replace("\r", " ").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe_csv_error(exc: csv.Error, line: int, spans_lines: bool) -> str:
    message = str(exc)
    if message.startswith("unexpected end of data"):
        return f"unterminated quote in the record starting at line {line}"
    if message.startswith("field larger than field limit"):
        hint = " (is a quote left open?)" if spans_lines else ""
        return f"field longer than {FIELD_LIMIT_CHARS} characters at line {line}{hint}"
    if "expected after" in message:
        return f"text after a closing quote in the record starting at line {line}"
    return f"{_short(message)} in the record starting at line {line}"


def _validate(
    user_id: str,
    meeting_id: str,
    join_web_url: str,
    registrant: str,
    line: int,
    default_registrant: AllowedRegistrant | None,
) -> SourceRow:
    """Cells (stripped) -> a row. The fast path builds exactly what model_validate would."""
    if registrant:
        allowed = _REGISTRANTS.get(registrant.lower())
    else:
        allowed = default_registrant or AllowedRegistrant.EVERYONE
    if (
        allowed is not None
        and (_GUID.fullmatch(user_id) or (len(user_id) <= 320 and _SIMPLE_UPN.fullmatch(user_id)))
        and _clean_id(meeting_id, MAX_ID_LENGTH)
        and (
            not join_web_url
            or (
                _clean_id(join_web_url, MAX_JOIN_URL_LENGTH)
                and join_web_url[:8].lower() == "https://"
            )
        )
        and (meeting_id or join_web_url)
    ):
        return ValidRow(
            line, _trusted(user_id.lower(), meeting_id or None, join_web_url or None, allowed)
        )
    try:
        request = RegistrationRequest.model_validate(
            {
                "user_id": user_id,
                "meeting_id": meeting_id or None,
                "join_web_url": join_web_url or None,
                "allowed_registrant": registrant or default_registrant,
            }
        )
    except ValidationError as exc:
        return _invalid(line, user_id, meeting_id or join_web_url, registrant, _describe(exc))
    return ValidRow(line, request)


def _trusted(
    user_id: str, meeting_id: str | None, join_web_url: str | None, allowed: AllowedRegistrant
) -> RegistrationRequest:
    """A RegistrationRequest from values already validated, as model_construct() makes it.

    model_construct() costs 3.5 us, more than half the per-row budget, because it looks
    for aliases and defaults; this sets the same four attributes directly. The tests
    compare its results with model_validate()'s.
    """
    request = _new_request(RegistrationRequest)
    _set(
        request,
        "__dict__",
        {
            "user_id": user_id,
            "meeting_id": meeting_id,
            "join_web_url": join_web_url,
            "allowed_registrant": allowed,
        },
    )
    _set(request, "__pydantic_fields_set__", set(_FIELDS))
    _set(request, "__pydantic_extra__", None)
    _set(request, "__pydantic_private__", None)
    return request


def _clean_id(value: str, max_length: int) -> bool:
    """True when `value` is empty, or an id RegistrationRequest keeps unchanged: the fast
    path's copy of worker.models' rule; what it turns down, the model turns down and says why.

    isprintable() is False for every whitespace and control character but the space.
    """
    return not value or (
        len(value) <= max_length
        and value.isprintable()
        and " " not in value
        and value not in DOT_SEGMENTS
    )


def _invalid(line: int, user_id: str, meeting_id: str, registrant: str, error: str) -> InvalidRow:
    cut = MAX_REPORTED_CHARS
    return InvalidRow(line, user_id[:cut], meeting_id[:cut], registrant[:cut], error)


def _describe(exc: ValidationError) -> str:
    """One short line naming each field that is wrong, without pydantic's framing."""
    problems = []
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        message = error["msg"].removeprefix("Value error, ")
        if field == "allowed_registrant" and error["type"] == "enum":
            message = "allowed_registrant must be everyone or organization"
        elif field and not message.startswith(field):
            message = f"{field}: {message[:1].lower()}{message[1:]}"
        problems.append(_short(message, 200))
    return "; ".join(problems)
