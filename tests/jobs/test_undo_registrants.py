"""Undoing a registrant batch (`meetreg disable --batch`): exactly the registrations the
batch made are canceled, found by email and told ours by the key they carry; another
registration of the same person is left alone.

The real protocol and Graph client, the simulator over HTTPS, real Redis.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pipeline_helpers import WEBINAR_ORGANIZER, Batch, Undo, Work, rows

from worker.models import Operation, RowState
from worker.protocol.chunk import process_chunk
from worker.runtime import Runtime
from worker.simulator import SimulatorServer
from worker.simulator.webinars import new_webinar_id

HEADER = "webinar_id,email,first_name,last_name\n"
PEOPLE = ["ann", "bo", "cy", "dee"]


def email(name: str) -> str:
    return f"{name}@contoso.example"


def by_hand(sim: SimulatorServer, webinar_id: str, name: str) -> dict[str, Any]:
    """Someone else registers the person (no key of meetreg's on it)."""
    body = {
        "firstName": name,
        "lastName": "Hand",
        "email": email(name),
        "preferredTimezone": "UTC",
        "preferredLanguage": "en-us",
    }
    made, _ = sim.state.webinar_call(lambda w: w.register(webinar_id, body, None))
    return made.to_graph()


def cancel_by_hand(sim: SimulatorServer, webinar_id: str, name: str) -> None:
    (found,) = [r["id"] for r in active(sim, webinar_id).values() if r["email"] == email(name)]
    sim.state.webinar_call(lambda w: w.cancel_registration(webinar_id, found))


def cancels(sim: SimulatorServer) -> list[str]:
    """Paths the simulator was sent a registration's cancel for."""
    return [p for method, p, _ in sim.state.requests if method == "POST" and p.endswith("/cancel")]


def active(sim: SimulatorServer, webinar_id: str) -> dict[str, dict[str, Any]]:
    return {
        r["email"]: r
        for r in sim.state.webinar_registrations(webinar_id)
        if r["status"] != "canceled"
    }


def test_undo_cancels_only_what_the_batch_registered_and_twice_cancels_nothing_more(
    sim: SimulatorServer, batch: Batch, work: Work, undo: Undo, runtime: Runtime
) -> None:
    webinar_id = new_webinar_id()
    sim.state.add_webinar(webinar_id, WEBINAR_ORGANIZER)
    theirs = by_hand(sim, webinar_id, "eve")  # registered before the batch
    csv = HEADER + "".join(f"{webinar_id},{email(n)},{n},Lee\n" for n in [*PEOPLE, "eve"])
    source = work(batch(csv))
    assert source.counts["registered"] == 4 and source.counts["already_registered"] == 1
    # Since the batch: bo's registration was canceled and someone registered bo again;
    # cy's was canceled.
    cancel_by_hand(sim, webinar_id, "bo")
    again = by_hand(sim, webinar_id, "bo")
    cancel_by_hand(sim, webinar_id, "cy")
    before = len(cancels(sim))

    status = work(undo(source.batch_id))
    assert status.operation is Operation.CANCEL and status.undoes == source.batch_id
    assert status.finished
    got = {r.email: r for r in rows(runtime, status.batch_id)}
    assert {e: r.status for e, r in got.items()} == {
        email("ann"): RowState.CANCELED,
        email("bo"): RowState.CHANGED,
        email("cy"): RowState.ALREADY_CANCELED,
        email("dee"): RowState.CANCELED,
    }
    assert again["id"] in got[email("bo")].error
    # Left alone: the registration someone else made for bo, and eve's from before.
    assert active(sim, webinar_id) == {email("bo"): again, email("eve"): theirs}
    assert len(cancels(sim)) - before == 2

    # `meetreg disable --batch` again: the same undo batch, nothing left to send.
    requests = len(sim.state.requests)
    assert undo(source.batch_id) == status.batch_id
    assert work(status.batch_id).counts == status.counts
    assert len(sim.state.requests) == requests
    # An undo batch of the same rows run again (its rows queued afresh): nothing more is
    # canceled, and nothing someone else made is touched.
    runtime.store.create_batch(
        "second",
        "again",
        (replace(r, status=RowState.QUEUED) for r in rows(runtime, status.batch_id)),
        operation=Operation.CANCEL,
        undoes=source.batch_id,
    )
    process_chunk(runtime.deps, "second", 1, len(PEOPLE) + 1)
    second = {r.email: r.status for r in rows(runtime, "second")}
    assert second == {
        email("ann"): RowState.SKIPPED,  # already done by the first undo
        email("bo"): RowState.CHANGED,
        email("cy"): RowState.SKIPPED,
        email("dee"): RowState.SKIPPED,
    }
    assert len(cancels(sim)) - before == 2
    assert active(sim, webinar_id) == {email("bo"): again, email("eve"): theirs}
