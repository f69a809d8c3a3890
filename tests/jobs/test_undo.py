"""Undoing a batch: exactly the registrations it created are deleted, through the same
protocol (leases, rate limit, retries, Retry-After, outcomes).

The real protocol and Graph client, the simulator over HTTPS, real Redis.
"""

from __future__ import annotations

import pytest
from cli_helpers import wait_until
from pipeline_helpers import HEADER, ORGANIZER, Batch, Undo, Work, rows

from jobs.undo import undo_rows
from worker import keys
from worker.models import Operation, RowState
from worker.protocol.chunk import process_chunk
from worker.runtime import Runtime
from worker.simulator import SimulatorServer
from worker.store.records import Claim, PostRecord

NEW = [f"m-{i}" for i in range(4)]
PRE_EXISTING = ["p-0", "p-1"]


@pytest.fixture
def source(sim: SimulatorServer, batch: Batch, work: Work) -> str:
    """A finished batch that created NEW's registrations and found PRE_EXISTING's."""
    for meeting in NEW:
        sim.state.add_meeting(ORGANIZER, meeting)
    for meeting in PRE_EXISTING:
        sim.state.add_meeting(ORGANIZER, meeting, existing="external")
    csv = HEADER + "".join(f"{ORGANIZER},{m},\n" for m in NEW + PRE_EXISTING)
    status = work(batch(csv))
    assert status.counts["created"] == len(NEW) and status.counts["already_enabled"] == 2
    return status.batch_id


def deleted(sim: SimulatorServer) -> list[str]:
    """Paths the simulator was sent a DELETE for (whatever it answered)."""
    return [path for method, path, _ in sim.state.requests if method == "DELETE"]


def path_of(meeting: str) -> str:
    return "/beta" + keys.registration_path(ORGANIZER, meeting)


def test_undo_deletes_exactly_the_registrations_the_batch_created(
    sim: SimulatorServer, source: str, undo: Undo, work: Work, runtime: Runtime
) -> None:
    created_ids = {r.meeting_id: r.registration_id for r in rows(runtime, source)}
    kept = {m: sim.state.registration(m) for m in PRE_EXISTING}
    status = work(undo(source))
    assert status.operation is Operation.DISABLE and status.undoes == source
    assert status.finished and status.counts["disabled"] == len(NEW)
    assert sorted(deleted(sim)) == sorted(path_of(m) for m in NEW)
    assert all(sim.state.registration(m) is None for m in NEW)
    assert {m: sim.state.registration(m) for m in PRE_EXISTING} == kept  # untouched
    report = rows(runtime, status.batch_id)
    assert [(r.line, r.status, r.http_status) for r in report] == [
        (line, RowState.DISABLED, 204) for line in range(2, 2 + len(NEW))
    ]
    assert {r.meeting_id: r.registration_id for r in report} == {m: created_ids[m] for m in NEW}
    assert runtime.store.batch_status(source).undone_by == status.batch_id


def test_after_an_undo_the_same_file_enables_registration_again(
    sim: SimulatorServer, source: str, undo: Undo, batch: Batch, work: Work
) -> None:
    work(undo(source))
    again = work(batch(HEADER + "".join(f"{ORGANIZER},{m},\n" for m in NEW)))
    # Not `skipped` as "done by an earlier batch": the undo told the meetings' records.
    assert again.counts["created"] == len(NEW)
    assert all(sim.state.registration(m) is not None for m in NEW)


def test_undoing_twice_deletes_nothing_more(
    sim: SimulatorServer, source: str, undo: Undo, work: Work, runtime: Runtime
) -> None:
    first = undo(source)
    work(first)
    assert undo(source) == first  # the same undo batch, resumed: nothing left to send
    assert work(first).counts["disabled"] == len(NEW)
    # Another undo batch of the same rows (as if the first were forgotten) sends nothing:
    # the meetings' records say their registrations are gone.
    store = runtime.store
    store.create_batch(
        "second",
        "again",
        undo_rows(store, store.batch_status(source)),
        operation=Operation.DISABLE,
        undoes=source,
    )
    requests_before = len(sim.state.requests)
    process_chunk(runtime.deps, "second", 1, len(NEW) + 1)
    second = rows(runtime, "second")
    assert {r.status for r in second} == {RowState.SKIPPED}
    assert all(r.error.startswith(f"already done by {first}:") for r in second)
    assert len(sim.state.requests) == requests_before
    assert len(deleted(sim)) == len(NEW)


