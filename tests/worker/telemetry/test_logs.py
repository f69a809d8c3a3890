"""worker.telemetry.logs: JSON lines with the row's context, text for a terminal, and nothing that
looks like a credential in either."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest

from worker.settings import load_settings
from worker.telemetry.logs import CHATTY_LOGGERS, REDACTED, configure_logging, redact, row_context

JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwczovL2dyYXBoIn0.c2lnbmF0dXJl"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., io.StringIO]]:
    """`logged(**env)`: configure logging as a meetreg process would with these variables,
    into a buffer; the test process's logging is put back afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    chatty = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}

    def configure(stream: io.StringIO | None = None, **env: str) -> io.StringIO:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        buffer = stream if stream is not None else io.StringIO()
        configure_logging(load_settings(), stream=buffer)
        return buffer

    yield configure
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, level in chatty.items():
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(False)


def lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Authorization: Bearer {JWT}", f"Authorization: {REDACTED}"),
        ("{'Authorization': 'Bearer abc123'}", f"{{'Authorization': '{REDACTED}'}}"),
        ('{"authorization": "Basic dXNlcjpwYXNz"}', f'{{"authorization": "{REDACTED}"}}'),
        ("client_secret=s3cr3t~value&scope=x", f"client_secret={REDACTED}&scope=x"),
        (f"client_assertion={JWT}&grant_type=x", f"client_assertion={REDACTED}&grant_type=x"),
        ('{"password": "hunter2"}', f'{{"password": "{REDACTED}"}}'),
        (
            "refresh_token=abc; access_token: xyz",
            f"refresh_token={REDACTED}; access_token: {REDACTED}",
        ),
        (f"got {JWT} back", f"got {REDACTED} back"),
        ("sent bearer abc.def-ghi", f"sent Bearer {REDACTED}"),
        # Ordinary words stay: the name alone, without a value, is not a secret.
        ("the certificate password is wrong", "the certificate password is wrong"),
        ("POST /users/u/onlineMeetings/m/registration 201", None),
    ],
)
def test_what_looks_like_a_credential_is_redacted(text: str, expected: str | None) -> None:
    assert redact(text) == (text if expected is None else expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Environment style: the sensitive word after `_`, where `\b` never matches.
        ("AZURE_CLIENT_SECRET=s3cr3t-v4lue", f"AZURE_CLIENT_SECRET={REDACTED}"),
        ("MEETREG_API_KEY=k3y-0123456789", f"MEETREG_API_KEY={REDACTED}"),
        ("export AZURE_CLIENT_SECRET='s3cr3t v4lue'", f"export AZURE_CLIENT_SECRET='{REDACTED}'"),
        (
            "AZURE_CLIENT_CERTIFICATE_PASSWORD=pfx-pass MEETREG_WEBHOOK_CLIENT_STATE=st4te",
            f"AZURE_CLIENT_CERTIFICATE_PASSWORD={REDACTED} MEETREG_WEBHOOK_CLIENT_STATE={REDACTED}",
        ),
        ("REDIS_PASSWORD=r3dis", f"REDIS_PASSWORD={REDACTED}"),
        # camelCase and other spellings of the same names.
        ("clientSecret=s3cr3t", f"clientSecret={REDACTED}"),
        ("clientSecret: s3cr3t", f"clientSecret: {REDACTED}"),
        ("apiKey=k3y", f"apiKey={REDACTED}"),
        ("refreshToken=r3fresh", f"refreshToken={REDACTED}"),
        ("client-secret=s3cr3t", f"client-secret={REDACTED}"),
        # JSON and Python reprs.
        ('{"secret": "s3cr3t"}', f'{{"secret": "{REDACTED}"}}'),
        ('{"client_secret": "s3cr3t", "x": 1}', f'{{"client_secret": "{REDACTED}", "x": 1}}'),
        ('{"clientSecret":"s3cr3t"}', f'{{"clientSecret":"{REDACTED}"}}'),
        ("{'api_key': 'k3y'}", f"{{'api_key': '{REDACTED}'}}"),
        ('{"clientState": "st4te"}', f'{{"clientState": "{REDACTED}"}}'),
        # Query strings and form bodies.
        ("password=hunter2", f"password={REDACTED}"),
        ("?user=a&password=hunter2&x=1", f"?user=a&password={REDACTED}&x=1"),
        ("grant_type=x&client_secret=s3cr3t", f"grant_type=x&client_secret={REDACTED}"),
        # Headers.
        ("Authorization: Bearer abc.def", f"Authorization: {REDACTED}"),
        ("authorization=Basic dXNlcjpwYXNz", f"authorization={REDACTED}"),
        ("X-Api-Key: k3y-0123", f"X-Api-Key: {REDACTED}"),
        # Names without a value stay as they are.
        ("set AZURE_CLIENT_SECRET or a certificate", None),
        ("MEETREG_API_KEY is not set on this server", None),
        ("MEETREG_TOKEN_CACHE: cannot read /home/svc/cache.json", None),  # a path, not a secret
    ],
)
def test_every_spelling_of_a_secret_name_is_redacted(text: str, expected: str | None) -> None:
    assert redact(text) == (text if expected is None else expected)


