"""`meetreg demo`: a sample batch against the built-in Graph simulator, faults on.

Nothing is configured and nothing real is touched: the demo always uses an embedded
Redis and the simulator, whatever REDIS_URL or AZURE_* say. The sample holds every kind
of row a real file holds, so every outcome shows up: meetings to register, meetings
already registered, organizers without the access policy (403), meetings Graph does not
know (404), rows named by UPN or by join link, duplicates and invalid rows.

`--graph-mode gone` or `app-only-refused` starts the simulator with the meeting
registration API retired: `meetreg run`'s probe refuses the sample, as it would a real
file in such a tenant.

`--webinars` runs a registrant file instead (`jobs/cli/webinar_sample.py`): the two demos
differ only in their `Sample`, what is seeded and written and how the simulator checks it.
"""

from __future__ import annotations

import base64
import csv
import os
import random
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from jobs.cli.webinar_sample import write_registrants
from jobs.sources.csv_file import CsvSource
from worker.settings import Settings, load_settings
from worker.simulator import FaultConfig, SimulatorConfig, SimulatorServer, SimulatorState
from worker.simulator.config import ConflictMode, RegistrationApiMode, WebinarConflict
from worker.simulator.directory import RegistrationKind

RunBatch = Callable[[Settings, CsvSource, str | None], int]
WriteSample = Callable[[Path, SimulatorState, int, random.Random], None]

ORGANIZERS = 40
# The simulated service: 30 ms per call, a limit of its own, and every fault Graph's
# reference describes, often enough to show in a few thousand rows.
DEMO_FAULTS = FaultConfig(
    latency_ms=30,
    rate_limit_per_s=300,  # unknown to meetreg, which is told 800: it finds this one
    retry_after_style="float",
    throttle_probability=0.0,
    throttle_retry_after_s=0.5,
    error_5xx_probability=0.005,
    commit_then_timeout_probability=0.003,
    commit_then_500_probability=0.003,
    stall_s=3,
    seed=7,
)


def meeting_id(rng: random.Random) -> str:
    """An id shaped like Graph's: base64 of `1*<organizer>*0**19:meeting_<x>@thread.v2`."""
    raw = f"1*{uuid.UUID(int=rng.getrandbits(128))}*0**19:meeting_{rng.getrandbits(64):x}@thread.v2"
    return base64.b64encode(raw.encode()).decode().rstrip("=")


def write_sample(path: Path, state: SimulatorState, rows: int, rng: random.Random) -> None:
    """Seed the simulator and write a CSV of `rows` data rows that names its meetings."""
    organizers = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(ORGANIZERS)]
    for index, organizer in enumerate(organizers):
        upn = f"organizer{index}@contoso.example"
        # Three organizers lack the application access policy: their rows fail with 403.
        state.add_user(organizer, upn, access_policy=index >= 3)
    written: list[tuple[str, str, str]] = []
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["userId", "meetingId", "joinWebUrl", "allowedRegistrant"])
        for _ in range(rows):
            roll = rng.random()
            index = rng.randrange(ORGANIZERS)
            organizer = organizers[index]
            user = f"organizer{index}@contoso.example" if rng.random() < 0.1 else organizer
            registrant = "organization" if rng.random() < 0.2 else ""
            if roll < 0.01 and written:  # a row repeated further down the file
                writer.writerow([*rng.choice(written), ""])
                continue
            if roll < 0.02:  # the row itself is wrong
                writer.writerow([rng.choice(["not-a-user", organizer]), "", "", "everybody"])
                continue
            meeting = meeting_id(rng)
            if roll < 0.03:  # a meeting Graph has never heard of: 404
                writer.writerow([user, meeting, "", registrant])
                continue
            existing: RegistrationKind | None = (
                "external" if roll < 0.08 else "microsoft" if roll < 0.09 else None
            )
            seeded = state.add_meeting(organizer, meeting, existing=existing)
            if roll > 0.97:  # named by its join link instead of its id
                writer.writerow([user, "", seeded["joinWebUrl"], registrant])
                written.append((user, "", seeded["joinWebUrl"]))
            else:
                writer.writerow([user, meeting, "", registrant])
                written.append((user, meeting, ""))


