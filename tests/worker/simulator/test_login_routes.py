"""worker.simulator login endpoints, driven by the real MSAL ConfidentialClientApplication."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import msal
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from sim_helpers import ORGANIZER, error_of, fetch_token

from worker import keys
from worker.simulator import SimulatorConfig, SimulatorServer
from worker.simulator.server import GRAPH_SCOPE
from worker.simulator.tls import make_client_certificate

MsalApp = Callable[..., msal.ConfidentialClientApplication]


@pytest.fixture
def msal_app(sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MsalApp]:
    """Build MSAL apps against the simulator, trusting its CA the way production does."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim.ca_path)
    sessions: list[requests.Session] = []

    def build(
        credential: object = None, tenant_id: str | None = None, client_id: str | None = None
    ) -> msal.ConfidentialClientApplication:
        session = requests.Session()
        sessions.append(session)
        return msal.ConfidentialClientApplication(
            client_id or sim.client_id,
            client_credential=credential if credential is not None else sim.client_secret,
            authority=f"{sim.authority_host}/{tenant_id or sim.tenant_id}",
            instance_discovery=False,
            http_client=session,
        )

    yield build
    for session in sessions:
        session.close()


def test_discovery_document_points_back_at_the_simulator(sim, http):
    response = http.get(f"/{sim.tenant_id}/v2.0/.well-known/openid-configuration")

    assert response.status_code == 200
    document = response.json()
    assert document["token_endpoint"] == f"{sim.https_url}/{sim.tenant_id}/oauth2/v2.0/token"
    assert document["issuer"].startswith(sim.https_url)
    assert document["authorization_endpoint"].startswith(sim.https_url)
    assert document["device_authorization_endpoint"].startswith(sim.https_url)


def test_msal_gets_a_token_that_graph_accepts(sim, http, msal_app):
    sim.state.add_user(ORGANIZER)

    result = msal_app().acquire_token_for_client([GRAPH_SCOPE])

    assert result["token_type"] == "Bearer"
    assert result["expires_in"] == 3599
    response = http.get(
        f"/beta{keys.user_path(ORGANIZER)}",
        headers={"Authorization": f"Bearer {result['access_token']}"},
    )
    assert response.status_code == 200
    assert sim.state.stats()["tokens_issued"] == 1


def test_msal_reports_a_wrong_secret_as_invalid_client(msal_app):
    result = msal_app("not-the-secret").acquire_token_for_client([GRAPH_SCOPE])

    assert "access_token" not in result
    assert result["error"] == "invalid_client"
    assert "AADSTS7000215" in result["error_description"]
    assert result["error_codes"] == [7000215]


def test_msal_reports_an_unknown_client_as_unauthorized_client(msal_app):
    result = msal_app(client_id="00000000-0000-0000-0000-000000000000").acquire_token_for_client(
        [GRAPH_SCOPE]
    )

    assert result["error"] == "unauthorized_client"
    assert "AADSTS700016" in result["error_description"]


def test_msal_refuses_an_unknown_tenant(msal_app):
    with pytest.raises(ValueError, match="tenant"):
        msal_app(tenant_id="no-such-tenant")


def test_an_expired_token_gets_401_and_a_new_one_works(sim, http, msal_app):
    sim.state.add_user(ORGANIZER)
    app = msal_app()
    old = app.acquire_token_for_client([GRAPH_SCOPE])["access_token"]

    assert sim.state.expire_tokens() == 1

    # MSAL's cache still offers the token: the server is the one that knows it is dead.
    assert app.acquire_token_for_client([GRAPH_SCOPE])["access_token"] == old
    rejected = http.get(
        f"/beta{keys.user_path(ORGANIZER)}", headers={"Authorization": f"Bearer {old}"}
    )
    assert rejected.status_code == 401
    assert error_of(rejected)["code"] == "InvalidAuthenticationToken"
    assert rejected.headers["WWW-Authenticate"].startswith("Bearer")
    new = fetch_token(sim, http)
    accepted = http.get(
        f"/beta{keys.user_path(ORGANIZER)}", headers={"Authorization": f"Bearer {new}"}
    )
    assert accepted.status_code == 200


def _certificate() -> tuple[str, str, str]:
    """A self-signed RSA certificate: (private key PEM, certificate PEM, SHA-1 thumbprint hex)."""
    key, cert = make_client_certificate()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    cert_der = cert.public_bytes(serialization.Encoding.DER)
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return key_pem, cert_pem, hashlib.sha1(cert_der).hexdigest()  # x5t is the SHA-1 thumbprint


def test_a_certificate_credential_is_verified_against_the_registered_certificate(monkeypatch):
    key_pem, cert_pem, thumbprint = _certificate()
    other_key, _, other_thumbprint = _certificate()
    with SimulatorServer(SimulatorConfig(client_certificates=(cert_pem,))) as sim:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", sim.ca_path)
        results = []
        for credential in (
            {"private_key": key_pem, "thumbprint": thumbprint, "public_certificate": cert_pem},
            {"private_key": other_key, "thumbprint": other_thumbprint},
        ):
            with requests.Session() as session:
                app = msal.ConfidentialClientApplication(
                    sim.client_id,
                    client_credential=credential,
                    authority=f"{sim.authority_host}/{sim.tenant_id}",
                    instance_discovery=False,
                    http_client=session,
                )
                results.append(app.acquire_token_for_client([GRAPH_SCOPE]))

    good, forged = results
    assert "access_token" in good
    assert forged["error"] == "invalid_client"
    assert "AADSTS700027" in forged["error_description"]
