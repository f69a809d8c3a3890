"""worker.simulator.tokens: which client gets a token, and how long Graph accepts it."""

from __future__ import annotations

import time

import httpx
import pytest
from sim_helpers import ORGANIZER, fetch_token, wait_until

from worker import keys
from worker.simulator import SimulatorConfig, SimulatorServer, ssl_context
from worker.simulator.errors import LoginFailure
from worker.simulator.tokens import TokenIssuer

FORM = {
    "grant_type": "client_credentials",
    "client_id": "app",
    "client_secret": "s3cret",
    "scope": "https://graph.microsoft.com/.default",
}


def issuer(ttl_s: float = 10.0) -> TokenIssuer:
    return TokenIssuer("Tenant-A", "app", "s3cret", ttl_s=ttl_s)


def test_a_token_lives_for_the_ttl_though_it_says_3599_seconds():
    tokens = issuer()
    token = tokens.issue("tenant-a", FORM, now=100.0)
    access = token["access_token"]

    assert token["expires_in"] == 3599
    assert not issuer().valid(access, now=100.0)  # another issuer never heard of it
    assert tokens.valid(access, now=109.9)
    assert not tokens.valid(access, now=110.0)
    assert not tokens.valid(None) and not tokens.valid("")


@pytest.mark.parametrize(
    ("change", "error", "aadsts"),
    [
        ({"grant_type": "password"}, "unsupported_grant_type", 70003),
        ({"scope": "User.Read"}, "invalid_scope", 1002012),
        ({"client_secret": "wrong"}, "invalid_client", 7000215),
    ],
)
def test_a_bad_request_is_refused_as_entra_would(change, error, aadsts):
    with pytest.raises(LoginFailure) as refused:
        issuer().issue("tenant-a", {**FORM, **change})

    assert (refused.value.error, refused.value.aadsts) == (error, aadsts)


def test_expire_all_counts_the_live_tokens_and_kills_them():
    tokens = issuer()
    now = time.monotonic()
    tokens.mint(now - 20.0)  # already dead
    app = tokens.mint(now)
    delegated = tokens.mint(now, subject=ORGANIZER)

    assert (tokens.subject(delegated), tokens.subject(app)) == (ORGANIZER, None)
    assert tokens.expire_all() == 2
    assert not tokens.valid(app) and not tokens.valid(delegated)


def test_tokens_die_after_the_configured_ttl_although_expires_in_says_3599():
    with (
        SimulatorServer(SimulatorConfig(token_ttl_s=0.3)) as short,
        httpx.Client(base_url=short.https_url, verify=ssl_context(short.ca_path)) as http,
    ):
        short.state.add_user(ORGANIZER)
        token = fetch_token(short, http)
        path = f"/beta{keys.user_path(ORGANIZER)}"
        headers = {"Authorization": f"Bearer {token}"}
        assert http.get(path, headers=headers).status_code == 200

        wait_until(lambda: not short.state.token_valid(token))

        assert http.get(path, headers=headers).status_code == 401
