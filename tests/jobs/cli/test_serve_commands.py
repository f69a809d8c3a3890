"""`meetreg subscribe` and `meetreg subscriptions` against a running `meetreg serve`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from cli_helpers import meetreg
from pipeline_helpers import ORGANIZER, UPN
from serve_helpers import CLIENT_STATE, Served

from worker.graph.calendar import parse_iso
from worker.simulator import SimulatorServer


def test_subscribe_makes_one_validated_subscription_and_renews_it_when_asked_again(
    subscribed: str, served: Served, sim: SimulatorServer, serve_env: dict[str, str]
) -> None:
    (subscription,) = sim.state.subscriptions()
    assert subscription["clientState"] == CLIENT_STATE
    assert subscription["resource"] in (
        f"users/{UPN.replace('@', '%40')}/events",
        f"users/{UPN}/events",
    )
    handshakes = [d for d in sim.state.deliveries() if d.kind == "validation"]
    assert {d.url.split("?")[0] for d in handshakes} == {
        f"{served.url}/graph/notifications",
        f"{served.url}/graph/lifecycle",
    }
    assert all(d.status == 200 for d in handshakes)

    listed = json.loads(meetreg("subscriptions", "--json", env=serve_env).stdout)
    assert [record["id"] for record in listed] == [subscribed]
    expiry = parse_iso(listed[0]["expires_at"])
    assert timedelta(days=6) < expiry - datetime.now(UTC) <= timedelta(days=7)

    again = meetreg(
        "subscribe",
        "--user",
        UPN,
        "--notification-url",
        f"{served.url}/graph/notifications",
        env=serve_env,
    )
    assert again.returncode == 0, again.stderr
    assert [s["id"] for s in sim.state.subscriptions()] == [subscribed]
    assert subscribed in again.stdout


def test_subscribe_to_a_url_that_fails_graphs_handshake_exits_1_naming_the_user(
    served: Served, sim: SimulatorServer, serve_env: dict[str, str]
) -> None:
    result = meetreg(
        "subscribe",
        "--user",
        ORGANIZER,
        "--notification-url",
        f"{served.url}/healthz",
        env=serve_env,
    )
    assert result.returncode == 1
    assert ORGANIZER in result.stderr
    assert "validation" in result.stderr.lower()
    assert "Traceback" not in result.stderr
    assert sim.state.subscriptions() == []
