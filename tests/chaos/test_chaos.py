"""Chaos, bounded and on loopback: a batch of 5,000 meetings (CHAOS_ROWS to change it) and
one of 1,000 webinar registrants (CHAOS_REGISTRANTS), in one queue, while workers are
SIGKILLed again and again, Redis is restarted, the same chunks are sent twice so
workers race for the same rows, and the simulator answers with random 5xx,
commit-then-timeout, and 429 past its own limit; against a Graph that *replaces* a
registration on a second POST (for webinar registrants: makes a second one), so any
duplicate would show. Every row must end final; no meeting, and no person, registered
twice; none lost. It prints its figures (run with -s to see them).

Leases are of production length (60 s): they outlive the Redis outage, as they would in
production, so a lease a live worker kept for work no thread does any more would hold its
rows up for ever (a short one lapsed during the outage and hid that). The outage is aimed
at waves between their claim and their store calls, and no worker is killed after it (a
killed worker's leases die with it, which would hide the same thing)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from cli_helpers import command_env, meetreg, start_worker, stop

from worker import keys
from worker.redis.embedded import EmbeddedRedis
from worker.simulator import SimulatorServer
from worker.simulator.webinars import new_webinar_id
from worker.store.outcome_store import OutcomeStore
from worker.store.records import BatchStatus

ROWS = int(os.environ.get("CHAOS_ROWS", "5000"))
REGISTRANTS = int(os.environ.get("CHAOS_REGISTRANTS", "1000"))
WEBINARS = 12
USERS = [f"00000000-0000-4000-8000-{i:012d}" for i in range(25)]
KILL_EVERY_S = 6.0
KILLS = 3
OUTAGE_LATENCY_MS = 400.0  # Graph's answers, while the outage comes: waves wait on them
LEASES = f"{keys.PREFIX}lease:*"
DEADLINE_S = float(os.environ.get("CHAOS_DEADLINE_S", "600"))


@dataclass(frozen=True)
class Workload:
    """One target's rows under chaos: its batch, what is seeded and written, and how
    Graph's own record is checked afterwards."""

    batch_id: str
    rows: int
    # Seed the simulator and write the CSV; the ids of what holds the resources (webinars).
    write: Callable[[SimulatorServer, Path], list[str]]
    done: tuple[str, str]  # the states a row ends in, made or found
    made: Callable[[SimulatorServer, list[str]], list[int]]  # resources made, per resource


def write_meetings(sim: SimulatorServer, path: Path) -> list[str]:
    sim.state.set_conflict("replace")
    lines = ["user_id,meeting_id"]
    meetings = []
    for i in range(ROWS):
        user = USERS[i % len(USERS)]
        meetings.append({"organizer_id": user, "meeting_id": f"chaos-{i}"})
        lines.append(f"{user},chaos-{i}")
    sim.state.add_meetings(meetings)
    path.write_text("\n".join(lines) + "\n")
    return []


def write_registrants(sim: SimulatorServer, path: Path) -> list[str]:
    sim.state.set_webinar_conflict("duplicate")
    webinars = [new_webinar_id() for _ in range(WEBINARS)]
    for webinar_id in webinars:
        sim.state.add_webinar(webinar_id, USERS[0])
    lines = ["webinar_id,email,first_name,last_name"]
    lines += [
        f"{webinars[i % WEBINARS]},person{i}@contoso.example,Person,{i}" for i in range(REGISTRANTS)
    ]
    path.write_text("\n".join(lines) + "\n")
    return webinars


def registrations_per_person(sim: SimulatorServer, webinars: list[str]) -> list[int]:
    made: Counter[tuple[str, str]] = Counter()
    for webinar in webinars:
        for registration in sim.state.webinar_registrations(webinar):
            if registration["status"] != "canceled":
                made[(webinar, registration["email"].casefold())] += 1
    return list(made.values())


# Both targets at once, in one queue and one chaos: their batches race each other too.
WORKLOADS = (
    Workload(
        "chaos",
        ROWS,
        write_meetings,
        ("created", "already_enabled"),
        lambda sim, _: [*sim.state.creations.values()],
    ),
    Workload(
        "chaos-people",
        REGISTRANTS,
        write_registrants,
        ("registered", "already_registered"),
        registrations_per_person,
    ),
)


