"""The delegated token cache on disk: `meetreg login` writes it, workers read and refresh it.

It holds a refresh token: whoever reads the file can act as the organizer for weeks. So it
is created with mode 0600 (in a folder made 0700), replaced atomically (write a private
temporary file beside it, then rename) so a reader in another worker process never sees
half a file, and refused, with one line, when group or others may read or write it, when
it is a symbolic link, or when it or its folder belongs to another user. A folder others
may write to is refused too: whoever can write there can swap the file for their own.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

from worker.errors import ConfigError

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)
_OPEN_FOR_WRITE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW
# O_NONBLOCK: a FIFO in the file's place is refused by fstat rather than waited on.
_OPEN_FOR_READ = os.O_RDONLY | _NO_FOLLOW | getattr(os, "O_NONBLOCK", 0)


class TokenCacheFile:
    """One cache file; `read` and `write` raise ConfigError naming the file and the fix."""

    def __init__(self, path: Path, *, owner_uid: int | None = None) -> None:
        self.path = path.expanduser()
        # Whose file and folder these must be: this process's user.
        self.owner_uid = os.geteuid() if owner_uid is None else owner_uid
        self._seen: tuple[int, int, int] | None = None  # (inode, mtime ns, size) last read

    def exists(self) -> bool:
        return self.path.exists()

    def changed(self) -> bool:
        """Whether the file differs from what `read` last returned (another process
        refreshed it, or `meetreg login` ran again)."""
        return self._identity() != self._seen

    def read(self) -> str | None:
        """The file's text, or None when there is none. Refuses a file others may read or
        write, a symbolic link, and a file or folder of another user."""
        try:
            self._check_folder()
            descriptor = os.open(self.path, _OPEN_FOR_READ)
        except FileNotFoundError:
            self._seen = None
            return None
        except OSError as exc:
            raise self._unusable("read", exc) from None
        try:
            with os.fdopen(descriptor, "r", encoding="utf-8") as handle:
                info = os.fstat(handle.fileno())
                self._check_file(info)
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise self._unusable("read", exc) from None
        self._seen = (info.st_ino, info.st_mtime_ns, info.st_size)
        return text

    def write(self, text: str) -> None:
        """Replace the file with `text`, atomically, readable by its owner only."""
        folder = self.path.parent
        temporary = folder / f".{self.path.name}.{secrets.token_hex(6)}.tmp"
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
            self._check_folder()
            with contextlib.suppress(FileNotFoundError):
                self._check_file(os.lstat(self.path))
            # Created 0600 from the first byte: a chmod after writing would leave a window.
            descriptor = os.open(temporary, _OPEN_FOR_WRITE, PRIVATE_FILE_MODE)
            try:
                with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
                # A rename replaces whatever has the name (a link too); it never writes
                # through it.
                os.replace(temporary, self.path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    temporary.unlink()
        except OSError as exc:
            raise self._unusable("write", exc) from None
        self._seen = self._identity()

    def _identity(self) -> tuple[int, int, int] | None:
        try:
            info = self.path.stat()
        except OSError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def _check_folder(self) -> None:
        """Raises ConfigError for a folder of another user or one others may write to;
        FileNotFoundError when there is none."""
        folder = self.path.parent
        info = folder.stat()  # a link to the folder is the operator's own choice
        self._check_owner(folder, info.st_uid)
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o022:
            raise ConfigError(
                f"MEETREG_TOKEN_CACHE: the folder {folder} is writable by group or others "
                f"(mode {mode:04o}), so they could swap the cache for their own; "
                f"run `chmod 700 {folder}`"
            )

    def _check_file(self, info: os.stat_result) -> None:
        if stat.S_ISLNK(info.st_mode):
            raise self._link_refusal()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"MEETREG_TOKEN_CACHE: {self.path} is not a regular file")
        self._check_owner(self.path, info.st_uid)
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"MEETREG_TOKEN_CACHE: {self.path} has mode {mode:04o}, so others "
                f"can read its tokens; run `chmod 600 {self.path}` (or delete it and "
                "`meetreg login` again)"
            )

    def _check_owner(self, path: Path, uid: int) -> None:
        if uid != self.owner_uid:
            raise ConfigError(
                f"MEETREG_TOKEN_CACHE: {path} belongs to uid {uid}, not to this user "
                f"({self.owner_uid}); use a file and folder of the user meetreg runs as"
            )

    def _unusable(self, action: str, exc: OSError | UnicodeDecodeError) -> ConfigError:
        if isinstance(exc, OSError) and exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link
            return self._link_refusal()
        reason = getattr(exc, "strerror", None) or "not text"
        return ConfigError(f"MEETREG_TOKEN_CACHE: cannot {action} {self.path} ({reason})")

    def _link_refusal(self) -> ConfigError:
        return ConfigError(
            f"MEETREG_TOKEN_CACHE: {self.path} is a symbolic link; meetreg uses only a file "
            "of its own there: delete the link and `meetreg login` again"
        )
