"""worker.graph.auth against the simulator over HTTPS: real MSAL, real requests, real httpx."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from worker.errors import ConfigError, GraphAuthError, GraphTransient
from worker.graph import GraphClient, MsalTokenSource, build_graph_client, build_http_client
from worker.graph.auth import graph_scope, refresh_after_s
from worker.settings import Settings, load_settings
from worker.simulator import SimulatorConfig, SimulatorServer
from worker.simulator.tls import make_client_certificate

ORGANIZER = "0f3a9c2e-5b7d-4e1f-9a8b-6c5d4e3f2a1b"
UPN = "adele.vance@contoso.example"
MEETING = "MSo1N2Y5ZGFjYy03MWJmLTQ3NDMtYjQxMy01M2EdFGkdRWHJlQ"
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")
PFX_PASSWORD = "pfx-passphrase"


@dataclass(frozen=True)
class Certificate:
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def pem_file(self, path: Path, password: str | None = None) -> Path:
        encryption = (
            serialization.BestAvailableEncryption(password.encode())
            if password
            else serialization.NoEncryption()
        )
        key = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        path.write_bytes(key + self.cert_pem.encode())
        return path

    def pfx_file(self, path: Path, password: str) -> Path:
        path.write_bytes(
            pkcs12.serialize_key_and_certificates(
                b"meetreg",
                self.key,
                self.cert,
                None,
                serialization.BestAvailableEncryption(password.encode()),
            )
        )
        return path


def make_certificate() -> Certificate:
    return Certificate(*make_client_certificate())


@pytest.fixture(scope="module")
def certificate() -> Certificate:
    """The certificate registered on the simulator's app."""
    return make_certificate()


@pytest.fixture(scope="module")
def server(certificate: Certificate) -> Iterator[SimulatorServer]:
    # The app has a secret and a certificate; each test picks one.
    with SimulatorServer(SimulatorConfig(client_certificates=(certificate.cert_pem,))) as sim:
        yield sim