@pytest.mark.slow
@pytest.mark.timeout(DEADLINE_S + 60)
def test_rows_survive_killed_workers_a_redis_restart_racing_chunks_and_faults(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    rows = sum(work.rows for work in WORKLOADS)
    faults = sim.state.set_faults(
        latency_ms=20,
        error_5xx_probability=0.03,
        rate_limit_per_s=400,  # meetreg is told 1,000/s: 429s until it finds the limit
        commit_then_timeout_probability=0.01,
        stall_s=2.5,
        seed=7,
    )
    paths = [tmp_path / f"{work.batch_id}.csv" for work in WORKLOADS]
    holders = [work.write(sim, path) for work, path in zip(WORKLOADS, paths, strict=True)]

    rng = random.Random(11)
    kills = restarts = 0
    running_at_outage = leases_through_outage = 0
    with EmbeddedRedis(appendonly=True, args=["--appendfsync", "always"]) as server:
        env = command_env(
            **sim.env(),
            REDIS_URL=server.url,
            MEETREG_RECOVERY_S="120",  # production's: leases of 60 s
            MEETREG_LOG_LEVEL="WARNING",
            MEETREG_REQUEST_TIMEOUT_S="1",
            MEETREG_RATE_LIMIT="1000",
            MEETREG_CONCURRENCY="8",
            MEETREG_MAX_ATTEMPTS="20",
            MEETREG_BACKOFF_BASE_S="0.05",
            MEETREG_PAUSE_AFTER="0",  # faults are random here, not systemic
        )
        for work, path in zip(WORKLOADS, paths, strict=True):
            for _ in range(2):  # the same chunks again: two messages for every row, raced
                enqueued = meetreg("enqueue", str(path), "--batch-id", work.batch_id, env=env)
                assert enqueued.returncode == 0, enqueued.stderr
        logs: list[Path] = []

        def start(name: str) -> subprocess.Popen[bytes]:
            logs.append(tmp_path / f"{name}.log")
            return start_worker(name, env, tmp_path, errors=logs[-1])

        workers: list[subprocess.Popen[bytes]] = [start(f"chaos{n}") for n in range(2)]
        client = redis.Redis.from_url(server.url)
        store = OutcomeStore(client)
        started = time.monotonic()
        next_kill = started + KILL_EVERY_S
        last: list[BatchStatus] = []
        done_at_kill = 0
        try:
            while True:
                try:
                    last = [store.batch_status(work.batch_id) for work in WORKLOADS]
                    if all(status.finished for status in last):
                        break
                except Exception:  # Redis is down for its restart: look again
                    pass
                now = time.monotonic()
                assert now - started < DEADLINE_S, f"unfinished under chaos: {last}"
                # Kill only once the batches moved on since the last kill: on a loaded
                # machine a worker needs seconds to start, and chaos must not starve it.
                done = sum(status.done for status in last)
                progressed = bool(last) and done >= done_at_kill + rows // 10
                if kills < KILLS and now >= next_kill and progressed:
                    done_at_kill = done
                    victim = workers.pop(rng.randrange(len(workers)))
                    victim.send_signal(signal.SIGKILL)
                    victim.wait()
                    kills += 1
                    workers.append(start(f"chaos{kills + 2}"))
                    next_kill = now + KILL_EVERY_S
                if kills == KILLS and not restarts and now >= next_kill:
                    # Slow answers, so the waves of the live workers wait on Graph holding
                    # their claims: the outage comes before their store calls.
                    slow = faults.model_copy(update={"latency_ms": OUTAGE_LATENCY_MS})
                    sim.state.set_faults(slow)
                    running_at_outage = wait_for_running_rows(store)
                    server.stop()  # SIGTERM: Redis writes its AOF out and exits
                    time.sleep(1.0)
                    server.start()
                    restarts += 1
                    leases_through_outage = len(list(client.scan_iter(LEASES)))
                    sim.state.set_faults(faults)
                time.sleep(0.2)
        finally:
            for process in workers:
                stop(process)
        statuses = [store.batch_status(work.batch_id) for work in WORKLOADS]
        client.close()

    assert kills == KILLS and restarts == 1
    # The outage hit waves between their claims and their store calls: rows were running
    # when Redis stopped, leases came through it, and a live worker's wave ended holding
    # leases that Redis could not take back then.
    assert running_at_outage > 0 and leases_through_outage > 0
    assert any("could not give back leases yet" in log.read_text() for log in logs)
    figures = []
    for work, status, held in zip(WORKLOADS, statuses, holders, strict=True):
        assert status.finished and status.total == work.rows
        done = sum(status.counts[state] for state in work.done)
        assert done == work.rows, work.batch_id  # none lost
        assert status.counts["failed"] == 0
        made = work.made(sim, held)
        assert len(made) == work.rows, work.batch_id
        assert max(made) == 1, f"{work.batch_id}: a meeting (or a person) was registered twice"
        figures.append(
            f"{work.batch_id}: {work.rows} rows, lost {work.rows - done}, "
            f"duplicates {sum(n - 1 for n in made)}"
        )
    injected = sim.state.stats()["faults_injected"]
    # The chaos really happened: each kind of fault was dealt out, not just configured.
    assert {"429 limit", "commit_then_timeout"} <= injected.keys()
    assert any(kind.startswith("5") for kind in injected)
    print(
        f"\nchaos: {kills} workers SIGKILLed, {restarts} Redis restart "
        f"({running_at_outage} rows running, {leases_through_outage} leases through it), "
        f"faults injected {sum(injected.values())} {dict(sorted(injected.items()))}; "
        + "; ".join(figures)
    )


def wait_for_running_rows(store: OutcomeStore) -> int:
    """How many rows are claimed and not yet ended, once some are."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        running = sum(store.batch_status(work.batch_id).counts["running"] for work in WORKLOADS)
        if running:
            return running
        time.sleep(0.05)
    raise AssertionError("no row was running: the outage would hit no wave")
