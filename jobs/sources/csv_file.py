"""Read registration requests from a CSV file, one row at a time.

`read_rows(path)` is a generator: it opens the file on the first `next()` and never
holds more than the current record in memory, so a million-row file costs what a
ten-row file does. It yields a `ValidRow` (a `RegistrationRequest` and its line) or an
`InvalidRow` (the cells as given and one line saying what is wrong) for every data
row, as worker.validation judges it; blank lines are skipped.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

from worker.errors import InputError
from worker.publications import validate_publication
from worker.registrants import DEFAULTS, Defaults, question_id, validate_registrant
from worker.registrants import REQUIRED as REGISTRANT_REQUIRED
from worker.registrants import canonical_field as registrant_field
from worker.validation import (
    FIELDS,
    MAX_REPORTED_CHARS,
    AllowedRegistrant,
    InvalidRow,
    SourceRow,
    canonical_field,
    validate_cells,
)

MEETINGS = "meetings"
WEBINARS = "webinars"
TARGETS = (MEETINGS, WEBINARS)
"""What a file's rows can be: meetings to enable registration on, or webinar registrants."""
PUBLICATIONS = "publications"
"""A file of webinars to publish (`meetreg webinars publish`): one webinar_id a row."""

FIELD_LIMIT_CHARS = 1024 * 1024
"""The largest field accepted; csv's own default (128 KiB) is raised to this once, here."""
MAX_LINE_CHARS = 2 * FIELD_LIMIT_CHARS
"""The longest physical line read: one field at its limit, and room for the others."""

csv.field_size_limit(FIELD_LIMIT_CHARS)

_UNDECODABLE = re.compile("[\udc80-\udcff]")  # what errors="surrogateescape" makes of a bad byte
_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


@dataclass(frozen=True, slots=True)
class CsvSource:
    """A CSV file as the commands read it: what its rows are (`target`, None: its
    header says) and what a row that does not say asks for."""

    path: Path
    target: str | None = None
    allowed_registrant: AllowedRegistrant | None = None
    defaults: Defaults = DEFAULTS

    @property
    def kind(self) -> str:
        """What the rows are: `target`, else what the header says (`file_target`)."""
        return self.target or file_target(self.path)

    def rows(self) -> Iterator[SourceRow]:
        """The file's rows; raises InputError for a file refused whole."""
        return read_rows(
            self.path,
            default_registrant=self.allowed_registrant,
            target=self.kind,
            defaults=self.defaults,
        )

    def check(self) -> None:
        """Read the whole file once: a file refused whole is refused before anything else."""
        for _ in self.rows():
            pass


