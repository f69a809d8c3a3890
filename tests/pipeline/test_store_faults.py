"""Redis failing at any store call of a chunk's work: nothing is left held, every row ends,
and no meeting is registered twice.

Each store call of the way fails in turn (the 1st, the 2nd, ...), once: before it reaches
Redis (Redis down), or after Redis did it (its answer lost). Right after the failure, the
worker must hold nothing for the rows no thread works on any more: a lease it kept renewing
would hold up the chunk sent again for ever. Then Redis works again, the chunk's claim
lapses, the sweeper sends it again, and every row must end, each meeting registered once,
against a Graph that makes a second registration on a second POST.

The real protocol with the runtime's own policy (lock-step on), the real Graph client, the
simulator over HTTPS, real Redis; leases of production length (60 s).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import redis
from pipeline_helpers import HEADER, ORGANIZER, UPN, Batch, rows

from jobs.enqueue import Chunk
from jobs.undo import enqueue_undo
from worker import keys
from worker.errors import StoreError
from worker.models import RowState
from worker.protocol.chunk import chunk_name, process_chunk
from worker.protocol.deps import Deps
from worker.protocol.leases import Held, LeaseKeeper
from worker.protocol.recovery import sweep_once
from worker.runtime import Runtime
from worker.simulator import SimulatorServer
from worker.store.outcome_store import OutcomeStore

FINISH_S = 20.0  # the sweeper's copy runs at once here: backoff of 20 ms, 4 attempts


class FailingStore:
    """The runtime's store, its calls counted by name; call number `fail_at` raises
    StoreError, once: before it reaches Redis, or (`lost`) after Redis did it."""

    def __init__(self, store: OutcomeStore, fail_at: int | None = None, lost: bool = False):
        self._store = store
        self.fail_at = fail_at
        self.lost = lost
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls.append(name)
                failing = len(self.calls) == self.fail_at
            if failing and not self.lost:
                raise StoreError(f"injected: store call {self.fail_at} ({name}) failed")
            result = attribute(*args, **kwargs)
            if failing:
                raise StoreError(f"injected: the answer to store call {self.fail_at} was lost")
            return result

        return call


# The store calls of each way, in order: what the tests below fail one by one.
LOCKSTEP_CALLS = [
    "hold_chunks",  # the message is received
    "batch_operation",
    "rows",
    "claim_many",  # m-a, m-b, m-e; the UPN row goes alone
    "record_post_many",  # m-a (m-b's and m-e's GETs answered 503: alone, with their leases)
    "finish_many",  # m-a created
    "save_row",  # m-b retrying
    "claim",
    "record_post",
    "finish",  # m-b created
    "save_row",  # m-e retrying
    "claim",
    "record_post",
    "finish",
    "cached_user_id",  # the UPN row
    "cache_user_id",
    "claim",
    "record_post",
    "finish",
    "drop_chunk",
]
LONE_CALLS = [
    "hold_chunks",
    "batch_operation",
    "rows",
    "claim",  # m-c
    "record_post",
    "save_row",  # its POST answered 503: retrying
    "claim",
    "record_post",
    "finish",
    "claim",  # m-d
    "record_post",
    "finish",
    "drop_chunk",
]
UNDO_CALLS = [
    "hold_chunks",
    "batch_operation",
    "rows",
    "claim",  # u-0
    "record_post",  # its DELETE
    "finish",
    "claim",  # u-1
    "record_post",
    "finish",
    "drop_chunk",
]


@dataclasses.dataclass
class Way:
    """One chunk's work, set up in the simulator and the store, ready to be run."""

    batch_id: str
    chunk: Chunk
    meetings: list[str]
    final: RowState  # what every row must end as
    lockstep: bool = True


Setup = Callable[[], Way]


@pytest.fixture
def lockstep_way(sim: SimulatorServer, batch: Batch, queued: list[Chunk]) -> Setup:
    """A wave of the common way: a row that goes along, two that leave it after a 503 and
    go on alone holding their leases, and one named by a UPN that goes alone from the
    start. Four rows: a wave is at least four while the rate is at its start or above."""

    def setup() -> Way:
        meetings = ["m-a", "m-b", "m-e", "m-u"]
        for meeting in meetings:
            sim.state.add_meeting(ORGANIZER, meeting)
        for meeting in ("m-b", "m-e"):
            sim.state.script(meeting, [{"status": 503}])  # its GET
        csv = HEADER + "".join(f"{ORGANIZER},{m},\n" for m in meetings[:3]) + f"{UPN},m-u,\n"
        batch_id = batch(csv)
        (chunk,) = queued
        queued.clear()
        return Way(batch_id, chunk, meetings, RowState.CREATED)

    return setup