@contextmanager
def _trusting(ca_path: str) -> Iterator[None]:
    """Trust the simulator's CA for the demo's length (httpx and MSAL read these)."""
    saved = {name: os.environ.get(name) for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")}
    os.environ.update({"SSL_CERT_FILE": ca_path, "REQUESTS_CA_BUNDLE": ca_path})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass(frozen=True, slots=True)
class Sample:
    """What one demo seeds, writes and checks; everything else the demos share."""

    file_name: str
    noun: str  # what the sample's rows are, in the first line
    write: WriteSample
    # The simulator's own count of what was made, and of what was made twice.
    check: Callable[[SimulatorState, dict[str, Any]], str]
    why_exit_1: str
    # How Graph answers a second registration: for webinars, "duplicate" (it makes one
    # more), the answer that would show any second POST.
    conflict: ConflictMode = "409"
    webinar_conflict: WebinarConflict = "409"


def _meeting_check(state: SimulatorState, stats: dict[str, Any]) -> str:
    return (
        f"{sum(stats['creations'].values())} registrations created, "
        f"{len(stats['duplicates'])} meetings registered twice"
    )


def _webinar_check(state: SimulatorState, stats: dict[str, Any]) -> str:
    return (
        f"{stats['webinar_registrations_created']} webinar registrations made, "
        f"{state.webinar_duplicates()} people registered twice"
    )


MEETINGS = Sample(
    "meetings.csv",
    "meetings",
    write_sample,
    _meeting_check,
    "the sample holds invalid rows and meetings Graph refuses",
)
WEBINARS = Sample(
    "registrants.csv",
    "webinar registrants",
    write_registrants,
    _webinar_check,
    "the sample holds invalid rows and webinars closed to registration",
    webinar_conflict="duplicate",
)


def run_demo(
    rows: int,
    *,
    run_batch: RunBatch,
    console: Console,
    out: Console,
    sample: Sample = MEETINGS,
    graph_mode: RegistrationApiMode = "live",
) -> int:
    """Run the demo; returns `meetreg run`'s exit code (1: the sample has failing rows).
    Raises ApiRetired, as `meetreg run` does, when `graph_mode` retires the API."""
    rng = random.Random(2024)
    config = SimulatorConfig(
        faults=DEMO_FAULTS,
        conflict=sample.conflict,
        webinar_conflict=sample.webinar_conflict,
        registration_api=graph_mode,
    )
    with tempfile.TemporaryDirectory(prefix="meetreg-demo-") as tmp, SimulatorServer(config) as sim:
        path = Path(tmp) / sample.file_name
        console.print(
            f"simulated Graph at {sim.graph_base_url}; sample of {rows} {sample.noun}",
            markup=False,
        )
        sample.write(path, sim.state, rows, rng)
        settings = load_settings(
            redis_url=None,  # always the embedded Redis: the demo never touches a real one
            graph_base_url=sim.graph_base_url,
            authority_host=sim.authority_host,
            tenant_id=sim.tenant_id,
            client_id=sim.client_id,
            client_secret=sim.client_secret,
            client_certificate_path=None,
            rate_limit_per_s=800,
            request_timeout_s=2,
            backoff_base_s=0.2,
            recovery_s=20,
            ssl_cert_file=Path(sim.ca_path),
            requests_ca_bundle=Path(sim.ca_path),
        )
        with _trusting(sim.ca_path):  # requests lets these in the environment win
            code = run_batch(settings, CsvSource(path), None)
        stats = sim.state.stats()
        out.print(
            f"simulator: {sample.check(sim.state, stats)}, "
            f"{stats['throttled']} answers 429, {_count(stats, '5')} answers 5xx, "
            f"{stats['early_retries']} retries sent before their Retry-After",
            markup=False,
        )
        if code == 1:
            out.print(f"exit 1: {sample.why_exit_1}, on purpose", markup=False)
        return code


def _count(stats: dict[str, Any], status_prefix: str) -> int:
    """Requests answered with a status starting `status_prefix` ("5": any 5xx)."""
    return sum(
        n
        for key, n in stats["requests_by_status"].items()
        if key.split()[-1].startswith(status_prefix)
    )
