"""The subscriptions meetreg keeps: renewed by the nightly job before they lapse, and only then."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from cli_helpers import meetreg

from jobs.events.subscriptions import SubscriptionBook
from worker.graph.calendar import parse_iso
from worker.simulator import SimulatorServer


def test_the_nightly_job_renews_a_subscription_about_to_lapse_and_leaves_the_others(
    subscribed: str,
    sim: SimulatorServer,
    serve_env: dict[str, str],
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    book = SubscriptionBook(redis_client)
    record = book.get(subscribed)
    assert record is not None
    soon = datetime.now(UTC) + timedelta(hours=3)
    record.expires_at = soon.strftime("%Y-%m-%dT%H:%M:%SZ")  # as if made six days ago
    book.save(record)

    env = {**serve_env, "MEETREG_DROP_DIR": str(tmp_path)}
    first = meetreg("nightly", "--once", "--json", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert json.loads(first.stdout)["subscriptions"]["renewed"] == [subscribed]
    renewed = book.get(subscribed)
    assert renewed is not None and renewed.expiry - datetime.now(UTC) > timedelta(days=6)
    (at_graph,) = sim.state.subscriptions()
    assert parse_iso(at_graph["expirationDateTime"]) == renewed.expiry

    second = meetreg("nightly", "--once", "--json", env=env)
    assert json.loads(second.stdout)["subscriptions"]["renewed"] == []  # not due again
