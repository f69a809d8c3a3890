"""The webinar demo's sample: webinars of every kind seeded in the simulator, and a
registrant file whose rows reach every outcome."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from jobs.cli.webinar_sample import (
    CANCELED,
    DRAFTS,
    SMALL_CAPACITY,
    TRACK_ID,
    WEBINARS,
    write_registrants,
)
from jobs.sources.csv_file import file_target
from worker.simulator import SimulatorState


def test_the_sample_holds_every_kind_of_registrant_row(tmp_path: Path) -> None:
    state = SimulatorState()
    path = tmp_path / "registrants.csv"
    write_registrants(path, state, 3000, random.Random(2024))

    assert file_target(path) == "webinars"  # `meetreg run FILE` needs no --target
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3000
    webinars = state.webinar_call(lambda w: list(w.by_id.values()))
    assert len(webinars) == WEBINARS
    statuses = [w.status for w in webinars]
    assert statuses.count("draft") == DRAFTS and statuses.count("canceled") == CANCELED
    small = [w for w in webinars if w.capacity is not None]
    assert [(w.capacity, w.waitlist) for w in small] == [(SMALL_CAPACITY, True)]
    by_id = {w.webinar_id: w for w in webinars}
    closed = [r for r in rows if by_id[r["webinar_id"]].status != "published"]
    assert closed  # rows that fail: the webinar takes no registrations

    def asks(row: dict[str, str], key: str) -> bool:
        questions = by_id[row["webinar_id"]].questions
        return any(key in (q.label, q.question_id) and q.is_required for q in questions)

    for key, column in (("jobTitle", "question:jobTitle"), (TRACK_ID, f"question:{TRACK_ID}")):
        asked = [r for r in rows if asks(r, key)]
        assert any(r[column] for r in asked) and any(not r[column] for r in asked)
        assert not any(r[column] for r in rows if not asks(r, key))  # never a stray answer
    assert any("@" not in r["email"] or not r["last_name"] for r in rows)  # invalid in the file
    people = [(r["webinar_id"], r["email"]) for r in rows]
    folded = {(w, e.casefold()) for w, e in people}
    assert len(set(people)) == len(people) > len(folded)  # repeats differ only by case
    assert state.stats()["webinar_registrations_created"] == 0  # nobody registered before
