"""Leases kept alive only while still ours."""

from store_helpers import row

from worker.store.outcome_store import OutcomeStore


def test_renewal_keeps_only_leases_still_ours(store: OutcomeStore) -> None:
    store.create_batch("b1", "f.csv", [row(1), row(2)])
    store.claim("b1", row(1), "m1", "a", 10_000)
    store.claim("b1", row(2), "m2", "x", 10_000)
    assert store.renew_leases({"m1": "a", "m2": "a"}, 20_000) == 1
