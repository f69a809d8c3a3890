"""What the protocol creates on Graph, seen from the protocol: one create-if-absent
operation on a resource found from a row (a meeting's registration; a person's
registration for a webinar), with its look-up, its undo, a judgement of whether the row
can succeed at all, and the answers after which only a look tells what happened.

The protocol (worker.protocol.chunk, row, wave) keeps the rules (leases, at most one
create that counts, look first after an ambiguous answer, retries); a Target keeps the
calls and words of one kind of resource. worker.protocol.targets holds them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol, TypeVar

from worker.errors import GraphError
from worker.models import RowRecord, RowState

T = TypeVar("T")


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


class Place(NamedTuple):
    """Where a row's resource is: `owner` and `item` name it to Graph (a meeting: the
    organizer's objectId and the meeting's id; a registrant: the webinar's id and the
    person's email); `key` names it to the store, whose record and lease keep one
    resource's creates apart from another's."""

    owner: str
    item: str
    key: str


class UserIdCache(Protocol):
    """UPNs' objectIds, kept in Redis (`worker.store.OutcomeStore` is one)."""

    def cached_user_id(self, upn: str) -> str | None: ...

    def cache_user_id(self, upn: str, object_id: str) -> None: ...


class Caller(Protocol):
    """What a target uses while it locates or judges a row (`RowSteps` is one): a Graph
    call counted and rate limited, and the store's caches of Graph's answers."""

    @property
    def store(self) -> UserIdCache: ...

    def call(self, request: Callable[[], T]) -> T: ...


class Verdict(NamedTuple):
    """Whether a row can succeed at all, judged before anything is sent: `state` None for
    yes, else the final state (`failed`, `invalid`) and `reason`."""

    state: RowState | None = None
    reason: str = ""


GO = Verdict()
EXTERNAL_PREFIX = "meetreg:"


def external_id(ref: str) -> str:
    """meetreg's key for a row (`batch:seq`), as a resource that can carry one (a webinar
    registration's externalRegistrationInformation) carries it."""
    return EXTERNAL_PREFIX + ref


class Target(Protocol):
    """One kind of resource the protocol creates if absent. Every call raises GraphError
    subclasses (worker.errors); a look answers None when the resource is absent."""

    @property
    def confirm_statuses(self) -> tuple[int, ...]:
        """A create refused with one of these may have met a resource already there (ours,
        after a lost answer, or someone's): a look tells "already there" from a refusal."""
        ...

    @property
    def always_looks_first(self) -> bool:
        """Look before every create, whatever MEETREG_GET_BEFORE_POST says: what a second
        create does is not known, and may make a second resource."""
        ...

    def place(self, row: RowRecord) -> Place | None:
        """Where the row's resource is, if the row says so without a Graph call."""
        ...

    def locate(self, row: RowRecord, caller: Caller) -> Place:
        """Where the row's resource is, finding out from Graph what the row leaves open
        (a UPN, a join link) through `caller`."""
        ...

    def verdict(self, batch_id: str, row: RowRecord) -> Verdict | None:
        """Whether the row can succeed, from what this process knows; None: not known
        yet, `judge` finds out."""
        ...

    def judge(self, batch_id: str, row: RowRecord, caller: Caller) -> Verdict:
        """`verdict`, asking Graph what it needs to know (once per batch and resource)."""
        ...

    def look(self, place: Place, row: RowRecord) -> Found | None: ...

    def create(self, place: Place, row: RowRecord) -> Found: ...

    def undo(self, place: Place, found: Found) -> Removal: ...

    # The same look and create, sent at once and answered by the function returned
    # (calls sent together share $batch envelopes: worker.protocol.wave).
    def start_look(self, place: Place, row: RowRecord) -> Callable[[], Found | None]: ...

    def start_create(self, place: Place, row: RowRecord) -> Callable[[], Found]: ...

    def is_ours(self, found: Found, row: RowRecord) -> bool:
        """Whether `found` may be what the row's own create made (the protocol knows
        whether the row sent one)."""
        ...

    def mismatch(self, found: Found) -> str:
        """Why `found` is not what this target creates; "" when it is."""
        ...

    def replaced(self, found: Found, row: RowRecord) -> str:
        """Why an undo leaves `found` alone: it is not the resource the row's batch made;
        "" when it is, and the undo goes ahead."""
        ...

    def retirement(self, error: GraphError) -> str | None:
        """Why every row would fail as this one did because the API itself is retired or
        refused to this kind of token: the one line the operator is shown when the batch
        pauses at once; None for any other refusal (it stays the row's own failure)."""
        ...
