"""Webinar registrants through the whole pipeline: the real protocol, Graph client and MSAL,
the simulator over HTTPS, real Redis. Every outcome, for the right reason; one registration
per (webinar, email) whatever Graph does with a second POST."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from pipeline_helpers import Batch, Work, rows

from worker.models import RowState
from worker.runtime import Runtime
from worker.simulator import SimulatorServer
from worker.simulator.webinars import new_webinar_id

ORGANIZER = "5e7c1d2a-3b4f-4a6e-9c8d-7f6e5d4c3b2a"
HEADER = "webinar_id,email,first_name,last_name,question:jobTitle\n"


def webinar(sim: SimulatorServer, **options: object) -> str:
    webinar_id = new_webinar_id()
    sim.state.add_webinar(webinar_id, ORGANIZER, **options)
    return webinar_id


def test_people_are_registered_once_each_with_our_key_on_their_registration(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    first = webinar(sim)
    second = webinar(sim)
    status = work(
        batch(
            f"{HEADER}{first},ann@contoso.example,Ann,Lee,\n"
            f"{first},ANN@contoso.example,Ann,Lee,\n"
            f"{second},ann@contoso.example,Ann,Lee,\n"
            f"{second},bo@contoso.example,Bo,Ek,\n"
        )
    )
    states = [row.status for row in rows(runtime, status.batch_id)]
    assert states == [
        RowState.REGISTERED,
        RowState.SKIPPED,
        RowState.REGISTERED,
        RowState.REGISTERED,
    ]
    assert status.finished and status.counts["registered"] == 3
    registered = sim.state.webinar_registrations(first)
    assert len(registered) == 1
    assert registered[0]["externalRegistrationInformation"]["registrationId"] == (
        f"meetreg:{status.batch_id}:1"
    )
    assert sim.state.webinar_duplicates() == 0


@pytest.mark.parametrize("conflict", ["409", "400", "duplicate", "silent"])
def test_a_person_registered_before_is_already_registered_whatever_a_second_post_does(
    conflict: str, sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    sim.state.set_webinar_conflict(conflict)  # type: ignore[arg-type]
    webinar_id = webinar(sim)
    one = work(batch(f"{HEADER}{webinar_id},ann@contoso.example,Ann,Lee,\n"))
    two = work(batch(f"{HEADER}{webinar_id},Ann@Contoso.example,Ann,Lee,\n"))
    assert [r.status for r in rows(runtime, one.batch_id)] == [RowState.REGISTERED]
    assert [r.status for r in rows(runtime, two.batch_id)] == [RowState.SKIPPED]
    # Not through meetreg's record: someone registered the person by hand.
    third = webinar(sim)
    sim.state.set_webinar_conflict(conflict)  # type: ignore[arg-type]
    runtime.store.redis.flushdb()
    work(batch(f"{HEADER}{third},cy@contoso.example,Cy,Ho,\n"))
    runtime.store.redis.flushdb()
    again = work(batch(f"{HEADER}{third},cy@contoso.example,Cy,Ho,\n"))
    assert [r.status for r in rows(runtime, again.batch_id)] == [RowState.ALREADY_REGISTERED]
    assert sim.state.webinar_duplicates() == 0


def test_rows_that_cannot_succeed_end_before_any_post(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    draft = webinar(sim, status="draft")
    asking = webinar(sim, questions=[{"label": "jobTitle", "is_required": True}])
    status = work(
        batch(
            f"{HEADER}{draft},ann@contoso.example,Ann,Lee,\n"
            f"{asking},bo@contoso.example,Bo,Ek,\n"
            f"{asking},cy@contoso.example,Cy,Ho,CTO\n"
            f"{new_webinar_id()},dee@contoso.example,Dee,Ro,\n"
        )
    )
    got = [(row.status, row.error) for row in rows(runtime, status.batch_id)]
    assert got[0] == (
        RowState.FAILED,
        "the webinar is a draft: its organizer must publish it first",
    )
    assert got[1][0] is RowState.INVALID and "required question 'jobTitle'" in got[1][1]
    assert got[2] == (RowState.REGISTERED, "")
    assert got[3][0] is RowState.FAILED and got[3][1].endswith("not found")
    assert sim.state.stats()["webinar_registration_posts"] == 1


def test_a_webinar_is_read_once_for_the_whole_batch_and_its_later_waves_judged_from_that(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    draft = webinar(sim, status="draft")
    live = webinar(sim)
    people = [f"p{i}@contoso.example" for i in range(30)]
    csv = HEADER + "".join(f"{draft},{p},P,Q,\n{live},{p},P,Q,\n" for p in people)
    status = work(batch(csv))  # 60 rows: three chunks, waves after the first judged at once
    states = [row.status for row in rows(runtime, status.batch_id)]
    assert states == [RowState.FAILED, RowState.REGISTERED] * 30
    webinar_reads = [
        path
        for method, path, _ in sim.state.requests
        if method == "GET" and path.endswith((quote(draft, safe=""), quote(live, safe="")))
    ]
    assert len(webinar_reads) == 2  # each webinar once, not once per row or chunk
    assert sim.state.stats()["webinar_registration_posts"] == 30


def test_webinars_all_refused_alike_pause_the_batch_not_fail_every_row(
    sim: SimulatorServer, batch: Batch, work: Work, runtime: Runtime
) -> None:
    # No application access policy for any organizer: every webinar read is 403.
    webinars = [webinar(sim) for _ in range(5)]
    for webinar_id in webinars:
        sim.state.script(webinar_id, [{"status": 403}] * 100)
    people = [f"p{i}@contoso.example" for i in range(20)]
    status = work(batch(HEADER + "".join(f"{w},{p},P,Q,\n" for p in people for w in webinars)))
    assert status.paused and not status.finished
    assert "No Application Access Policy" in status.paused
    assert 20 <= status.counts["failed"] < 100  # the valve's window, not all 100 rows
    assert sim.state.stats()["webinar_registration_posts"] == 0