def test_throttling_and_outages_during_the_undo_are_retried_after_retry_after(
    sim: SimulatorServer, source: str, undo: Undo, work: Work, runtime: Runtime
) -> None:
    sim.state.script("m-0", [{"status": 429, "retry_after": "0.3"}])  # on its GET
    sim.state.script("m-1", [{"action": "answer"}, {"status": 429, "retry_after": "0.3"}])
    sim.state.script("m-2", [{"action": "answer"}, {"status": 503, "retry_after": "0.2"}])
    sim.state.script("m-3", [{"action": "answer"}, {"status": 502}])  # on its DELETE
    status = work(undo(source))
    assert status.counts["disabled"] == len(NEW)
    assert sim.state.early_retries() == []  # every Retry-After honoured
    assert all(sim.state.registration(m) is None for m in NEW)
    statuses = [s for method, _, s in sim.state.requests if method == "DELETE"]
    assert sorted(statuses) == [204, 204, 204, 204, 429, 502, 503]


def test_a_delete_whose_answer_was_lost_ends_disabled_after_a_look(
    sim: SimulatorServer, source: str, undo: Undo, work: Work, runtime: Runtime
) -> None:
    # Every DELETE is done, then answered 500: the retry GETs, finds it gone, sends no more.
    sim.state.set_faults(commit_then_500_probability=1.0)
    status = work(undo(source))
    assert status.counts["disabled"] == len(NEW)
    assert sorted(deleted(sim)) == sorted(path_of(m) for m in NEW)  # one each


def test_a_registration_made_again_since_the_batch_is_left_alone(
    sim: SimulatorServer, source: str, undo: Undo, work: Work, runtime: Runtime
) -> None:
    body = {"@odata.type": "#microsoft.graph.externalMeetingRegistration"}
    sim.state.delete_registration(ORGANIZER, "m-0")
    remade = sim.state.register(ORGANIZER, "m-0", {**body, "allowedRegistrant": "everyone"})
    sim.state.delete_registration(ORGANIZER, "m-1")  # someone removed it already
    status = work(undo(source))
    assert (status.counts["changed"], status.counts["already_disabled"]) == (1, 1)
    assert status.counts["disabled"] == len(NEW) - 2
    assert sim.state.registration("m-0") == remade
    assert path_of("m-0") not in deleted(sim) and path_of("m-1") not in deleted(sim)
    by_meeting = {r.meeting_id: r for r in rows(runtime, status.batch_id)}
    assert remade["id"] in by_meeting["m-0"].error and by_meeting["m-0"].http_status == 200
    assert by_meeting["m-1"].http_status == 404


def test_graph_refusing_the_delete_fails_the_row_with_graphs_code(
    sim: SimulatorServer, source: str, undo: Undo, work: Work, runtime: Runtime
) -> None:
    sim.state.script("m-0", [{"action": "answer"}, {"status": 403}])
    status = work(undo(source))
    by_meeting = {r.meeting_id: r for r in rows(runtime, status.batch_id)}
    assert by_meeting["m-0"].status is RowState.FAILED
    assert by_meeting["m-0"].http_status == 403
    assert by_meeting["m-0"].error.startswith("Forbidden")
    assert sim.state.registration("m-0") is not None
    assert status.counts["disabled"] == len(NEW) - 1


def test_a_worker_that_died_after_sending_its_delete_leaves_the_row_to_be_finished(
    sim: SimulatorServer, source: str, undo: Undo, work: Work, runtime: Runtime
) -> None:
    # What a worker killed mid-call leaves behind: the row `running`, its meeting's lease
    # (about to lapse, as a dead worker's does), the DELETE counted, and done by Graph.
    store = runtime.store
    undo_id = undo(source)
    row = store.row(undo_id, 1)
    assert row is not None
    claim = store.claim(
        undo_id,
        row,
        row.meeting_id,
        "dead-worker",
        50,
        done_states=Operation.DISABLE.done_states,
        done_id=row.registration_id,
    )
    assert claim[0] is Claim.CLAIMED
    assert store.record_post(undo_id, row, row.meeting_id, "dead-worker")[0] is PostRecord.GO
    sim.state.delete_registration(ORGANIZER, row.meeting_id)
    lease = keys.lease(row.meeting_id)
    wait_until(lambda: not store.redis.exists(lease), timeout_s=5, what="the lease to lapse")

    status = work(undo_id)
    assert status.finished and status.counts["disabled"] == len(NEW)  # ours, not "already"
    assert path_of(row.meeting_id) not in deleted(sim)  # looked first; sent no second DELETE
