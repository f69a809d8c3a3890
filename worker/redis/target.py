"""What REDIS_URL names, read once into a `RedisTarget` every Redis client is built from.

    redis://[user:password@]host:port/db      plain TCP
    rediss://[user:password@]host:port/db     TLS; the server's certificate is verified
        [?ssl_ca_certs=/path/ca.pem]          against this CA file, else SSL_CERT_FILE,
        [&ssl_cert_reqs=required]             else the system's CAs; `none` is an opt-out
        [&ssl_certfile=...&ssl_keyfile=...]   a client certificate (tls-auth-clients yes)
    unix:///path/redis.sock[?db=0]            a local socket
    sentinel://[user:password@]host:port[/db];sentinel://host2:port
                                              a Redis behind Sentinels (Celery's form), the
                                              master named by MEETREG_REDIS_SENTINEL_MASTER;
                                              user and password are the master's

meetreg's own clients (redis-py), Celery's broker (kombu) and `celery beat` (redbeat) each
spell TLS and Sentinel differently; this module turns the one URL into what each expects, so
that, say, kombu never falls back to its unverified TLS default for a bare `rediss://`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

SENTINEL_SCHEME = "sentinel"
SCHEMES = ("redis", "rediss", "unix", SENTINEL_SCHEME)
DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379
# redis-py's spelling of SSLContext.verify_mode, which kombu and redbeat pass through.
CERT_REQS = ("required", "optional", "none")
# TLS options read from a rediss:// query: handed to every client as keyword arguments.
_TLS_FILE_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """One Redis (over TCP, TLS or a socket), or the master a set of Sentinels points at.

    `url` is REDIS_URL without its TLS options (those are in `tls`); for Sentinel it is the
    normalised `sentinel://...;sentinel://...` list with every port spelled out.
    """

    url: str = field(repr=False)  # may hold a password
    tls: dict[str, str] | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    db: int = 0

    @property
    def is_sentinel(self) -> bool:
        return bool(self.sentinels)

    @property
    def where(self) -> str:
        """Where Redis is, for messages: never the password."""
        if self.is_sentinel:
            nodes = ", ".join(f"{host}:{port}" for host, port in self.sentinels)
            return f"master {self.master_name} via Sentinel {nodes}"
        parts = urlsplit(self.url)
        if parts.scheme == "unix":
            return parts.path
        return f"{parts.hostname}:{parts.port or DEFAULT_PORT}"


def parse_redis_url(url: str, *, sentinel_master: str | None = None) -> RedisTarget:
    """Read REDIS_URL. Raises ValueError with a message that never repeats the URL (it may
    hold a password)."""
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ValueError("must start with redis://, rediss://, unix:// or sentinel://")
    if scheme == SENTINEL_SCHEME:
        return _parse_sentinels(url, sentinel_master)
    if scheme == "rediss":
        return _parse_tls(url)
    if urlsplit(url).hostname is None and scheme != "unix":
        raise ValueError("names no host")
    return RedisTarget(url=url)


def _parse_tls(url: str) -> RedisTarget:
    parts = urlsplit(url)
    if parts.hostname is None:
        raise ValueError("names no host")
    query = dict(parse_qsl(parts.query))
    tls = {"ssl_cert_reqs": query.pop("ssl_cert_reqs", "required").lower()}
    if tls["ssl_cert_reqs"] not in CERT_REQS:
        raise ValueError(f"ssl_cert_reqs must be one of {', '.join(CERT_REQS)}")
    for name in _TLS_FILE_OPTIONS:
        if name in query:
            path = query.pop(name)
            if not Path(path).is_file():
                raise ValueError(f"{name} names no readable file")
            tls[name] = path
    rest = urlunsplit(parts._replace(query=urlencode(query)))
    return RedisTarget(url=rest, tls=tls)


def _parse_sentinels(url: str, master: str | None) -> RedisTarget:
    nodes = [urlsplit(part.strip()) for part in url.split(";") if part.strip()]
    if any(node.scheme != SENTINEL_SCHEME or node.hostname is None for node in nodes):
        raise ValueError("a Sentinel list is sentinel://host:port;sentinel://host:port;...")
    if any(node.query for node in nodes):
        raise ValueError("sentinel:// takes no options (TLS to Sentinel is not supported)")
    if not master or not master.strip():
        raise ValueError("sentinel:// needs MEETREG_REDIS_SENTINEL_MASTER (the master's name)")
    first = nodes[0]
    try:
        db = int(first.path.strip("/") or 0)
        sentinels = tuple((str(n.hostname), n.port or DEFAULT_SENTINEL_PORT) for n in nodes)
    except ValueError:
        raise ValueError("a Sentinel's port or the database number is not a number") from None
    credentials = first.netloc.rpartition("@")[0] + "@" if "@" in first.netloc else ""
    normalised = ";".join(
        f"{SENTINEL_SCHEME}://{credentials if i == 0 else ''}{_host(host)}:{port}/{db}"
        for i, (host, port) in enumerate(sentinels)
    )
    return RedisTarget(
        url=normalised,
        sentinels=sentinels,
        master_name=master.strip(),
        username=unquote(first.username) if first.username else None,
        password=unquote(first.password) if first.password else None,
        db=db,
    )


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host  # an IPv6 address
