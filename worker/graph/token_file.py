"""The delegated token cache on disk: `meetreg login` writes it, workers read and refresh it.

It holds a refresh token: whoever reads the file can act as the organizer for weeks. So it
is created with mode 0600 (in a folder made 0700), replaced atomically (write a private
temporary file beside it, then rename) so a reader in another worker process never sees
half a file, and refused, with one line, when group or others may read or write it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from worker.errors import ConfigError

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
_OPEN_FOR_WRITE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


class TokenCacheFile:
    """One cache file; `read` and `write` raise ConfigError naming the file and the fix."""

    def __init__(self, path: Path) -> None:
        self.path = path.expanduser()
        self._seen: tuple[int, int, int] | None = None  # (inode, mtime ns, size) last read

    def exists(self) -> bool:
        return self.path.exists()

    def changed(self) -> bool:
        """Whether the file differs from what `read` last returned (another process
        refreshed it, or `meetreg login` ran again)."""
        return self._identity() != self._seen

    def read(self) -> str | None:
        """The file's text, or None when there is none. Refuses a file others may read."""
        try:
            with self.path.open("r", encoding="utf-8") as handle:
                info = os.fstat(handle.fileno())
                self._refuse_if_shared(info.st_mode)
                text = handle.read()
        except FileNotFoundError:
            self._seen = None
            return None
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not text"
            raise ConfigError(f"MEETREG_TOKEN_CACHE: cannot read {self.path} ({reason})") from None
        self._seen = (info.st_ino, info.st_mtime_ns, info.st_size)
        return text

    def write(self, text: str) -> None:
        """Replace the file with `text`, atomically, readable by its owner only."""
        folder = self.path.parent
        temporary = folder / f".{self.path.name}.{secrets.token_hex(6)}.tmp"
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
            # Created 0600 from the first byte: a chmod after writing would leave a window.
            descriptor = os.open(temporary, _OPEN_FOR_WRITE, PRIVATE_FILE_MODE)
            try:
                with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, self.path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    temporary.unlink()
        except OSError as exc:
            raise ConfigError(
                f"MEETREG_TOKEN_CACHE: cannot write {self.path} ({exc.strerror or exc})"
            ) from None
        self._seen = self._identity()

    def _identity(self) -> tuple[int, int, int] | None:
        try:
            info = self.path.stat()
        except OSError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def _refuse_if_shared(self, mode: int) -> None:
        if stat.S_IMODE(mode) & 0o077:
            raise ConfigError(
                f"MEETREG_TOKEN_CACHE: {self.path} has mode {stat.S_IMODE(mode):04o}, so others "
                f"can read its tokens; run `chmod 600 {self.path}` (or delete it and "
                "`meetreg login` again)"
            )
