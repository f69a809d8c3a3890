"""worker.simulator.webhooks: Graph's POSTs to a webhook, and its redeliveries while the
webhook answers 5xx or not at all."""

from __future__ import annotations

import pytest
from sim_helpers import free_port


def test_deliver_posts_any_payload_for_redelivery_or_forgery(sim, receiver):
    forged = {"value": [{"subscriptionId": "x", "clientState": "wrong"}]}
    receiver.status = 400

    delivery = sim.deliver(f"{receiver.url}/graph/notifications", forged)

    assert receiver.notifications()[0].json() == forged
    assert (delivery.kind, delivery.status, delivery.payload) == ("raw", 400, forged)


@pytest.mark.parametrize(
    ("status", "attempts"),
    [(500, 3), (400, 1), (202, 1)],
    ids=["5xx-until-retries-run-out", "4xx-not-retried", "2xx-done"],
)
def test_redelivery_stops_at_the_retries_asked_for_and_only_follows_5xx(
    sim, receiver, status, attempts
):
    receiver.status = status

    last = sim.deliver(f"{receiver.url}/graph/notifications", {"value": []}, retries=2)

    assert (last.attempt, last.status) == (attempts, status)
    assert len(receiver.notifications()) == attempts


def test_a_webhook_that_does_not_answer_is_redelivered_to(sim):
    url = f"http://127.0.0.1:{free_port()}/graph/notifications"

    last = sim.deliver(url, {"value": []}, retries=1)

    assert (last.attempt, last.status, last.error) == (2, None, "ConnectError")
    assert [d.attempt for d in sim.state.deliveries()] == [1, 2]
    with pytest.raises(ValueError, match="retries"):
        sim.deliver(url, {"value": []}, retries=-1)