@pytest.fixture
def lone_way(sim: SimulatorServer, batch: Batch, queued: list[Chunk]) -> Setup:
    """Lock-step off: each row alone, one of them retried after a 503 on its POST."""

    def setup() -> Way:
        for meeting in ("m-c", "m-d"):
            sim.state.add_meeting(ORGANIZER, meeting)
        sim.state.script("m-c", [{"status": 404}, {"status": 503}])  # its GET, its POST
        batch_id = batch(f"{HEADER}{ORGANIZER},m-c,\n{ORGANIZER},m-d,\n")
        (chunk,) = queued
        queued.clear()
        return Way(batch_id, chunk, ["m-c", "m-d"], RowState.CREATED, lockstep=False)

    return setup


@pytest.fixture
def undo_way(sim: SimulatorServer, batch: Batch, queued: list[Chunk], runtime: Runtime) -> Setup:
    """The undo of a batch that created two registrations."""

    def setup() -> Way:
        meetings = ["u-0", "u-1"]
        for meeting in meetings:
            sim.state.add_meeting(ORGANIZER, meeting)
        source = batch(HEADER + "".join(f"{ORGANIZER},{m},\n" for m in meetings))
        (chunk,) = queued
        queued.clear()
        process_chunk(runtime.deps, *chunk)
        assert runtime.store.batch_status(source).counts["created"] == 2
        undone = enqueue_undo(runtime.store, source, publish=queue_into(queued))
        assert undone is not None
        (chunk,) = queued
        queued.clear()
        return Way(undone.batch_id, chunk, meetings, RowState.DISABLED)

    return setup


def queue_into(queued: list[Chunk]) -> Callable[[Iterable[Chunk]], int]:
    """A publish that queues the chunks for the test to run."""

    def publish(chunks: Iterable[Chunk]) -> int:
        sent = list(chunks)
        queued.extend(sent)
        return len(sent)

    return publish


def faulty_deps(runtime: Runtime, store: FailingStore, lockstep: bool) -> Deps:
    """The runtime's deps (its policy: lock-step on) over the failing store, with a keeper
    of their own: the heartbeat is the test's to run, so every call is counted in order."""
    keeper = LeaseKeeper(store, runtime.settings.lease_ms)  # type: ignore[arg-type]
    policy = runtime.deps.policy
    assert policy.in_waves, "the runtime's policy is the production one: lock-step on"
    if not lockstep:
        policy = dataclasses.replace(policy, in_waves=False)
    return dataclasses.replace(runtime.deps, store=store, leases=keeper, policy=policy)


def deliver(deps: Deps, chunk: Chunk, message_id: str) -> None:
    """What a worker does with a chunk's message: hold the chunk when the message comes
    (a failure there is only logged), then run it."""
    with contextlib.suppress(StoreError):
        deps.leases.hold_chunk(chunk_name(*chunk), holder=message_id)
    process_chunk(deps, *chunk, holder=message_id)


def test_each_way_makes_the_store_calls_the_faults_are_aimed_at(
    runtime: Runtime, lockstep_way: Setup, lone_way: Setup, undo_way: Setup
) -> None:
    for setup, expected in [
        (lockstep_way, LOCKSTEP_CALLS),
        (lone_way, LONE_CALLS),
        (undo_way, UNDO_CALLS),
    ]:
        way = setup()
        store = FailingStore(runtime.store)
        deliver(faulty_deps(runtime, store, way.lockstep), way.chunk, "message-1")
        assert store.calls == expected
        assert runtime.store.batch_status(way.batch_id).counts[str(way.final)] == len(way.meetings)


