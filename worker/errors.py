"""One exception tree for meetreg, split by what the caller must do.

    MeetregError
    ├── ConfigError            fix the configuration; exit 2, never retried
    ├── InputError             fix the input file or request; exit 2, nothing enqueued
    │   ├── UnknownBatchError  no such batch in the outcome store
    │   └── BatchConflict      the batch id is taken by a batch of other rows
    ├── ApiRetired             the Graph API meetreg calls is retired (or refused to this
    │                          kind of token); exit 2, nothing enqueued
    ├── StoreError             Redis is unreachable or refused a command
    └── GraphError             anything Graph answered, or failed to answer
        ├── GraphTransient     try again later (429, 5xx, timeout, connection)
        ├── GraphPermanent     Graph refused for good (400, 403, 404, 405, 409, ...)
        └── GraphAuthError     no token could be had, or Graph rejected a fresh one

httpx and msal errors are translated into this tree at one boundary (worker.graph);
nothing above it imports httpx exceptions. Messages never carry a secret or a token.
"""

from __future__ import annotations


class MeetregError(Exception):
    """Base of every error meetreg raises on purpose."""


class ConfigError(MeetregError):
    """The configuration is missing or wrong."""


class InputError(MeetregError):
    """An input file or request cannot be used at all."""


class UnknownBatchError(InputError):
    """The outcome store holds no batch with this id."""


class BatchConflict(InputError):
    """The batch id names an existing batch whose rows differ from the ones given."""


class ApiRetired(MeetregError):
    """Graph no longer serves the API meetreg would call (or not to this kind of token):
    every row would fail. The message is the one line for the operator, with the way on."""


class StoreError(MeetregError):
    """The outcome store (Redis) failed."""


class GraphError(MeetregError):
    """Base of everything Graph answered, or failed to answer.

    `status` is the HTTP status (None when no response came back), `code` Graph's
    error code, `request_id` the `request-id` Microsoft support asks for.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id

    def describe(self) -> str:
        """One line for the report: `code: message`, or the message alone."""
        return f"{self.code}: {self.message}" if self.code else self.message


class GraphTransient(GraphError):
    """Worth another try.

    `retry_after_s` is Graph's `Retry-After` when it sent one. `throttled` means the
    service asked every caller to slow down (429, or 503 with `Retry-After`).
    `ambiguous` means the request may have reached Graph and taken effect
    (a timeout or reset after sending, a 5xx): look before sending a POST again.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after_s: float | None = None,
        throttled: bool = False,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(message, status=status, code=code, request_id=request_id)
        self.retry_after_s = retry_after_s
        self.throttled = throttled
        self.ambiguous = ambiguous

    @property
    def about_rate(self) -> bool:
        """Whether this answer speaks of our request rate: only a 429 does. A 503 with
        `Retry-After` is a busy service; everyone pauses, but the rate stays."""
        return self.status == 429


class GraphPermanent(GraphError):
    """Graph refused; sending the same request again will not help."""


class GraphAuthError(GraphError):
    """No token could be had, or Graph rejected a freshly issued one."""
