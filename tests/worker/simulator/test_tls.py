"""worker.simulator.tls: a fresh CA whose server certificate a client trusting only that CA
accepts for 127.0.0.1 and localhost, and a client certificate for an app's credential."""

from __future__ import annotations

import socket
import ssl
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from worker.simulator.tls import make_client_certificate, make_tls_files, ssl_context


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> None:
    """A TLS handshake over a socket pair, in memory: raises ssl.SSLError when refused."""
    near, far = socket.socketpair()
    near.setblocking(False)
    far.setblocking(False)
    with (
        server.wrap_socket(far, server_side=True, do_handshake_on_connect=False) as server_side,
        client.wrap_socket(
            near, server_hostname=hostname, do_handshake_on_connect=False
        ) as client_side,
    ):
        for _ in range(100):
            done = 0
            for side in (client_side, server_side):
                try:
                    side.do_handshake()
                    done += 1
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
            if done == 2:
                return
        raise AssertionError("the handshake did not finish")


def server_context(files) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert_path, files.key_path)
    return context


@pytest.mark.parametrize("hostname", ["127.0.0.1", "localhost"])
def test_a_client_trusting_the_ca_accepts_the_server(files, hostname):
    handshake(server_context(files), ssl_context(files.ca_path), hostname)


def test_another_name_or_another_ca_is_refused(files, tmp_path):
    other = make_tls_files(tmp_path)

    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(server_context(files), ssl_context(files.ca_path), "example.com")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(server_context(files), ssl_context(other.ca_path), "127.0.0.1")


def test_the_private_key_is_readable_by_its_owner_only(files):
    assert stat.S_IMODE(files.key_path.stat().st_mode) == 0o600


def test_a_client_certificate_is_rsa_and_self_signed():
    key, cert = make_client_certificate("my app")

    assert isinstance(key, rsa.RSAPrivateKey)
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "my app"
