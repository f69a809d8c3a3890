"""`meetreg status` of a batch whose rows stopped moving, as an operator reads it."""

from __future__ import annotations

import json

import redis
from cli_helpers import command_env, meetreg, wait_until
from store_helpers import row

from worker.models import RowState
from worker.store.outcome_store import OutcomeStore
from worker.store.records import Ending


def test_status_flags_a_batch_whose_claimed_rows_were_left_and_shows_the_oldest_ones_age(
    redis_url: str, redis_client: redis.Redis
) -> None:
    store = OutcomeStore(redis_client, stall_after_s=3)
    store.create_batch("stuck", "f.csv", [row(1), row(2), row(3)])
    store.claim("stuck", row(1), "stuck-m1", "a worker gone", 10_000)  # never renewed
    store.finish("stuck", Ending(row=row(3, RowState.CREATED)))
    wait_until(lambda: store.batch_status("stuck").stalled, timeout_s=30, what="stuck stalled")
    env = command_env(REDIS_URL=redis_url, MEETREG_RECOVERY_S="3")

    text = meetreg("status", "stuck", env=env)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "stuck: 1/3 done, STALLED"
    assert lines[2].startswith("  why: no row has moved for ")
    assert "(1 row in workers' hands, the oldest for " in lines[2]
    assert "check that workers are running" in lines[3]

    shown = json.loads(meetreg("status", "stuck", "--json", env=env).stdout)
    assert shown["stalled"] is True
    assert shown["oldest_running_s"] >= 3 and shown["since_progress_s"] >= 3
    assert shown["last_progress_at"].endswith("Z")
    # What scripts read already stays as it was.
    assert (shown["batch_id"], shown["total"], shown["done"], shown["finished"]) == (
        "stuck",
        3,
        1,
        False,
    )
    assert shown["counts"] == {
        "queued": 1,
        "running": 1,
        "retrying": 0,
        "created": 1,
        "already_enabled": 0,
        "skipped": 0,
        "failed": 0,
        "invalid": 0,
    }

    # With a longer recovery window the same rows may still be in a live worker's hands.
    patient = command_env(REDIS_URL=redis_url, MEETREG_RECOVERY_S="600")
    calm = meetreg("status", "stuck", env=patient).stdout.splitlines()
    assert calm[0] == "stuck: 1/3 done, in progress"
    assert calm[2].startswith("  1 row in workers' hands, the oldest for ")
    assert json.loads(meetreg("status", "stuck", "--json", env=patient).stdout)["stalled"] is False
