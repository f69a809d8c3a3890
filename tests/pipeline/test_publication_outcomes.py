"""Webinar publications through the whole pipeline, as the signed-in organizer: the real
protocol, Graph client and delegated sign-in (MSAL's device-code flow), the simulator over
HTTPS, real Redis. Drafts become published, once; nothing else is POSTed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from pipeline_helpers import NO_POLICY_USER, ORGANIZER, UPN, fast_settings, rows

from jobs.enqueue import Chunk, enqueue_rows
from jobs.sources.csv_file import PUBLICATIONS, CsvSource
from worker.graph.delegated import DelegatedTokenSource
from worker.models import Operation, RowState
from worker.protocol.chunk import process_chunk
from worker.runtime import Runtime, build_runtime
from worker.settings import AuthMode
from worker.simulator import SimulatorServer
from worker.simulator.webinars import new_webinar_id
from worker.store.records import BatchStatus


@pytest.fixture
def organizer(sim: SimulatorServer, redis_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """A worker's runtime signed in as ORGANIZER, as `meetreg login` signs in."""
    sim.state.sign_in_as(ORGANIZER, UPN)
    settings = fast_settings(
        redis_url, auth=AuthMode.DELEGATED, token_cache_path=tmp_path / "tokens.json"
    )
    source = DelegatedTokenSource(settings)
    try:
        source.login(lambda _: None)
    finally:
        source.close()
    current = build_runtime(settings)
    yield current
    current.close()


def publish(runtime: Runtime, tmp_path: Path, webinar_ids: Iterable[str]) -> BatchStatus:
    """A publication batch of `webinar_ids` from a CSV file, worked to its end here."""
    path = tmp_path / f"publish{len(list(tmp_path.iterdir()))}.csv"
    path.write_text("webinar_id\n" + "".join(f"{w}\n" for w in webinar_ids), encoding="utf-8")
    queued: list[Chunk] = []

    def to_queue(chunks: Iterable[Chunk]) -> int:
        before = len(queued)
        queued.extend(chunks)
        return len(queued) - before

    done = enqueue_rows(
        CsvSource(path, PUBLICATIONS).rows(),
        store=runtime.store,
        publish=to_queue,
        source=str(path),
        operation=Operation.PUBLISH,
    )
    for batch_id, start, stop in queued:
        process_chunk(runtime.deps, batch_id, start, stop)
    return runtime.store.batch_status(done.batch_id)


def status_of(sim: SimulatorServer, webinar_id: str) -> str:
    return sim.state.webinar_call(lambda w: str(w.get(webinar_id).status))


def publish_posts(sim: SimulatorServer) -> int:
    return sum(1 for method, path, _ in sim.state.requests if path.endswith("/publish"))


def webinar(sim: SimulatorServer, organizer_id: str = ORGANIZER, status: str = "draft") -> str:
    webinar_id = new_webinar_id()
    sim.state.add_webinar(webinar_id, organizer_id, status=status)
    return webinar_id


def test_drafts_are_published_once_and_published_ones_are_left_without_a_post(
    sim: SimulatorServer, organizer: Runtime, tmp_path: Path
) -> None:
    drafts = [webinar(sim), webinar(sim)]
    live = webinar(sim, status="published")
    status = publish(organizer, tmp_path, [*drafts, live, drafts[0]])

    got = [(row.webinar_id, row.status) for row in rows(organizer, status.batch_id)]
    assert got == [
        (drafts[0], RowState.PUBLISHED),
        (drafts[1], RowState.PUBLISHED),
        (live, RowState.ALREADY_PUBLISHED),
        (drafts[0], RowState.SKIPPED),  # the same webinar twice: published once
    ]
    assert [status_of(sim, w) for w in drafts] == ["published", "published"]
    assert publish_posts(sim) == 2
    assert status.finished and status.counts["published"] == 2
    assert status.operation is Operation.PUBLISH

    again = publish(organizer, tmp_path, drafts)  # meetreg's record: no call at all
    assert [r.status for r in rows(organizer, again.batch_id)] == [RowState.SKIPPED] * 2
    assert publish_posts(sim) == 2


def test_canceled_unknown_and_other_organizers_webinars_fail_and_stay_as_they_were(
    sim: SimulatorServer, organizer: Runtime, tmp_path: Path
) -> None:
    canceled = webinar(sim, status="canceled")
    unknown = new_webinar_id()
    theirs = webinar(sim, organizer_id=NO_POLICY_USER)
    status = publish(organizer, tmp_path, [canceled, unknown, theirs])

    got = {r.webinar_id: r for r in rows(organizer, status.batch_id)}
    assert {w: r.status for w, r in got.items()} == dict.fromkeys(
        (canceled, unknown, theirs), RowState.FAILED
    )
    assert got[canceled].error == "the webinar was canceled"
    assert got[unknown].error == f"webinar {unknown} not found"
    assert got[unknown].http_status == 404
    assert got[theirs].http_status == 403  # only the organizer may publish
    assert got[theirs].request_id
    assert status_of(sim, canceled) == "canceled" and status_of(sim, theirs) == "draft"
    assert publish_posts(sim) == 1  # the other organizer's draft only: Graph refused it
