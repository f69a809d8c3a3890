"""`meetreg demo`: a sample with every kind of row a real file holds, run against the
simulator with faults on, and what it shows the user."""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

import pytest
from cli_helpers import command_env, meetreg

from jobs.cli.demo import ORGANIZERS, write_sample
from worker.simulator import SimulatorState


def test_the_sample_holds_every_kind_of_row(tmp_path: Path) -> None:
    state = SimulatorState()
    path = tmp_path / "sample.csv"
    write_sample(path, state, 2000, random.Random(2024))

    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2000
    keys = [(r["userId"], r["meetingId"], r["joinWebUrl"]) for r in rows]
    by_join_link = [r for r in rows if r["joinWebUrl"]]
    by_upn = [r for r in rows if "@" in r["userId"]]
    invalid = [r for r in rows if r["allowedRegistrant"] == "everybody"]
    named = {r["meetingId"] for r in rows if r["meetingId"]}
    assert by_join_link and by_upn and invalid
    assert len(keys) > len(set(keys))  # some rows repeat an earlier one
    stats = state.stats()
    assert stats["users"] == ORGANIZERS
    assert len(named) > stats["meetings"] - len(by_join_link)  # meetings Graph never heard of: 404
    assert stats["registrations"] > 0  # meetings registered before the demo


@pytest.mark.slow
def test_the_demo_shows_every_outcome_and_no_duplicate(tmp_path: Path) -> None:
    result = meetreg("demo", "--rows", "300", env=command_env(), cwd=tmp_path, timeout=180)

    assert result.returncode == 1, result.stderr[-2000:]  # the sample fails some rows on purpose
    assert "0 meetings registered twice" in result.stdout
    assert "exit 1: the sample holds invalid rows and meetings Graph refuses" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("mode", "words"), [("gone", "on 2024-12-12"), ("app-only-refused", "app-only tokens")]
)
def test_the_demo_with_the_api_retired_shows_the_refusal(
    tmp_path: Path, mode: str, words: str
) -> None:
    result = meetreg("demo", "--rows", "50", "--graph-mode", mode, env=command_env(), cwd=tmp_path)

    assert result.returncode == 2, result.stdout + result.stderr[-2000:]
    refusal = [line for line in result.stderr.splitlines() if line.startswith("meetreg:")]
    assert len(refusal) == 1
    assert words in refusal[0] and "Teams webinars" in refusal[0]
    assert "Traceback" not in result.stderr
    assert "registrations created" not in result.stdout  # nothing ran


@pytest.mark.slow
def test_the_webinar_demo_registers_each_person_once_though_graph_would_twice(
    tmp_path: Path,
) -> None:
    result = meetreg(
        "demo", "--webinars", "--rows", "300", env=command_env(), cwd=tmp_path, timeout=180
    )

    assert result.returncode == 1, result.stderr[-2000:]  # the sample fails some rows on purpose
    counts = dict(re.findall(r"│ (\w+) +│ +(\d+) │", result.stdout))
    assert counts["total"] == "300"
    assert int(counts["skipped"]) > 0  # a person repeated, email in another case
    assert int(counts["failed"]) > 0  # a draft or canceled webinar
    assert int(counts["invalid"]) > 0  # wrong in the file, or a required question unanswered
    final = ("registered", "skipped", "failed", "invalid")
    assert sum(int(counts[state]) for state in final) == 300
    # Graph, in the "duplicate" mode, makes whatever it is sent: one registration per row
    # meetreg counts registered, and no more, proves that no person was POSTed twice.
    assert f"simulator: {counts['registered']} webinar registrations made, " in result.stdout
    assert "0 people registered twice" in result.stdout
    assert "0 retries sent before their Retry-After" in result.stdout
    assert "webinars closed to registration, on purpose" in result.stdout
    assert "Traceback" not in result.stderr
