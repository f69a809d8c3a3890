"""uvicorn's HTTP protocol with a deadline for each request's line and headers.

uvicorn times nothing between a connection's first byte and its request's last header:
its keep-alive timer is cancelled by any byte, so a client sending one byte a second
holds a connection (and a place under `limit_concurrency`) for as long as it likes. Here
a connection has `header_timeout_s` from its opening, or from its previous response, to
send a whole request line and headers; else it gets 408 and is closed. The body has its
own deadline, kept by the app (jobs.http.app), which reads it.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 34\r\n"
    b"connection: close\r\n\r\n"
    b"the request headers came too late\n"
)


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """HttpToolsProtocol (uvicorn's own choice when httptools is installed, as
    uvicorn[standard] does) that closes a connection whose headers are late."""

    header_timeout_s = 10.0
    _headers_due: asyncio.TimerHandle | None = None
    _awaited_after: object = None  # the cycle before the request being waited for
    _partial = False  # some bytes of the awaited request came

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._headers_due is None:
            return
        if self.cycle is not self._awaited_after:  # httptools read the whole header
            self._stop_waiting()
        else:
            self._partial = True

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_headers()  # the next request on this kept-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self._stop_waiting()
        self._awaited_after = self.cycle
        self._partial = False
        self._headers_due = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _stop_waiting(self) -> None:
        if self._headers_due is not None:
            self._headers_due.cancel()
            self._headers_due = None

    def _headers_late(self) -> None:
        self._headers_due = None
        if self.transport.is_closing():
            return
        if self._partial:  # an idle kept-alive connection is closed without a word
            log.info(
                "closed a connection whose request headers took over %s s", self.header_timeout_s
            )
            self.transport.write(_REQUEST_TIMEOUT)
        self.transport.close()


def with_header_deadline(timeout_s: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class to hand uvicorn (`http=`), with this deadline."""

    class Protocol(HeaderDeadlineProtocol):
        header_timeout_s = timeout_s

    return Protocol
