"""`meetreg serve` against slow clients: headers and bodies that trickle in are cut off
(408, the connection closed), idle connections close, past the connection cap new
requests are refused at once, and meanwhile /healthz and Graph's handshake answer.

Every connection is to 127.0.0.1, bounded in number and time, and closed at the end."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import wait_until
from serve_helpers import Served

HEADER_TIMEOUT_S = 2
BODY_TIMEOUT_S = 2
KEEP_ALIVE_S = 1
TRICKLERS = 100


@pytest.fixture(scope="module")
def slow_served(
    serve_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    env = {
        **serve_env,
        "MEETREG_SERVE_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "MEETREG_SERVE_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "MEETREG_SERVE_KEEP_ALIVE_S": str(KEEP_ALIVE_S),
        "MEETREG_SERVE_MAX_CONNECTIONS": str(TRICKLERS + 20),
    }
    running = Served(env, Path(tmp_path_factory.mktemp("slow-serve")))
    yield running
    running.close()


@contextlib.contextmanager
def connections(served: Served, count: int) -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            opened.append(socket.create_connection(("127.0.0.1", served.port), timeout=5))
        yield opened
    finally:
        for conn in opened:
            conn.close()


def closed_by_server(conn: socket.socket, received: bytearray) -> bool:
    """Whether the server closed the connection; what it sent is added to `received`."""
    conn.setblocking(False)
    try:
        while part := conn.recv(4096):
            received += part
    except BlockingIOError:
        return False  # nothing more yet, and not closed
    except ConnectionResetError:
        pass
    return True


def trickle_until_closed(conns: list[socket.socket], deadline_s: float) -> dict[int, bytes]:
    """Send one more header byte on each open connection every 0.2 s, until the server
    closes them all or `deadline_s` passes; what each closed one got before closing."""
    closed: dict[int, bytes] = {}
    received = [bytearray() for _ in conns]
    deadline = time.monotonic() + deadline_s
    while len(closed) < len(conns) and time.monotonic() < deadline:
        for index, conn in enumerate(conns):
            if index in closed:
                continue
            if closed_by_server(conn, received[index]):
                closed[index] = bytes(received[index])
                continue
            with contextlib.suppress(OSError):  # closed between the check and the send
                conn.send(b"x")
        time.sleep(0.2)
    return closed


def test_trickling_headers_are_cut_off_and_health_answers_meanwhile(slow_served: Served) -> None:
    with connections(slow_served, TRICKLERS) as conns:
        for conn in conns:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        # While they trickle, the health check and Graph's handshake answer at once.
        started = time.monotonic()
        assert slow_served.http.get("/healthz", timeout=2).status_code in (200, 503)
        token = slow_served.http.post("/graph/notifications?validationToken=t", timeout=2)
        assert token.text == "t"
        assert time.monotonic() - started < 2

        closed = trickle_until_closed(conns, deadline_s=HEADER_TIMEOUT_S + 8)
        assert len(closed) == TRICKLERS, f"{TRICKLERS - len(closed)} trickling connections open"
        assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in closed.values())
    assert slow_served.http.get("/healthz").status_code in (200, 503)


def test_a_body_that_does_not_arrive_is_408_and_the_connection_closed(
    slow_served: Served,
) -> None:
    for path in ("/graph/notifications", "/api/registrations"):
        with connections(slow_served, 1) as (conn,):
            head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n"
            conn.sendall(f"{head}Content-Type: application/json\r\n".encode())
            conn.sendall(b"Authorization: Bearer api-key-for-tests-0123456789abcdef\r\n\r\n")
            conn.sendall(b'{"value": [')
            started = time.monotonic()
            closed = trickle_until_closed([conn], deadline_s=BODY_TIMEOUT_S + 8)
            assert 0 in closed, f"{path}: a stalled body kept its connection open"
            assert closed[0].startswith(b"HTTP/1.1 408 "), closed[0][:80]
            assert b"did not arrive within" in closed[0]
            assert time.monotonic() - started < BODY_TIMEOUT_S + 3


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_time(
    slow_served: Served,
) -> None:
    with connections(slow_served, 1) as (conn,):
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        started = time.monotonic()
        answer = bytearray()
        wait_until(
            lambda: closed_by_server(conn, answer),
            timeout_s=KEEP_ALIVE_S + 3,
            what="the server to close an idle connection",
        )
        assert answer.startswith(b"HTTP/1.1 ")  # the answer came, then the close
        assert time.monotonic() - started < KEEP_ALIVE_S + 2


def test_past_the_connection_cap_requests_are_refused_at_once(slow_served: Served) -> None:
    with connections(slow_served, TRICKLERS + 20) as conns:
        for conn in conns:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers unfinished
        answers: list[str] = []

        def refused() -> bool:
            answer = slow_served.http.get("/healthz", timeout=2)
            answers.append(answer.text)
            # uvicorn's own refusal, not the health check's answer (JSON, 503 here too:
            # no worker runs in this module)
            return answer.status_code == 503 and answer.text == "Service Unavailable"

        wait_until(refused, timeout_s=HEADER_TIMEOUT_S - 0.5, what="a 503 past the connection cap")
