"""Graph tokens: where they come from (`TokenSource`), how they ride (`BearerAuth`).

`SharedTokenSource` is what every production source shares: a local copy of the current
token behind a lock, so that 32 threads ask the login host once, not 32 times, and the
translation of msal and requests errors into GraphAuthError / GraphTransient. Its kinds:

    MsalTokenSource             here: app-only, a secret or a certificate
    ManagedIdentityTokenSource  managed_identity.py: app-only, the Azure host's identity
    DelegatedTokenSource        delegated.py: the organizer who ran `meetreg login`

`credentials.build_token_source` picks one from MEETREG_AUTH.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from requests.adapters import HTTPAdapter

from worker.errors import ConfigError, GraphAuthError, GraphTransient
from worker.settings import AuthMode, Settings

# Hosts MSAL can validate through Microsoft's instance discovery; any other authority
# (the simulator, an authenticating proxy) must be taken as configured.
MICROSOFT_LOGIN_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "sts.windows.net",
        "login-us.microsoftonline.com",
        "login.microsoftonline.us",
        "login.usgovcloudapi.net",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
        "login.microsoftonline.de",
    }
)
REFRESH_MARGIN_S = 300.0
# OAuth errors (RFC 6749 5.2 and Entra) that say "later", not "never".
_TRANSIENT_OAUTH_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
_AADSTS = re.compile(r"AADSTS(\d+)")
_MAX_DETAIL = 200


class TokenSource(Protocol):
    """Hands out bearer tokens for Graph."""

    def token(self, *, stale: str | None = None) -> str:
        """A live token. `stale` is one Graph just rejected: return a different one.

        Raises GraphAuthError (refused), GraphTransient (login host unreachable).
        """
        ...


class StaticTokenSource:
    """Always the same token: for tests and for a token obtained elsewhere."""

    def __init__(self, value: str) -> None:
        self.value = value

    def token(self, *, stale: str | None = None) -> str:
        return self.value


class BearerAuth(httpx.Auth):
    """Sets `Authorization: Bearer ...`; on a 401 gets a fresh token and resends once.

    A second 401 goes back to the caller: a token issued a moment ago was refused, which
    is a permission or configuration problem that another token will not fix.
    """

    def __init__(self, source: TokenSource) -> None:
        self.source = source

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.source.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self.source.token(stale=token)}"
            yield request

    def close(self) -> None:
        """Close the token source if it holds connections (MsalTokenSource does)."""
        close = getattr(self.source, "close", None)
        if callable(close):
            close()


class SharedTokenSource:
    """What every MSAL-backed source shares: one token held behind a lock and fetched again
    5 minutes before it expires, and msal / requests errors translated.

    Subclasses say how a token is fetched (`_acquire`, MSAL's result dict). `authority` is
    where tokens come from, named in every error.
    """

    def __init__(
        self,
        authority: str,
        timeout_s: float,
        *,
        secrets: tuple[str, ...] = (),
        clock: Callable[[], float] = time.monotonic,
        ca: Path | None = None,
    ) -> None:
        self.authority = authority
        self._secrets = tuple(secret for secret in secrets if secret)
        self._session = login_session(timeout_s, ca)
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0

    def token(self, *, stale: str | None = None) -> str:
        """A live token; see TokenSource.token. Callers queue on the lock while one fetches."""
        with self._lock:
            current = self._token
            if current is not None and current != stale and self._clock() < self._refresh_at:
                return current  # fresh, or another thread already replaced the stale one
            return self._fetch(forget=current is not None and current == stale)

    def close(self) -> None:
        """Close the login session's connections."""
        self._session.close()

    def _acquire(self, *, forget: bool) -> Any:
        """MSAL's answer: a dict with `access_token`, or with `error`. `forget`: the token
        held was just refused by Graph, so MSAL's cache must not hand it back."""
        raise NotImplementedError

    def _fetch(self, *, forget: bool) -> str:
        result = self._call(lambda: self._acquire(forget=forget))
        token = result.get("access_token") if isinstance(result, dict) else None
        if not isinstance(token, str) or not token:
            raise self._refused(result if isinstance(result, dict) else {})
        self._token = token
        self._refresh_at = self._clock() + refresh_after_s(_number(result.get("expires_in")))
        return token

    def _build_app(self, build: Callable[[], Any]) -> Any:
        """`build()` an MSAL application, which reads the tenant's configuration at once:
        requests errors become GraphTransient, an unknown tenant or host GraphAuthError."""
        try:
            return build()
        except requests.RequestException as exc:
            raise self._unreachable(exc) from exc
        except ValueError as exc:
            raise GraphAuthError(
                f"token request refused by {self.authority}: {self._detail(str(exc))}",
                code="invalid_authority",
            ) from exc

    def _call(self, call: Callable[[], Any]) -> Any:
        """An MSAL call, its msal / requests errors translated as token fetches are."""
        try:
            return call()
        except requests.RequestException as exc:
            raise self._unreachable(exc) from exc
        except ValueError as exc:  # a body that is not JSON: a proxy's page, say
            raise GraphTransient(
                f"unexpected answer from {self.authority}", ambiguous=False
            ) from exc

    def _unreachable(self, exc: requests.RequestException) -> GraphTransient:
        return GraphTransient(
            f"login host of {self.authority} unreachable: {type(exc).__name__}", ambiguous=False
        )

    def _refused(self, result: dict[str, Any]) -> GraphTransient | GraphAuthError:
        error = str(result.get("error") or "no_token")
        description = str(result.get("error_description") or "")
        found = _AADSTS.search(description)
        message = f"token request refused by {self.authority}: {error}"
        if found:
            message += f" (AADSTS{found.group(1)})"
        detail = self._detail(_AADSTS.sub("", description, count=1).lstrip(": "))
        if detail:
            message += f": {detail}"
        request_id = result.get("correlation_id")
        request_id = request_id if isinstance(request_id, str) else None
        if error in _TRANSIENT_OAUTH_ERRORS:
            return GraphTransient(message, code=error, request_id=request_id, ambiguous=False)
        return GraphAuthError(message, code=error, request_id=request_id)

    def _detail(self, text: str) -> str:
        """The first sentence of `text` on one line, short, with any secret blanked out."""
        line = text.strip().splitlines()[0] if text.strip() else ""
        sentence = re.match(r".+?[.!?](?=\s|$)", line)
        detail = (sentence.group(0) if sentence else line)[:_MAX_DETAIL]
        for secret in self._secrets:
            detail = detail.replace(secret, "***")
        return detail


class MsalTokenSource(SharedTokenSource):
    """Client-credentials tokens from Entra through one MSAL ConfidentialClientApplication.

    Raises ConfigError at construction when credentials are missing or the certificate
    cannot be used; `token()` raises GraphAuthError or GraphTransient. The MSAL app itself
    is built on first use: building it already talks to the login host.
    """

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> None:
        settings.require_credentials()
        secret = settings.client_secret.get_secret_value() if settings.client_secret else ""
        super().__init__(
            f"{settings.authority_host}/{settings.tenant_id}",
            settings.request_timeout_s,
            secrets=(secret,),
            clock=clock,
            ca=settings.login_ca,
        )
        self.scopes = [graph_scope(settings.graph_base_url)]
        self._client_id = settings.client_id
        self._credential = _credential(settings)
        self._instance_discovery = uses_instance_discovery(settings.authority_host)
        self._app: Any = None  # msal ships no type hints

    def _acquire(self, *, forget: bool) -> Any:
        app = self._application()
        if forget:
            # MSAL's cache would hand back the very token Graph just refused.
            app.remove_tokens_for_client()
        return app.acquire_token_for_client(scopes=self.scopes)

    def _application(self) -> Any:
        if self._app is None:
            self._app = self._build_app(
                lambda: msal.ConfidentialClientApplication(
                    self._client_id,
                    client_credential=self._credential,
                    authority=self.authority,
                    instance_discovery=self._instance_discovery,
                    http_client=self._session,
                )
            )
        return self._app


def uses_instance_discovery(authority_host: str) -> bool:
    """Whether MSAL may validate this login host through Microsoft's instance discovery."""
    return urlsplit(authority_host).hostname in MICROSOFT_LOGIN_HOSTS


def graph_scope(graph_base_url: str) -> str:
    """The `.default` scope of the Graph resource `graph_base_url` lives on."""
    parts = urlsplit(graph_base_url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/.default"


def refresh_after_s(expires_in_s: float) -> float:
    """When to fetch again: 5 minutes before expiry, or at half-life for shorter tokens."""
    expires_in_s = max(expires_in_s, 0.0)
    return expires_in_s - min(REFRESH_MARGIN_S, expires_in_s / 2)


def login_session(timeout_s: float, ca: Path | None = None) -> requests.Session:
    """The requests session MSAL talks over: trusting `ca` (Settings.login_ca, which a
    `.env` may set) else requests' own bundle, with a timeout.

    `trust_env` stays on, so HTTPS_PROXY / NO_PROXY keep working (and requests still lets
    REQUESTS_CA_BUNDLE in the environment win, which Settings.login_ca puts first too).
    """
    session = requests.Session()
    session.verify = str(ca) if ca is not None else True
    adapter = _TimeoutAdapter(timeout_s)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request a timeout: MSAL sets none on a session it did not build, and a
    hung login host would otherwise hold the token lock, and every worker thread, forever."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(max_retries=1)  # what MSAL mounts on its own sessions
        self.timeout_s = timeout_s

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        timeout = self.timeout_s if timeout is None else timeout
        return super().send(request, stream, timeout, verify, cert, proxies)


def _credential(settings: Settings) -> str | dict[str, str]:
    # Unless MEETREG_AUTH says otherwise, the secret wins when both are set, as in
    # azure-identity's EnvironmentCredential.
    if settings.auth_mode is AuthMode.SECRET:
        assert settings.client_secret is not None  # require_credentials() checked
        return settings.client_secret.get_secret_value()
    assert settings.client_certificate_path is not None  # require_credentials() checked
    password = settings.client_certificate_password
    return _certificate(
        settings.client_certificate_path, password.get_secret_value() if password else None
    )


def _certificate(path: Path, password: str | None) -> dict[str, str]:
    """MSAL's certificate credential for a PEM (key + certificate) or PKCS#12 file.

    The file is opened here, so a wrong path or passphrase is a ConfigError at start-up
    rather than a failed token request on every task.
    """
    name = "AZURE_CLIENT_CERTIFICATE_PATH"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path} ({exc.strerror})") from None
    secret = password.encode() if password else None
    if path.suffix.lower() in (".pfx", ".p12") or b"-----BEGIN" not in data:
        try:
            key, cert, _ = pkcs12.load_key_and_certificates(data, secret)
        except ValueError:
            raise ConfigError(
                f"{name}: cannot open {path} as PKCS#12 (wrong AZURE_CLIENT_CERTIFICATE_PASSWORD?)"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey) or cert is None:
            raise ConfigError(f"{name}: {path} must hold an RSA private key and its certificate")
        credential = {"private_key_pfx_path": str(path)}
        if password:
            credential["passphrase"] = password
        return credential
    try:
        pem_key = serialization.load_pem_private_key(data, secret)
        certificates = x509.load_pem_x509_certificates(data)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name}: {path} needs a private key and its certificate in PEM "
            "(and AZURE_CLIENT_CERTIFICATE_PASSWORD if the key is encrypted)"
        ) from None
    if not isinstance(pem_key, rsa.RSAPrivateKey):
        raise ConfigError(f"{name}: Entra accepts RSA keys only")
    public = _spki(pem_key.public_key())
    leaf = next((c for c in certificates if _spki(c.public_key()) == public), None)
    if leaf is None:
        raise ConfigError(f"{name}: no certificate in {path} matches its private key")
    return {
        # Handed to MSAL decrypted, so its passphrase handling (which differs across
        # versions) never matters; it stays in memory.
        "private_key": pem_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        # SHA-1 (x5t) works on every MSAL >= 1.29 we allow; Entra accepts it.
        "thumbprint": leaf.fingerprint(hashes.SHA1()).hex(),  # noqa: S303 - a name
    }


def _spki(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
