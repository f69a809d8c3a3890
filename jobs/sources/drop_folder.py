"""The drop folder: CSV files left for the nightly job, and where each one goes.

    MEETREG_DROP_DIR/
      meetings.csv                       waiting for the next nightly run
      processed/meetings.csv             enqueued, as batch meetings-20261128
      rejected/broken.csv                refused whole: nothing of it was enqueued
      rejected/broken.csv.error.txt      why, in one line

Taken: `*.csv` files (any case) directly in the folder, in name order. Left for a later
run: hidden files, files changed within the last SETTLE_S seconds (still being written),
and every file when Redis fails. A file's batch id is its name and the run's date
(`batch_id_for`), with `-2`, `-3`... when that batch exists already; a file never
overwrites another in processed/ or rejected/, it takes a suffix too.

Whoever may write into the folder is not trusted with anything else: only regular files
are taken (a symbolic link, FIFO or device is left, and logged by name), and read with
O_NOFOLLOW; every name made in processed/ and rejected/ is created with
O_CREAT|O_EXCL|O_NOFOLLOW, so nothing is written through a planted link or over another
file; a processed/ or rejected/ that is not a folder of its own stops the run before any
file is taken. A reason names the problem, never the file's text.

Callers hold the nightly run lock (jobs.nightly.job): no one else moves files meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from itertools import count
from pathlib import Path
from typing import TextIO

from jobs.enqueue import PublishMany, enqueue_file
from worker.errors import ConfigError, InputError, StoreError
from worker.settings import DEFAULT_CHUNK_SIZE
from worker.store.outcome_store import OutcomeStore

log = logging.getLogger(__name__)

# A file changed this recently may still be being written (a copy, an upload). A writer
# that pauses longer should write under a hidden or non-.csv name and rename at the end.
SETTLE_S = 10.0
PROCESSED = "processed"
REJECTED = "rejected"
ERROR_SUFFIX = ".error.txt"
# Leaves room in a batch id (128 characters) for the date and a suffix.
MAX_STEM_CHARS = 100
# A moved file's name is held by an empty file of ours until the rename replaces it.
PLACEHOLDER_MODE = 0o600
REASON_MODE = 0o666  # as any file the service writes: the umask decides
_CREATE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_NOT_ID_CHARS = re.compile(r"[^a-z0-9._-]+")
_DASHES = re.compile(r"-{2,}")


class FileResult(StrEnum):
    """What became of one file."""

    ENQUEUED = "enqueued"  # a batch was made of it; the file is in processed/
    REJECTED = "rejected"  # refused whole, nothing enqueued; it is in rejected/
    LEFT = "left"  # not taken: Redis failed; it waits in the drop folder


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """One file of a nightly run. `moved_to` is relative to the drop folder; `error` says
    why a file was refused or left, or that it could not be moved."""

    name: str
    result: FileResult
    batch_id: str = ""
    rows: int = 0
    moved_to: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.result is FileResult.ENQUEUED and not self.error

    def to_json_dict(self) -> dict[str, str | int]:
        return {
            "name": self.name,
            "result": str(self.result),
            "batch_id": self.batch_id,
            "rows": self.rows,
            "moved_to": self.moved_to,
            "error": self.error,
        }


def is_candidate(name: str) -> bool:
    """A name the nightly job takes: `*.csv` in any case, not hidden."""
    return not name.startswith(".") and name.lower().endswith(".csv") and len(name) > 4


def is_settled(modified_s: float, now_s: float, settle_s: float = SETTLE_S) -> bool:
    """True when a file last changed at `modified_s` is done being written at `now_s`."""
    return now_s - modified_s >= settle_s


def batch_id_for(file_name: str, day: date) -> str:
    """The batch id of a dropped file: its name without `.csv`, reduced to the characters
    a batch id allows (accents dropped, others as `-`, lower case), and the day:
    `Réunions Q4.csv` on 28 November 2026 is `reunions-q4-20261128`."""
    stem = file_name[:-4] if file_name.lower().endswith(".csv") else file_name
    plain = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode().lower()
    clean = _DASHES.sub("-", _NOT_ID_CHARS.sub("-", plain))
    # A batch id starts with a letter or digit; a cut must not leave a dangling separator.
    clean = clean.strip("-._")[:MAX_STEM_CHARS].rstrip("-._") or "batch"
    return f"{clean}-{day:%Y%m%d}"


def numbered(base: str) -> Iterator[str]:
    """`base`, then `base-2`, `base-3`, ...: the names to try until one is free."""
    yield base
    for n in count(2):
        yield f"{base}-{n}"


def free_batch_id(base: str, taken: Callable[[str], bool]) -> str:
    return next(candidate for candidate in numbered(base) if not taken(candidate))


def file_names(name: str) -> Iterator[str]:
    """`name`, then `stem-2.ext`, `stem-3.ext`, ...: the names a moved file tries in turn."""
    stem, dot, ext = name.rpartition(".")
    if not stem:  # no extension
        stem, dot, ext = name, "", ""
    return (f"{candidate}{dot}{ext}" for candidate in numbered(stem))


def check_folder(folder: Path) -> None:
    """Raises ConfigError unless the drop folder is a folder, and its processed/ and
    rejected/ (when there) are folders of their own, not links that could send the files,
    or their reasons, anywhere."""
    if not folder.is_dir():
        raise ConfigError(f"MEETREG_DROP_DIR: {folder} is not a folder")
    for name in (PROCESSED, REJECTED):
        try:
            mode = (folder / name).lstat().st_mode
        except FileNotFoundError:
            continue  # made when a file first goes there
        except OSError as exc:
            raise ConfigError(
                f"MEETREG_DROP_DIR: cannot look at {name}/ in {folder} ({exc.strerror or exc})"
            ) from None
        if not stat.S_ISDIR(mode):
            kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a folder"
            raise ConfigError(
                f"MEETREG_DROP_DIR: {name}/ in {folder} is {kind}; no file was taken: "
                f"make {name}/ a folder of its own"
            )


def ready_files(folder: Path, now_s: float) -> list[Path]:
    """The files a run takes now, in name order. Raises ConfigError when the folder
    cannot be read."""
    try:
        entries = sorted(folder.iterdir(), key=lambda path: path.name)
    except OSError as exc:
        raise ConfigError(
            f"MEETREG_DROP_DIR: cannot read {folder} ({exc.strerror or exc})"
        ) from None
    ready = []
    for entry in entries:
        if not is_candidate(entry.name):
            continue
        try:
            info = entry.lstat()  # the entry itself: a link is not what it points to
        except OSError:  # gone since the listing
            continue
        if stat.S_ISDIR(info.st_mode):
            continue  # a subfolder: left alone
        if not stat.S_ISREG(info.st_mode):
            kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
            log.warning("drop folder: %s is %s; not taken, left where it is", entry.name, kind)
            continue
        if is_settled(info.st_mtime, now_s):
            ready.append(entry)
    return ready


def take_folder(
    folder: Path,
    *,
    store: OutcomeStore,
    publish: PublishMany,
    day: date,
    now_s: float,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> list[FileOutcome]:
    """Make a batch of every ready file and move it away. Raises ConfigError when
    `folder` is not a folder, or processed/ or rejected/ is not one (no file is taken
    then). When Redis fails, that file and the ones after it stay."""
    check_folder(folder)
    outcomes: list[FileOutcome] = []
    for path in ready_files(folder, now_s):
        outcome = take_file(path, store=store, publish=publish, day=day, chunk_size=chunk_size)
        outcomes.append(outcome)
        if outcome.result is FileResult.LEFT:
            break  # Redis is failing: the next files would meet the same
    return outcomes


def take_file(
    path: Path,
    *,
    store: OutcomeStore,
    publish: PublishMany,
    day: date,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> FileOutcome:
    """Enqueue one file as a new batch and move it to processed/, or to rejected/ with
    the reason beside it."""
    name = path.name
    try:
        batch_id = free_batch_id(batch_id_for(name, day), store.batch_exists)
        done = enqueue_file(
            path,
            store=store,
            publish=publish,
            batch_id=batch_id,
            chunk_size=chunk_size,
            regular_only=True,
        )
    except InputError as exc:
        reason = str(exc).replace(str(path), name, 1)
        moved_to, error = _reject(path, reason)
        return FileOutcome(name, FileResult.REJECTED, moved_to=moved_to, error=error or reason)
    except StoreError as exc:
        return FileOutcome(name, FileResult.LEFT, error=str(exc))
    moved_to, error = _move(path, PROCESSED)
    return FileOutcome(
        name,
        FileResult.ENQUEUED,
        batch_id=done.batch_id,
        rows=done.total,
        moved_to=moved_to,
        error=error,
    )


def _reject(path: Path, reason: str) -> tuple[str, str]:
    """Move a refused file to rejected/ and write its reason beside it."""
    moved_to, error = _move(path, REJECTED, reason=reason)
    return moved_to, f"{reason}; {error}" if error else ""


def _move(path: Path, folder_name: str, *, reason: str = "") -> tuple[str, str]:
    """Rename `path` into the subfolder under a name nothing there has, with `reason` in
    NAME.error.txt beside it when given. Returns (where, relative to the drop folder; ''
    if it stayed) and ('' or why it could not be moved, or its reason not written)."""
    try:
        folder = _open_subfolder(path.parent / folder_name)
    except OSError as exc:
        return "", _not_moved(path, folder_name, exc)
    try:
        return _move_into(folder, folder_name, path, reason)
    finally:
        os.close(folder)


def _move_into(folder: int, folder_name: str, path: Path, reason: str) -> tuple[str, str]:
    try:
        name, reason_file = _reserve(folder, path.name, with_reason=bool(reason))
    except OSError as exc:
        return "", _not_moved(path, folder_name, exc)
    with reason_file or contextlib.nullcontext():
        try:
            # Over our own empty file: a rename follows no link, at either end.
            os.rename(path, name, dst_dir_fd=folder)
        except OSError as exc:
            reserved = [name, f"{name}{ERROR_SUFFIX}"] if reason_file else [name]
            for made in reserved:  # give back the names taken for it
                with contextlib.suppress(OSError):
                    os.unlink(made, dir_fd=folder)
            return "", _not_moved(path, folder_name, exc)
        if reason_file is not None:
            try:
                reason_file.write(reason + "\n")
                reason_file.flush()
            except OSError as exc:
                return f"{folder_name}/{name}", f"could not write its reason: {exc.strerror or exc}"
    return f"{folder_name}/{name}", ""


def _not_moved(path: Path, folder_name: str, exc: OSError) -> str:
    log.error("could not move %s to %s/: %s", path.name, folder_name, exc)
    return f"could not move it to {folder_name}/: {exc.strerror or exc}"


def _open_subfolder(path: Path) -> int:
    """A descriptor of processed/ or rejected/, made if absent. A link in its place is
    refused (ELOOP), never followed."""
    with contextlib.suppress(FileExistsError):
        path.mkdir()
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _reserve(folder: int, name: str, *, with_reason: bool) -> tuple[str, TextIO | None]:
    """Create, empty, the first name of `name`'s series (`file_names`) that nothing in
    `folder` has, and with `with_reason` its NAME.error.txt too, returned open for writing.
    A planted link counts as taken, like any other file: it is neither followed nor
    replaced."""
    for candidate in file_names(name):
        placeholder = _create_new(folder, candidate, PLACEHOLDER_MODE)
        if placeholder is None:
            continue
        os.close(placeholder)
        if not with_reason:
            return candidate, None
        reason = _create_new(folder, f"{candidate}{ERROR_SUFFIX}", REASON_MODE)
        if reason is not None:
            return candidate, os.fdopen(reason, "w", encoding="utf-8")
        os.unlink(candidate, dir_fd=folder)
    raise AssertionError("file_names never ends")


def _create_new(folder: int, name: str, mode: int) -> int | None:
    """A descriptor of a new, empty file `name` in `folder`; None when the name exists
    (whatever it is: a dangling link too)."""
    try:
        return os.open(name, _CREATE_NEW, mode, dir_fd=folder)
    except FileExistsError:
        return None
