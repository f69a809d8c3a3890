"""`celery -A worker.app beat` on several machines: one leader, one message per slot, and a
standby that takes over when the leader dies.

Three beats share the session's Redis, with the schedule at every minute and a 10 s lock.
No worker runs: the nightly messages stay in the queue, where they are counted.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cli_helpers import command_env, start_beat, stop, wait_until

from worker import keys

LOCK_TIMEOUT_S = 10
ACQUIRED = "beat: Acquired lock"
SENT = "Scheduler: Sending due task"


class Beat:
    def __init__(self, name: str, env: dict[str, str], cwd: Path, logs: Path) -> None:
        self.name = name
        self.log = logs / f"{name}.log"
        self.process = start_beat(env, cwd, self.log)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def leads(self) -> bool:
        return ACQUIRED in self.text()

    def sends(self) -> list[str]:
        """The minutes at which this beat sent the nightly task, from its JSON log lines
        (its banner, on stdout, is not a log line)."""
        return [
            record["ts"][:16]
            for line in self.text().splitlines()
            if line.startswith("{") and (record := json.loads(line))["message"].startswith(SENT)
        ]


@pytest.fixture
def beats(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Iterator[list[Beat]]:
    env = command_env(
        REDIS_URL=redis_url,
        MEETREG_NIGHTLY_CRON="* * * * *",
        MEETREG_BEAT_LOCK_TIMEOUT_S=str(LOCK_TIMEOUT_S),
        MEETREG_LOG_FORMAT="json",
    )
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    started = [Beat(f"beat-{i}", env, cwd, logs) for i in range(3)]
    yield started
    for beat in started:
        stop(beat.process)
    assert list(cwd.iterdir()) == []  # beat keeps its schedule in Redis, not in the folder


def nightly_messages(client: redis.Redis) -> int:
    return sum(
        json.loads(raw)["headers"]["task"] == keys.NIGHTLY_TASK
        for raw in client.lrange(keys.QUEUE, 0, -1)
    )


@pytest.mark.slow
def test_one_beat_leads_a_standby_takes_over_and_each_minute_is_sent_once(
    beats: list[Beat], redis_client: redis.Redis
) -> None:
    wait_until(lambda: any(b.leads() for b in beats), timeout_s=30, what="a beat to lead")
    (leader,) = [b for b in beats if b.leads()]
    assert 0 < redis_client.pttl(keys.BEAT_LOCK) <= LOCK_TIMEOUT_S * 1000

    leader.process.send_signal(signal.SIGKILL)  # dies holding the lock: no release
    leader.process.wait()
    standbys = [b for b in beats if b is not leader]
    wait_until(
        lambda: any(b.leads() for b in standbys),
        timeout_s=LOCK_TIMEOUT_S + 15,
        what="a standby to take the lock over",
    )
    (successor,) = [b for b in standbys if b.leads()]
    (idle,) = [b for b in standbys if b is not successor]

    wait_until(lambda: successor.sends(), timeout_s=75, what="the new leader to send a run")
    assert idle.sends() == []
    sent = leader.sends() + successor.sends()
    assert len(set(sent)) == len(sent)  # never twice in one minute, even across the takeover
    # Beat logs "Sending due task" just before it publishes: wait for the message itself
    # (a race seen once in CI), then hold the count to exactly what the logs say was sent.
    wait_until(
        lambda: nightly_messages(redis_client) >= len(sent), timeout_s=10, what="the run queued"
    )
    assert nightly_messages(redis_client) == len(sent)