def read_rows(
    path: Path,
    *,
    default_registrant: AllowedRegistrant | None = None,
    regular_only: bool = False,
    target: str | None = None,
    defaults: Defaults = DEFAULTS,
) -> Iterator[SourceRow]:
    """Stream the data rows of the CSV file at `path`, each as a `ValidRow` or `InvalidRow`.

    Raises `InputError` ("<path>: <problem>") for a file refused whole: missing,
    unreadable, not UTF-8 text, without a usable header or a required column, or with a
    broken quote or an oversized field. It may be raised by any `next()`. With
    `regular_only` (a folder others write to), a symbolic link, FIFO or device is refused
    unread too. A problem is named, never the file's text.

    `target` (`meetings` or `webinars`) says what the rows are; None: the header says
    (`target_of`). A registrant's row without a time zone or language takes `defaults`'.
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
            if target == PUBLICATIONS:
                make = _publication_maker(header, path)
            elif (target or target_of(header)) == WEBINARS:
                make = _registrant_maker(header, path, defaults)
            else:
                make = _meeting_maker(header, path, default_registrant)
            width = len(header)
            end = reader.line_num
            for row in reader:
                line = skipped + end + 1
                end = reader.line_num
                if not any(row):
                    continue
                count = len(row)
                if count > width:
                    if "".join(row).strip():
                        wide = f"row has {count} fields, the header has {width}"
                        yield make([*row[:width], ""], line, wide) or _never()
                    continue
                if count < width:
                    row.extend([""] * (width - count))
                row.append("")  # what an absent column reads
                made = make(row, line, "")
                if made is not None:
                    yield made
        except csv.Error as exc:
            raise InputError(
                f"{path}: {_describe_csv_error(exc, skipped + end + 1, reader.line_num > end + 1)}"
            ) from None


def file_target(path: Path, *, regular_only: bool = False) -> str:
    """What the file at `path` holds, by its header (`target_of`); `meetings` when it has
    no header (read_rows then refuses it, saying why)."""
    with _open_text(path, regular_only=regular_only) as text:
        for line in _checked_lines(text, path):
            if line.strip():
                try:
                    header = next(csv.reader([line], delimiter=_delimiter(line)))
                except csv.Error:
                    return MEETINGS  # a broken header: read_rows says how
                return target_of(header)
    return MEETINGS


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


Maker = Callable[[list[str], int, str], SourceRow | None]
"""One data row's cells (an empty cell appended: what an absent column reads) and line
made into a row, or None for a row blank in all but name. With an error, the row is
invalid for that reason, its values kept as given."""


def target_of(header: list[str]) -> str:
    """What a file's rows are, by its header: `webinars` when it names both a webinar_id
    and an email column, else `meetings`."""
    names = {registrant_field(cell) for cell in header}
    return WEBINARS if {"webinar_id", "email"} <= names else MEETINGS


def _meeting_maker(
    header: list[str], path: Path, default_registrant: AllowedRegistrant | None
) -> Maker:
    columns = _map_header(header, path)
    pick = itemgetter(*(columns.get(name, len(header)) for name in FIELDS))

    def make(row: list[str], line: int, error: str = "") -> SourceRow | None:
        user_id, meeting_id, join_web_url, registrant = pick(row)
        user_id = user_id.strip()
        meeting_id = meeting_id.strip()
        join_web_url = join_web_url.strip()
        registrant = registrant.strip()
        if error:
            return InvalidRow.reported(line, user_id, meeting_id or join_web_url, registrant, error)
        if not (user_id or meeting_id or join_web_url or registrant) and not any(
            cell.strip() for cell in row
        ):
            return None  # only whitespace: a blank line in all but name
        return validate_cells(
            user_id, meeting_id, join_web_url, registrant, line, default_registrant
        )

    return make


def _registrant_maker(header: list[str], path: Path, defaults: Defaults) -> Maker:
    columns: dict[str, int] = {}
    questions: dict[str, int] = {}
    for index, cell in enumerate(header):
        question = question_id(cell)
        name = registrant_field(cell) if question is None else None
        seen = questions if question is not None else columns
        key = question if question is not None else name
        if key is None:
            continue
        if key in seen:
            label = f"question:{key}" if question is not None else key
            raise InputError(
                f"{path}: column {label[:80]} appears twice "
                f"(columns {seen[key] + 1} and {index + 1})"
            )
        seen[key] = index
    for name in REGISTRANT_REQUIRED:
        if name not in columns:
            raise InputError(f"{path}: no {name} column{_header_hint(header, columns)}")

    def make(row: list[str], line: int, error: str = "") -> SourceRow | None:
        fields = {name: row[index] for name, index in columns.items()}
        answers = {question: row[index] for question, index in questions.items()}
        if not any(cell.strip() for cell in row):
            return None
        made = validate_registrant(fields, answers, line, defaults)
        if error:
            cut = MAX_REPORTED_CHARS
            webinar_id, email = fields["webinar_id"].strip(), fields["email"].strip()
            return InvalidRow(line, "", "", "", error, webinar_id[:cut], email[:cut])
        return made

    return make


def _publication_maker(header: list[str], path: Path) -> Maker:
    found = [index for index, cell in enumerate(header) if registrant_field(cell) == "webinar_id"]
    if not found:
        raise InputError(f"{path}: no webinar_id column{_header_hint(header, {})}")
    if len(found) > 1:
        raise InputError(
            f"{path}: column webinar_id appears twice (columns {found[0] + 1} and {found[1] + 1})"
        )
    column = found[0]

    def make(row: list[str], line: int, error: str = "") -> SourceRow | None:
        if not any(cell.strip() for cell in row):
            return None
        webinar_id = row[column].strip()
        if error:
            return InvalidRow(line, "", "", "", error, webinar_id[:MAX_REPORTED_CHARS])
        return validate_publication(webinar_id, line)

    return make


def _never() -> SourceRow:
    raise AssertionError("a row with cells past the header's is never blank")


def _map_header(header: list[str], path: Path) -> dict[str, int]:
    """Canonical field name -> column index; refuses duplicate and missing columns."""
    if not any(cell.strip() for cell in header):
        raise InputError(f"{path}: no header row")
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        name = canonical_field(cell)
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
