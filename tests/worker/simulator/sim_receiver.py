"""A webhook for the simulator to call: `http.server` in a thread on a free loopback port.

It answers Graph's validation handshake the way `handshake` says (correctly by default)
and every other POST after `delay_s` with the next of `statuses`, or `status` once those
are used up, and keeps what it was sent.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# How a receiver answers the handshake: echo (right), or one of the ways to get it wrong.
HANDSHAKES = ("echo", "wrong_body", "json_type", "status_500")


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def validation_token(self) -> str | None:
        tokens = self.query.get("validationToken")
        return tokens[0] if tokens else None

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A running webhook; `url` is its root (`http://127.0.0.1:PORT`)."""

    def __init__(self) -> None:
        self.handshake = "echo"
        self.status = 202
        self.statuses: deque[int] = deque()
        self.delay_s = 0.0
        self.before_handshake: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._received: list[Received] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # A short poll: shutdown() waits up to one poll, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def notifications(self) -> list[Received]:
        """The POSTs that were not handshakes."""
        return [r for r in self.received if r.validation_token is None]

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        got = Received(
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            {k.lower(): v for k, v in request.headers.items()},
            request.rfile.read(length),
        )
        with self._lock:
            self._received.append(got)
        token = got.validation_token
        if token is None:
            time.sleep(self.delay_s)
            with self._lock:
                status = self.statuses.popleft() if self.statuses else self.status
            self._answer(request, status, b"", "text/plain")
            return
        if self.before_handshake is not None:
            self.before_handshake()
        body, media_type, status = token.encode(), "text/plain; charset=utf-8", 200
        if self.handshake == "wrong_body":
            body = b"OK"
        elif self.handshake == "json_type":
            media_type = "application/json"
        elif self.handshake == "status_500":
            status = 500
        self._answer(request, status, body, media_type)

    @staticmethod
    def _answer(request: BaseHTTPRequestHandler, status: int, body: bytes, media_type: str) -> None:
        request.send_response(status)
        request.send_header("Content-Type", media_type)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
