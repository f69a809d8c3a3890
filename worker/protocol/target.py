"""What the protocol creates on Graph, seen from the protocol: one create-if-absent
operation on a resource found by a key (the meeting's id), with its look-up, its undo,
and the answers after which only a look tells what happened.

The protocol (worker.protocol.chunk, row, wave) keeps the rules (leases, at most one
create that counts, look first after an ambiguous answer, retries); a Target keeps the
calls and words of one kind of resource. worker.protocol.targets holds them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from worker.errors import GraphError


class Answer(Protocol):
    """What every answer of Graph's carries, for the row's report."""

    @property
    def status(self) -> int: ...

    @property
    def request_id(self) -> str | None: ...


class Found(Answer, Protocol):
    """A resource Graph showed (or made)."""

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> str: ...


class Removal(Answer, Protocol):
    """Graph's answer to an undo: `removed`, or nothing was there."""

    @property
    def removed(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class LookedGone:
    """A Removal seen by a look, not made by an undo: nothing there (404)."""

    removed: bool  # the row's own earlier undo may be what removed it
    status: int = 404
    request_id: str | None = None


class Target(Protocol):
    """One kind of resource the protocol creates if absent. Every call raises GraphError
    subclasses (worker.errors); a look answers None when the resource is absent."""

    @property
    def confirm_statuses(self) -> tuple[int, ...]:
        """A create refused with one of these may have met a resource already there (ours,
        after a lost answer, or someone's): a look tells "already there" from a refusal."""
        ...

    def look(self, user_id: str, key: str) -> Found | None: ...

    def create(self, user_id: str, key: str, allowed_registrant: str) -> Found: ...

    def undo(self, user_id: str, key: str) -> Removal: ...

    # The same look and create, sent at once and answered by the function returned
    # (calls sent together share $batch envelopes: worker.protocol.wave).
    def start_look(self, user_id: str, key: str) -> Callable[[], Found | None]: ...

    def start_create(
        self, user_id: str, key: str, allowed_registrant: str
    ) -> Callable[[], Found]: ...

    def is_ours(self, found: Found) -> bool:
        """Whether `found` is of the kind this target creates (else someone made another)."""
        ...

    def mismatch(self, found: Found) -> str:
        """Why `found` is not what this target creates; "" when it is."""
        ...

    def replaced(self, found: Found, ours: str) -> str:
        """Why an undo leaves `found` alone: it is not the resource `ours` it recorded."""
        ...

    def retirement(self, error: GraphError) -> str | None:
        """Why every row would fail as this one did because the API itself is retired or
        refused to this kind of token: the one line the operator is shown when the batch
        pauses at once; None for any other refusal (it stays the row's own failure)."""
        ...
