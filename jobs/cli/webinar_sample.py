"""The sample of `meetreg demo --webinars`: webinars seeded in the simulator, and a CSV of
registrants for them that holds every kind of row a real file holds.

Most webinars are published and open; a couple are drafts and one was canceled (their rows
fail); some ask a required question, predefined (`question:jobTitle`) or a custom choice
(`question:track`), which most rows answer and some do not (invalid, before any POST); one
seats only a few people and waitlists the rest. A handful of rows are wrong in the file
itself, and some repeat an earlier person with their email in another case (skipped).
"""

from __future__ import annotations

import csv
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.simulator import SimulatorState
from worker.simulator.webinars import new_webinar_id

WEBINARS = 36
DRAFTS = 2
CANCELED = 1
ASKING_JOB_TITLE = 6  # a required predefined question
ASKING_TRACK = 3  # a required custom single-choice question
SMALL_CAPACITY = 5  # the one webinar with a waitlist: seats for this many
TRACK_ID = "track"
TRACKS = ("Sales", "Engineering", "Support")
TIMEZONES = ("", "", "Pacific Standard Time", "W. Europe Standard Time", "Tokyo Standard Time")
HEADER = [
    "webinar_id",
    "email",
    "first_name",
    "last_name",
    "preferred_timezone",
    "question:jobTitle",
    f"question:{TRACK_ID}",
]
_FIRST = ("Ann", "Bo", "Cy", "Dee", "Eli", "Fay", "Gus", "Hal", "Ida", "Jo")
_LAST = ("Lee", "Ek", "Ho", "Nunez", "Okafor", "Park", "Quist", "Rossi", "Sato", "Tran")


@dataclass(frozen=True, slots=True)
class SeededWebinar:
    """A webinar of the sample, and what a row for it must answer."""

    webinar_id: str
    status: str
    asks_job_title: bool = False
    asks_track: bool = False


def seed_webinars(state: SimulatorState, rng: random.Random) -> list[SeededWebinar]:
    """Add the sample's webinars to the simulator: drafts and a canceled one first, then
    the published ones (those asking questions, the small one, the plain ones)."""
    organizers = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(4)]
    seeded: list[SeededWebinar] = []
    specs: list[dict[str, Any]] = []
    for index in range(WEBINARS):
        webinar = SeededWebinar(
            new_webinar_id(),
            "draft" if index < DRAFTS else "canceled" if index < DRAFTS + CANCELED else "published",
            asks_job_title=_among(index, DRAFTS + CANCELED, ASKING_JOB_TITLE),
            asks_track=_among(index, DRAFTS + CANCELED + ASKING_JOB_TITLE, ASKING_TRACK),
        )
        questions: list[dict[str, Any]] = []
        if webinar.asks_job_title:
            questions.append({"label": "jobTitle", "is_required": True})
        if webinar.asks_track:
            questions.append(
                {
                    "id": TRACK_ID,
                    "display_name": "Which track?",
                    "answer_input_type": "singleChoice",
                    "answer_choices": list(TRACKS),
                    "is_required": True,
                }
            )
        small = index == DRAFTS + CANCELED + ASKING_JOB_TITLE + ASKING_TRACK
        specs.append(
            {
                "webinar_id": webinar.webinar_id,
                "organizer_id": organizers[index % len(organizers)],
                "status": webinar.status,
                "questions": questions,
                "capacity": SMALL_CAPACITY if small else None,
                "waitlist": small,
            }
        )
        seeded.append(webinar)
    state.add_webinars(specs)
    return seeded


def write_registrants(path: Path, state: SimulatorState, rows: int, rng: random.Random) -> None:
    """Seed the simulator's webinars and write a CSV of `rows` registrants for them."""
    webinars = seed_webinars(state, rng)
    closed = [w for w in webinars if w.status != "published"]
    published = [w for w in webinars if w.status == "published"]
    written: list[list[str]] = []
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for seq in range(rows):
            roll = rng.random()
            if roll < 0.01 and written:  # the same person again, their email in capitals
                again = written.pop(rng.randrange(len(written)))  # once: a case of its own
                again[1] = again[1].upper()
                writer.writerow(again)
                continue
            webinar = rng.choice(closed if roll < 0.03 else published)
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            email = f"{first}.{last}.{seq}@fabrikam.example".lower()
            if roll > 0.99:  # the row itself is wrong: no address, or no last name
                email, last = rng.choice([(email.replace("@", " at "), last), (email, "")])
            # Most people answer what their webinar asks; one in ten forgets.
            job_title = rng.choice(("Analyst", "Engineer", "Manager"))
            track = rng.choice(TRACKS)
            row = [
                webinar.webinar_id,
                email,
                first,
                last,
                rng.choice(TIMEZONES),
                job_title if webinar.asks_job_title and rng.random() >= 0.1 else "",
                track if webinar.asks_track and rng.random() >= 0.1 else "",
            ]
            writer.writerow(row)
            written.append(row)


def _among(index: int, start: int, count: int) -> bool:
    return start <= index < start + count
