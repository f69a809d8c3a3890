"""Chaos, bounded and on loopback: a batch of 5,000 rows (CHAOS_ROWS to change it) while
workers are SIGKILLed again and again, Redis is restarted, the same chunks are sent twice so
workers race for the same rows, and the simulator answers with random 5xx,
commit-then-timeout, and 429 past its own limit; against a Graph that *replaces* a
registration on a second POST, so any duplicate would show. Every row must end final; no
meeting registered twice; none lost. It prints its figures (run with -s to see them)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis
from cli_helpers import command_env, meetreg, start_worker, stop

from jobs.embedded_redis import EmbeddedRedis
from worker.simulator import SimulatorServer
from worker.store import OutcomeStore

ROWS = int(os.environ.get("CHAOS_ROWS", "5000"))
USERS = [f"00000000-0000-4000-8000-{i:012d}" for i in range(25)]
KILL_EVERY_S = 6.0
DEADLINE_S = float(os.environ.get("CHAOS_DEADLINE_S", "600"))


@pytest.mark.slow
@pytest.mark.timeout(DEADLINE_S + 60)
def test_rows_survive_killed_workers_a_redis_restart_racing_chunks_and_faults(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    sim.state.set_conflict("replace")
    sim.state.set_faults(
        latency_ms=20,
        error_5xx_probability=0.03,
        rate_limit_per_s=400,  # meetreg is told 1,000/s: 429s until it finds the limit
        commit_then_timeout_probability=0.01,
        stall_s=2.5,
        seed=7,
    )
    lines = ["user_id,meeting_id"]
    meetings = []
    for i in range(ROWS):
        user = USERS[i % len(USERS)]
        meetings.append({"organizer_id": user, "meeting_id": f"chaos-{i}"})
        lines.append(f"{user},chaos-{i}")
    sim.state.add_meetings(meetings)
    path = tmp_path / "chaos.csv"
    path.write_text("\n".join(lines) + "\n")

    rng = random.Random(11)
    kills = restarts = 0
    with EmbeddedRedis(appendonly=True) as server:
        env = command_env(
            **sim.env(),
            REDIS_URL=server.url,
            MEETREG_RECOVERY_S="4",
            MEETREG_REQUEST_TIMEOUT_S="1",
            MEETREG_RATE_LIMIT="1000",
            MEETREG_CONCURRENCY="8",
            MEETREG_MAX_ATTEMPTS="20",
            MEETREG_BACKOFF_BASE_S="0.05",
            MEETREG_PAUSE_AFTER="0",  # faults are random here, not systemic
        )
        assert meetreg("enqueue", str(path), "--batch-id", "chaos", env=env).returncode == 0
        # The same chunks again: two messages for every row, raced by different workers.
        assert meetreg("enqueue", str(path), "--batch-id", "chaos", env=env).returncode == 0
        workers: list[subprocess.Popen[bytes]] = [
            start_worker(f"chaos{n}", env, tmp_path) for n in range(2)
        ]
        client = redis.Redis.from_url(server.url)
        store = OutcomeStore(client)
        started = time.monotonic()
        next_kill = started + KILL_EVERY_S
        restarted = False
        last = None
        done_at_kill = 0
        try:
            while True:
                try:
                    last = store.batch_status("chaos")
                    if last.finished:
                        break
                except Exception:  # Redis is down for its restart: look again
                    pass
                now = time.monotonic()
                assert now - started < DEADLINE_S, f"unfinished under chaos: {last}"
                # Kill only once the batch moved on since the last kill: on a loaded
                # machine a worker needs seconds to start, and chaos must not starve it.
                progressed = last is not None and last.done >= done_at_kill + ROWS // 10
                if now >= next_kill and progressed:
                    done_at_kill = last.done if last is not None else 0
                    victim = workers.pop(rng.randrange(len(workers)))
                    victim.send_signal(signal.SIGKILL)
                    victim.wait()
                    kills += 1
                    workers.append(start_worker(f"chaos{kills + 2}", env, tmp_path))
                    next_kill = now + KILL_EVERY_S
                if not restarted and now - started > 3 * KILL_EVERY_S:
                    server.stop()  # SIGTERM: Redis writes its AOF out and exits
                    time.sleep(1.0)
                    server.start()
                    restarted, restarts = True, restarts + 1
                time.sleep(0.2)
        finally:
            for process in workers:
                stop(process)
        status = store.batch_status("chaos")
        client.close()

    assert kills >= 3 and restarts == 1
    assert status.finished and status.total == ROWS
    assert status.counts["created"] + status.counts["already_enabled"] == ROWS  # none lost
    assert status.counts["failed"] == 0
    creations = sim.state.creations
    assert len(creations) == ROWS
    assert max(creations.values()) == 1, "a meeting was registered twice"
    injected = sim.state.stats()["faults_injected"]
    # The chaos really happened: each kind of fault was dealt out, not just configured.
    assert {"429 limit", "commit_then_timeout"} <= injected.keys()
    assert any(kind.startswith("5") for kind in injected)
    duplicates = sum(n - 1 for n in creations.values())
    lost = ROWS - status.counts["created"] - status.counts["already_enabled"]
    print(
        f"\nchaos: {ROWS} rows, {kills} workers SIGKILLed, {restarts} Redis restart, "
        f"faults injected {sum(injected.values())} {dict(sorted(injected.items()))}; "
        f"rows lost {lost}, duplicates {duplicates}"
    )