def test_a_json_line_has_the_fields_and_the_row_context(
    logged: Callable[..., io.StringIO],
) -> None:
    buffer = logged(MEETREG_LOG_FORMAT="json")
    log = logging.getLogger("worker.protocol.row")
    with row_context(batch_id="b1", line=7, meeting_id="m-7", user_id="u"):
        log.info("row %s", "created", extra={"request_id": "req-1", "status": 201})
    log.warning("outside any row")
    inside, outside = lines(buffer)
    assert inside["ts"].endswith("Z") and "T" in inside["ts"]
    assert {k: inside[k] for k in ("level", "logger", "message")} == {
        "level": "INFO",
        "logger": "worker.protocol.row",
        "message": "row created",
    }
    assert (inside["batch_id"], inside["line"], inside["meeting_id"]) == ("b1", 7, "m-7")
    assert (inside["request_id"], inside["status"]) == ("req-1", 201)
    assert "batch_id" not in outside and outside["message"] == "outside any row"


def test_a_token_in_the_arguments_or_the_exception_is_redacted(
    logged: Callable[..., io.StringIO],
) -> None:
    buffer = logged(MEETREG_LOG_FORMAT="json")
    log = logging.getLogger("somewhere")
    log.error("sent headers %s", {"Authorization": f"Bearer {JWT}"})
    try:
        raise ValueError(f"login said: client_secret=abc123456 refresh_token={JWT}")
    except ValueError:
        log.exception("sign-in failed")
    text = buffer.getvalue()
    assert JWT not in text and "abc123456" not in text
    first, second = lines(buffer)
    assert REDACTED in first["message"]
    assert "ValueError" in second["exception"] and REDACTED in second["exception"]


def test_the_processes_own_secrets_are_redacted_wherever_they_appear(
    logged: Callable[..., io.StringIO],
) -> None:
    secret = "plain-words-secret-0123"  # no pattern would know it for a secret
    buffer = logged(MEETREG_LOG_FORMAT="json", AZURE_CLIENT_SECRET=secret)
    logging.getLogger("x").warning("an echo of %s from somewhere", secret)
    assert secret not in buffer.getvalue()
    assert lines(buffer)[0]["message"] == f"an echo of {REDACTED} from somewhere"


def test_auto_is_text_on_a_terminal_and_json_elsewhere(
    logged: Callable[..., io.StringIO],
) -> None:
    terminal = logged(Terminal())
    with row_context(batch_id="b1", line=3):
        logging.getLogger("t").warning("hello")
    assert terminal.getvalue().rstrip().endswith("WARNING t: hello [batch_id=b1 line=3]")
    piped = logged()
    logging.getLogger("t").warning("hello")
    assert lines(piped)[0]["message"] == "hello"


def test_the_level_is_meetreg_log_level_and_configuring_again_does_not_duplicate(
    logged: Callable[..., io.StringIO],
) -> None:
    logged(MEETREG_LOG_FORMAT="json")
    buffer = logged(MEETREG_LOG_FORMAT="json", MEETREG_LOG_LEVEL="warning")
    log = logging.getLogger("t")
    log.info("not shown")
    log.warning("shown")
    logging.getLogger("httpx").warning("a library's warning")
    assert [line["message"] for line in lines(buffer)] == ["shown", "a library's warning"]


def test_a_bad_log_setting_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from worker.errors import ConfigError

    monkeypatch.setenv("MEETREG_LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigError, match="MEETREG_LOG_LEVEL"):
        load_settings()
    monkeypatch.setenv("MEETREG_LOG_LEVEL", "debug")
    monkeypatch.setenv("MEETREG_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="MEETREG_LOG_FORMAT"):
        load_settings()