def fail_then_recover(
    way: Way,
    fail_at: int,
    lost: bool,
    runtime: Runtime,
    sim: SimulatorServer,
    redis_client: redis.Redis,
    queued: list[Chunk],
) -> None:
    store = FailingStore(runtime.store, fail_at=fail_at, lost=lost)
    deps = faulty_deps(runtime, store, way.lockstep)
    try:
        deliver(deps, way.chunk, "message-1")
    except StoreError as exc:
        assert "injected" in str(exc)
    else:  # only the hold of a message just received may fail without ending the work
        assert store.calls[fail_at - 1] == "hold_chunks"
    assert len(store.calls) >= fail_at, "the fault was never dealt"

    # No thread works on the chunk now: a beat of the heartbeat must renew nothing of it.
    deps.leases.renew_all()
    leases = [keys.lease(meeting) for meeting in way.meetings]
    assert redis_client.exists(*leases) == 0, "a lease outlived the work that took it"
    assert deps.leases.held() == Held(frozenset(), {})

    # Redis works again. The chunk's claim lapses (as lease_ms later), unless the chunk
    # was done: the sweeper sends it again, and a worker runs it.
    redis_client.zadd(keys.INFLIGHT, {chunk_name(*way.chunk): 0}, xx=True)
    sweep_once(runtime.store, queue_into(queued), runtime.settings.lease_ms)
    within(FINISH_S, lambda: [deliver(deps, chunk, "message-2") for chunk in queued])

    ended = rows(runtime, way.batch_id)
    assert [row.status for row in ended] == [way.final] * len(way.meetings)
    assert deps.leases.held() == Held(frozenset(), {})
    assert redis_client.zcard(keys.INFLIGHT) == 0
    if way.final is RowState.CREATED:
        assert all(sim.state.creations[meeting] == 1 for meeting in way.meetings)
    else:  # one DELETE each: a second could delete a registration made since
        deletes = [path for method, path, _ in sim.state.requests if method == "DELETE"]
        assert sorted(path.split("/")[-2] for path in deletes) == way.meetings
        assert all(sim.state.registration(meeting) is None for meeting in way.meetings)
    assert sim.state.stats()["duplicates"] == []


def within(timeout_s: float, work: Callable[[], object]) -> None:
    """Run `work` in a thread; fail if it has not ended within `timeout_s` (a thread
    waiting for a lease no one gives back would wait for ever)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=timeout_s)
    assert not thread.is_alive(), f"the chunk sent again did not end within {timeout_s} s"
    if errors:
        raise errors[0]


@pytest.fixture(autouse=True)
def replacing_graph(sim: SimulatorServer) -> None:
    # A Graph that silently makes a second registration on a second POST: any POST sent
    # twice shows.
    sim.state.set_conflict("replace")


@pytest.mark.parametrize("lost", [False, True], ids=["redis-down", "answer-lost"])
@pytest.mark.parametrize("fail_at", range(1, len(LOCKSTEP_CALLS) + 1))
def test_a_lockstep_wave_failing_at_any_store_call_leaves_nothing_held_and_ends_each_row_once(
    fail_at: int,
    lost: bool,
    lockstep_way: Setup,
    runtime: Runtime,
    sim: SimulatorServer,
    redis_client: redis.Redis,
    queued: list[Chunk],
) -> None:
    fail_then_recover(lockstep_way(), fail_at, lost, runtime, sim, redis_client, queued)


@pytest.mark.parametrize("lost", [False, True], ids=["redis-down", "answer-lost"])
@pytest.mark.parametrize("fail_at", range(1, len(LONE_CALLS) + 1))
def test_lone_rows_failing_at_any_store_call_leave_nothing_held_and_end_once(
    fail_at: int,
    lost: bool,
    lone_way: Setup,
    runtime: Runtime,
    sim: SimulatorServer,
    redis_client: redis.Redis,
    queued: list[Chunk],
) -> None:
    fail_then_recover(lone_way(), fail_at, lost, runtime, sim, redis_client, queued)


@pytest.mark.parametrize("lost", [False, True], ids=["redis-down", "answer-lost"])
@pytest.mark.parametrize("fail_at", range(1, len(UNDO_CALLS) + 1))
def test_an_undo_failing_at_any_store_call_leaves_nothing_held_and_deletes_once(
    fail_at: int,
    lost: bool,
    undo_way: Setup,
    runtime: Runtime,
    sim: SimulatorServer,
    redis_client: redis.Redis,
    queued: list[Chunk],
) -> None:
    fail_then_recover(undo_way(), fail_at, lost, runtime, sim, redis_client, queued)