@pytest.fixture
def sim(server: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> SimulatorServer:
    """The module's simulator, emptied, with the process environment pointing at it but
    trusting no CA and using no proxy until a test says so."""
    server.state.reset()
    for name in (*CA_VARIABLES, *PROXY_VARIABLES):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name in ("AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in server.env().items():
        if name not in CA_VARIABLES:
            monkeypatch.setenv(name, value)
    return server


@pytest.fixture
def trust(sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Point the named CA variables at the simulator's CA."""

    def set_ca(*names: str) -> None:
        for name in names:
            monkeypatch.setenv(name, sim.ca_path)

    return set_ca


def settings(**overrides: object) -> Settings:
    """The settings a process would read from the (patched) environment, no .env file."""
    return load_settings(_env_file=None, **overrides)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Secrets, end to end -----------------------------------------------------------------------


def test_a_secret_gets_a_token_and_the_graph_calls_work_end_to_end(sim, trust, closing):
    trust("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
    sim.state.add_user(ORGANIZER, upn=UPN)
    meeting = sim.state.add_meeting(ORGANIZER, MEETING)
    graph = closing(build_graph_client(settings()))

    assert graph.resolve_user_id(UPN) == ORGANIZER
    assert graph.find_meeting_id(ORGANIZER, meeting["joinWebUrl"]) == MEETING
    assert graph.get_registration(ORGANIZER, MEETING) is None
    created = graph.create_registration(ORGANIZER, MEETING, "everyone")
    fetched = graph.get_registration(ORGANIZER, MEETING)

    assert created.status == 201
    assert created.kind == "externalMeetingRegistration"
    assert created.allowed_registrant == "everyone"
    assert fetched is not None
    assert (fetched.id, fetched.kind, fetched.status) == (created.id, created.kind, 200)
    assert sim.state.stats()["tokens_issued"] == 1


def test_a_wrong_secret_is_an_auth_error_that_does_not_repeat_the_secret(sim, trust, closing):
    trust("REQUESTS_CA_BUNDLE")
    secret = "Wr0ng~Secret.Value-123"
    source = closing(MsalTokenSource(settings(client_secret=secret)))

    with pytest.raises(GraphAuthError) as caught:
        source.token()

    error = caught.value
    message = str(error)
    assert secret not in message
    assert "\n" not in message
    assert message == (
        f"token request refused by {sim.authority_host}/{sim.tenant_id}: "
        "invalid_client (AADSTS7000215): Invalid client secret provided."
    )
    assert error.code == "invalid_client"
    assert error.request_id  # Entra's correlation id, for support


def test_an_unknown_tenant_is_an_auth_error(sim, trust, closing):
    trust("REQUESTS_CA_BUNDLE")
    source = closing(MsalTokenSource(settings(tenant_id="no-such-tenant")))

    with pytest.raises(GraphAuthError, match="no-such-tenant") as caught:
        source.token()

    assert "\n" not in str(caught.value)


def test_missing_credentials_are_a_config_error(sim, monkeypatch):
    monkeypatch.delenv("AZURE_CLIENT_SECRET")

    with pytest.raises(ConfigError, match="AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH"):
        MsalTokenSource(settings())


def test_an_unreachable_login_host_is_transient_and_not_ambiguous(sim, closing):
    source = closing(MsalTokenSource(settings(authority_host=f"https://127.0.0.1:{closed_port()}")))

    with pytest.raises(GraphTransient) as caught:
        source.token()

    error = caught.value
    assert error.ambiguous is False
    assert "unreachable: ConnectionError" in str(error)
    assert "\n" not in str(error)


def test_a_login_host_that_never_answers_times_out_as_transient(sim, closing):
    with socket.socket() as silent:  # accepts connections (backlog), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        source = closing(
            MsalTokenSource(
                settings(authority_host=f"https://127.0.0.1:{port}", request_timeout_s=0.5)
            )
        )
        started = time.monotonic()

        with pytest.raises(GraphTransient) as caught:
            source.token()

    assert time.monotonic() - started < 5
    assert caught.value.ambiguous is False


# Certificates ------------------------------------------------------------------------------


@pytest.mark.parametrize("password", [None, "pem-passphrase"])
def test_a_pem_certificate_gets_a_token(sim, trust, closing, certificate, tmp_path, password):
    trust("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
    sim.state.add_meeting(ORGANIZER, MEETING)
    path = certificate.pem_file(tmp_path / "app.pem", password)
    graph = closing(
        build_graph_client(
            settings(
                client_secret=None,
                client_certificate_path=path,
                client_certificate_password=password,
            )
        )
    )

    assert graph.get_registration(ORGANIZER, MEETING) is None
    assert sim.state.stats()["tokens_issued"] == 1


def test_a_pfx_certificate_gets_a_token(sim, trust, closing, certificate, tmp_path):
    trust("REQUESTS_CA_BUNDLE")
    path = certificate.pfx_file(tmp_path / "app.pfx", PFX_PASSWORD)
    source = closing(
        MsalTokenSource(
            settings(
                client_secret=None,
                client_certificate_path=path,
                client_certificate_password=PFX_PASSWORD,
            )
        )
    )

    assert source.token()
    assert sim.state.stats()["tokens_issued"] == 1


def test_a_certificate_the_app_does_not_know_is_refused(sim, trust, closing, tmp_path):
    trust("REQUESTS_CA_BUNDLE")
    path = make_certificate().pem_file(tmp_path / "other.pem")
    source = closing(MsalTokenSource(settings(client_secret=None, client_certificate_path=path)))

    with pytest.raises(GraphAuthError, match=r"invalid_client \(AADSTS700027\)"):
        source.token()


def test_a_wrong_pfx_password_is_a_config_error_at_construction(sim, certificate, tmp_path):
    path = certificate.pfx_file(tmp_path / "app.p12", PFX_PASSWORD)

    with pytest.raises(ConfigError, match="AZURE_CLIENT_CERTIFICATE_PASSWORD") as caught:
        MsalTokenSource(
            settings(
                client_secret=None,
                client_certificate_path=path,
                client_certificate_password="not-it",
            )
        )

    assert "not-it" not in str(caught.value)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "cannot read"),
        (b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", "PEM"),
        ("key of another certificate", "matches its private key"),
    ],
)
def test_an_unusable_pem_file_is_a_config_error(sim, certificate, tmp_path, content, match):
    path = tmp_path / "app.pem"
    if content == "key of another certificate":
        other = make_certificate()
        path.write_bytes(
            other.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            + certificate.cert_pem.encode()
        )
    elif content is not None:
        path.write_bytes(content)

    with pytest.raises(ConfigError, match=match):
        MsalTokenSource(settings(client_secret=None, client_certificate_path=path))


# Which CA variables count ------------------------------------------------------------------


def test_requests_ca_bundle_alone_is_enough_for_login(sim, trust, closing):
    trust("REQUESTS_CA_BUNDLE")
    source = closing(MsalTokenSource(settings()))

    assert source.token()


def test_ssl_cert_file_alone_is_enough_for_login_and_graph(sim, trust, closing):
    trust("SSL_CERT_FILE")
    sim.state.add_meeting(ORGANIZER, MEETING)
    graph = closing(build_graph_client(settings()))

    assert graph.get_registration(ORGANIZER, MEETING) is None
    assert sim.state.stats()["tokens_issued"] == 1


def test_without_the_simulator_ca_login_fails_as_transient(sim, closing):
    source = closing(MsalTokenSource(settings()))

    with pytest.raises(GraphTransient, match="SSLError"):
        source.token()


@pytest.mark.parametrize(
    ("environment", "login", "graph"),
    [
        ({}, None, None),
        ({"SSL_CERT_DIR": "/d"}, "/d", "/d"),
        ({"SSL_CERT_FILE": "/f", "SSL_CERT_DIR": "/d"}, "/f", "/f"),
        ({"CURL_CA_BUNDLE": "/c", "SSL_CERT_FILE": "/f"}, "/c", "/f"),
        ({"REQUESTS_CA_BUNDLE": "/r", "CURL_CA_BUNDLE": "/c", "SSL_CERT_FILE": "/f"}, "/r", "/f"),
        ({"REQUESTS_CA_BUNDLE": "", "SSL_CERT_FILE": "/f"}, "/f", "/f"),
        ({"REQUESTS_CA_BUNDLE": "/r"}, "/r", "/r"),
        ({"CURL_CA_BUNDLE": "/c", "SSL_CERT_DIR": "/d"}, "/c", "/d"),
    ],
)
def test_ca_precedence(monkeypatch, environment, login, graph):
    for name in CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    loaded = settings()
    assert loaded.login_ca == (Path(login) if login else None)
    assert loaded.graph_ca == (Path(graph) if graph else None)


def test_https_proxy_is_honoured_for_login_and_graph(sim, trust, monkeypatch, closing):
    trust("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port()}")
    source = closing(MsalTokenSource(settings()))
    graph = closing(GraphClient(build_http_client(settings(), None), sim.graph_base_url))

    with pytest.raises(GraphTransient, match="ProxyError"):
        source.token()
    with pytest.raises(GraphTransient) as caught:
        graph.get_registration(ORGANIZER, MEETING)
    assert caught.value.ambiguous is False  # the proxy refused the connection
    assert sim.state.stats()["login_requests_by_status"] == {}


# Token life cycle --------------------------------------------------------------------------


def test_expired_tokens_are_replaced_once_and_the_call_succeeds(sim, trust, closing):
    trust("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
    sim.state.add_meeting(ORGANIZER, MEETING)
    graph = closing(build_graph_client(settings(envelope_size=1)))  # one request per call
    graph.create_registration(ORGANIZER, MEETING, "everyone")
    issued = sim.state.stats()["tokens_issued"]

    assert sim.state.expire_tokens() == 1
    registration = graph.get_registration(ORGANIZER, MEETING)

    assert registration is not None
    assert sim.state.stats()["tokens_issued"] == issued + 1
    statuses = [status for method, _, status in sim.state.requests if method == "GET"]
    assert statuses[-2:] == [401, 200]


def test_a_stale_token_another_caller_replaced_is_not_replaced_again(sim, trust, closing):
    trust("REQUESTS_CA_BUNDLE")
    source = closing(MsalTokenSource(settings()))
    first = source.token()

    second = source.token(stale=first)
    again = source.token(stale=first)

    assert second != first
    assert again == second == source.token()
    assert sim.state.stats()["tokens_issued"] == 2


def test_32_threads_on_a_cold_source_get_one_token(sim, trust, closing):
    trust("REQUESTS_CA_BUNDLE")
    source = closing(MsalTokenSource(settings()))
    start = threading.Barrier(32)

    def fetch() -> str:
        start.wait()
        return source.token()

    with ThreadPoolExecutor(max_workers=32) as pool:
        tokens = list(pool.map(lambda _: fetch(), range(32)))

    assert len(set(tokens)) == 1
    assert sim.state.stats()["tokens_issued"] == 1
    assert sim.state.stats()["login_requests_by_status"] == {
        "GET 200": 1,
        "POST 200": 1,
    }  # discovery, token


# Pure helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expires_in_s", "refresh_after"),
    [(3599, 3299), (3600, 3300), (600, 300), (300, 150), (60, 30), (0, 0), (-5, 0)],
)
def test_tokens_are_refreshed_five_minutes_early_or_at_half_life(expires_in_s, refresh_after):
    assert refresh_after_s(expires_in_s) == refresh_after


@pytest.mark.parametrize(
    ("graph_base_url", "scope"),
    [
        ("https://graph.microsoft.com/beta", "https://graph.microsoft.com/.default"),
        ("https://graph.microsoft.us/v1.0", "https://graph.microsoft.us/.default"),
        (
            "https://microsoftgraph.chinacloudapi.cn/beta",
            "https://microsoftgraph.chinacloudapi.cn/.default",
        ),
        ("https://127.0.0.1:8443/beta", "https://127.0.0.1:8443/.default"),
    ],
)
def test_the_scope_is_the_default_scope_of_the_graph_host(graph_base_url, scope):
    assert graph_scope(graph_base_url) == scope
