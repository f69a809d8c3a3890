"""What Graph's errors say: the report's one line, and whether an answer is about our rate."""

from __future__ import annotations

from worker.errors import GraphError, GraphPermanent, GraphTransient, InputError, MeetregError


def test_a_graph_error_is_described_by_its_code_and_message() -> None:
    error = GraphPermanent("Forbidden by policy", status=403, code="Forbidden")
    assert error.describe() == "Forbidden: Forbidden by policy"
    assert GraphError("no answer").describe() == "no answer"


def test_only_a_429_is_about_our_rate() -> None:
    assert GraphTransient("slow down", status=429, throttled=True).about_rate
    assert not GraphTransient("busy", status=503, retry_after_s=5, throttled=True).about_rate
    assert not GraphTransient("timed out", ambiguous=True).about_rate


def test_every_error_of_meetreg_is_caught_as_one() -> None:
    assert isinstance(InputError("bad row"), MeetregError)
    assert isinstance(GraphTransient("busy"), MeetregError)
