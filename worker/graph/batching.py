"""Packing concurrent Graph calls into envelopes: JSON batch requests (`POST /$batch`),
up to 20 calls each.

Worker threads call GraphClient as usual, one call per thread; with batching on, each call
is queued here, a dispatcher packs what is waiting (up to `max_items`, lingering a few
milliseconds for more) into one envelope, and each thread gets back its own
item's answer as an `httpx.Response`. The protocol above never knows: every item is
interpreted by the same code as a single call, so its status, `Retry-After` and
`request-id` count per item (Graph throttles items on their own and answers them in any order).

Items are matched to their callers by id, case-insensitively (Graph treats request ids
so), whatever order the answers come in. The items' own answers count whenever the
envelope carries them: today's Graph wraps a throttled item's 429 in a 200 envelope, an
older revision of its throttling documentation in a 424 one, and either way each item
has its own status and `Retry-After`. A failure of the whole envelope is every
item's failure: a transport error is raised in each caller (a POST item stays
ambiguous), a non-2xx answer without item answers (429, 5xx, 401 after a fresh token) is
each item's answer.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

MAX_ITEMS = 20  # Graph's limit per $batch
# Long enough to fill envelopes from a lock-step wave (its calls come within a few ms),
# short enough that calls paced 5 ms apart are not sent in clumps: a clump's spread adds
# to what a one-second window can hold (see Tuning.margin in worker/ratelimit/limiter.py). Against
# 25 ms, 10 ms let the pace go from 96% to 97% of a known limit for ~12% more CPU per row
# unpaced (bench/, docs/performance.md).
DEFAULT_LINGER_S = 0.010


@dataclass(slots=True)
class _Call:
    method: str
    path: str  # relative to the version, query included: Graph's `url` for an item
    body: dict[str, Any] | None
    client_request_id: str
    answer: Future[httpx.Response] = field(default_factory=Future)


class EnvelopeSender:
    """Sends single calls as items of envelopes (`$batch` requests); `send` blocks its
    caller only."""

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        *,
        max_items: int = MAX_ITEMS,
        max_in_flight: int = 32,
        linger_s: float = DEFAULT_LINGER_S,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.max_items = max(1, min(MAX_ITEMS, max_items))
        self.linger_s = linger_s
        self._waiting: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._senders = ThreadPoolExecutor(max_in_flight, thread_name_prefix="meetreg-envelope")
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="meetreg-envelope-packer", daemon=True
        )
        self._dispatcher.start()

    def send(
        self, method: str, path: str, body: dict[str, Any] | None, client_request_id: str
    ) -> httpx.Response:
        """This call's own answer; raises the envelope's httpx.RequestError, if any."""
        return self.submit(method, path, body, client_request_id).result()

    def submit(
        self, method: str, path: str, body: dict[str, Any] | None, client_request_id: str
    ) -> Future[httpx.Response]:
        """Queue the call and return at once: its answer comes in the Future."""
        call = _Call(method, path, body, client_request_id)
        self._waiting.put(call)
        return call.answer

    def close(self) -> None:
        self._waiting.put(None)
        self._dispatcher.join(timeout=5)
        self._senders.shutdown(wait=True)

    def _dispatch(self) -> None:
        while (first := self._waiting.get()) is not None:
            calls = [first]
            deadline = time.monotonic() + self.linger_s
            stop = False
            while len(calls) < self.max_items:
                try:
                    more = self._waiting.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                calls.append(more)
            self._slots.acquire()  # at most max_in_flight envelopes at once
            self._senders.submit(self._send_envelope, calls)
            if stop:
                return

    def _send_envelope(self, calls: list[_Call]) -> None:
        try:
            response = self.http.post(
                f"{self.base_url}/$batch",
                json={"requests": [_item(str(n), call) for n, call in enumerate(calls)]},
                headers={"client-request-id": str(uuid.uuid4())},
            )
        except httpx.RequestError as exc:
            for call in calls:
                call.answer.set_exception(exc)
            return
        except BaseException as exc:  # never leave a caller waiting forever
            for call in calls:
                call.answer.set_exception(exc)
            raise
        finally:
            self._slots.release()
        try:
            self._hand_out(calls, response)
        except BaseException as exc:  # never leave a caller waiting forever
            for call in calls:
                if not call.answer.done():
                    call.answer.set_exception(exc)
            raise

    def _hand_out(self, calls: list[_Call], response: httpx.Response) -> None:
        answers = _answers_by_id(response)
        if not response.is_success and not answers:
            for call in calls:
                call.answer.set_result(response)  # 429, 5xx, 401: every item's answer
            return
        for n, call in enumerate(calls):
            answer = answers.get(_item_key(str(n)))
            if answer is None:
                # Graph left the item out: it may or may not have run it.
                call.answer.set_exception(
                    httpx.RemoteProtocolError("no answer for this call in the $batch response")
                )
            else:
                call.answer.set_result(_item_response(answer, response))


def _item_response(answer: dict[str, Any], outer: httpx.Response) -> httpx.Response:
    """A $batch item's answer as the response of a call of its own."""
    headers = answer.get("headers")
    headers = dict(headers) if isinstance(headers, dict) else {}
    if "request-id" not in {name.lower() for name in headers}:
        outer_id = outer.headers.get("request-id")
        if outer_id:
            headers["request-id"] = outer_id
    body = answer.get("body")
    content = b"" if body is None else json.dumps(body).encode()
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    status = answer.get("status")
    item = httpx.Response(
        status if isinstance(status, int) else 502,
        headers={str(k): str(v) for k, v in headers.items()},
        content=content,
        # The envelope's request: the item travelled in it, and a Request of its own
        # (a URL parsed per item) cost a sixth of a busy worker's CPU.
        request=outer.request,
    )
    with contextlib.suppress(RuntimeError):  # a response built by hand has no time
        item.elapsed = outer.elapsed  # an item's time is its envelope's (metrics)
    return item


def _item(item_id: str, call: _Call) -> dict[str, Any]:
    item: dict[str, Any] = {"id": item_id, "method": call.method, "url": call.path}
    headers = {"client-request-id": call.client_request_id}
    if call.body is not None:
        headers["Content-Type"] = "application/json"  # required with a body
        item["body"] = call.body
    item["headers"] = headers
    return item


def _item_key(item_id: str) -> str:
    """What identifies an item: Graph compares request ids without regard to case."""
    return item_id.casefold()


def _answers_by_id(response: httpx.Response) -> dict[str, dict[str, Any]]:
    """The envelope's item answers by `_item_key` of their id; {} when it has none."""
    try:
        payload = response.json()
    except ValueError:
        return {}
    answers = payload.get("responses") if isinstance(payload, dict) else None
    if not isinstance(answers, list):
        return {}
    return {_item_key(str(a.get("id"))): a for a in answers if isinstance(a, dict)}
