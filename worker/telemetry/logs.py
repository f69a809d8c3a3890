"""Logging for every meetreg process: JSON lines for machines, text for people, no secrets.

`configure_logging(settings)` is called once per process: by `celery -A worker.app worker`
and `beat` (Celery's `setup_logging` signal, so Celery leaves logging to us), by
`meetreg serve`, and by the other commands.

- MEETREG_LOG_FORMAT: `json`, `text`, or `auto` (JSON lines when stderr is not a
  terminal: a container, systemd, a pipe; text on a terminal).
- MEETREG_LOG_LEVEL: the root level (services default to INFO, one-shot commands to
  WARNING so their progress bar stays readable).

A JSON line holds `ts` (ISO-8601 UTC), `level`, `logger`, `message`, the row's context
when there is one (`batch_id`, `line`, `meeting_id`, `user_id`, `request_id`: Graph's
`request-id`, `status`: Graph's HTTP status, `outcome`: the row's state), and
`exception`. The context comes from `row_context`, which the register protocol enters for
each row, or from `extra=` on the call. `Redact` runs last, on every record of
every logger: bearer tokens, JWTs, Authorization values, the value after any name that
ends like a secret's (`client_secret=`, `AZURE_CLIENT_SECRET=`, `"clientSecret":`,
`X-Api-Key:`) and the process's own secrets become `[redacted]` in the message, its
arguments and the exception text.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from worker.settings import Settings

# `status`: Graph's HTTP status; `outcome`: the row's state (worker.models.RowState).
CONTEXT_FIELDS = (
    "batch_id",
    "line",
    "meeting_id",
    "user_id",
    "request_id",
    "status",
    "outcome",
)
REDACTED = "[redacted]"
# Libraries that log every HTTP request at INFO (URLs, not secrets, but 100,000 of them):
# heard at DEBUG only.
CHATTY_LOGGERS = ("httpx", "httpcore", "msal", "urllib3", "hpack")
# A known secret shorter than this is not searched for: it would blank out ordinary words.
MIN_KNOWN_SECRET = 8

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "meetreg_log_context", default=None
)

# How the names of secrets end. A name is matched whole, whatever comes before that ending
# (`AZURE_CLIENT_SECRET`, `clientSecret`, `X-Api-Key`): `\b` would never match after `_`.
# `MEETREG_TOKEN_CACHE`, which names a path, does not end so.
_SENSITIVE_ENDINGS = (
    r"secret|password|passwd|passphrase|token|api[_-]?key|secret[_-]?key|private[_-]?key"
    r"|access[_-]?key|assertion|client[_-]?state|authorization"
)
# name, separator, then a quoted value, an auth scheme and its credentials, or a bare word.
_NAMED_SECRET = re.compile(
    rf"""(?ix)
    (?P<name>(?<![\w.-])["']?[\w.-]*?(?:{_SENSITIVE_ENDINGS})["']?\s*[:=]\s*)
    (?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|(?:bearer|basic)\s+[^\s"',;&}}]+|[^\s"',;&}}]+)
    """
)
# Words one of those names contains: a line with none of them (most lines) skips the
# regular expressions, which cost more than the rest of a log line together.
_NAME_HINTS = ("secret", "pass", "token", "key", "assertion", "state", "authorization")
_BEARER = re.compile(r"(?i)\bbearer\s+(?!\[redacted\])[A-Za-z0-9\-._~+/]+=*")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){0,2}")


def redact(text: str, known: Iterable[str] = ()) -> str:
    """`text` with whatever looks like a credential replaced by `[redacted]`."""
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    lowered = text.lower()
    if any(hint in lowered for hint in _NAME_HINTS):
        text = _NAMED_SECRET.sub(_keep_name, text)
    if "bearer" in lowered:
        text = _BEARER.sub(f"Bearer {REDACTED}", text)
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    return text


def _keep_name(match: re.Match[str]) -> str:
    value = match.group("value")
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group('name')}{quote}{REDACTED}{quote}"


@contextlib.contextmanager
def row_context(**fields: Any) -> Iterator[None]:
    """Within the block, every log line of this thread carries `fields` (and what
    `add_context` adds)."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def add_context(**fields: Any) -> None:
    """Add to (or change) the fields of the enclosing `row_context`; outside one, nothing."""
    current = _context.get()
    if current is not None:
        current.update(fields)


class ContextFilter(logging.Filter):
    """Copy the row's context onto each record; `extra=` on the call wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_context.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class Redact(logging.Filter):
    """The last line of defence: the message (its arguments merged in) and the exception
    text are redacted before any formatter sees them."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        super().__init__()
        self.known = [secret for secret in known if len(secret) >= MIN_KNOWN_SECRET]
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: log it raw rather than lose the line
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message, self.known), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.known)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.known)
        # The context fields are ids and statuses meetreg sets itself: not searched.
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; fields absent from a record are left out."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value not in (None, ""):
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """A person's line: time, level, logger, message, then the row's context as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        context = [
            f"{name}={value}"
            for name in CONTEXT_FIELDS
            if (value := getattr(record, name, None)) not in (None, "")
        ]
        return f"{text} [{' '.join(context)}]" if context else text


def wants_json(log_format: str, stream: TextIO) -> bool:
    if log_format == "auto":
        isatty = getattr(stream, "isatty", None)
        return not (isatty is not None and isatty())
    return log_format == "json"


def known_secrets(settings: Settings) -> list[str]:
    """The secrets this process holds, to be searched for literally in every line."""
    return [
        secret.get_secret_value()
        for secret in (
            settings.client_secret,
            settings.client_certificate_password,
            settings.api_key,
            settings.webhook_client_state,
        )
        if secret is not None
    ]


def configure_logging(
    settings: Settings, *, default_level: str = "INFO", stream: TextIO | None = None
) -> None:
    """Send every logger's records to `stream` (stderr), formatted per MEETREG_LOG_FORMAT,
    at MEETREG_LOG_LEVEL (else `default_level`). Replaces the root's handlers: calling it
    again reconfigures rather than duplicates."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.addFilter(Redact(known_secrets(settings)))
    handler.setFormatter(
        JsonFormatter() if wants_json(settings.log_format, stream) else TextFormatter()
    )
    level = logging.getLevelName(settings.log_level or default_level)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet = logging.DEBUG if level <= logging.DEBUG else logging.WARNING
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    # Python's warnings (a library's deprecation notice) as records too: in JSON mode,
    # every line on stderr must parse.
    logging.captureWarnings(True)
