"""Run the simulator: `SimulatorServer` in a background thread, or `python -m worker.simulator`.

One HTTPS listener always (MSAL refuses http:// authorities), plus an optional plain-HTTP
one sharing the same state, for benchmarks where TLS costs too much CPU. Both uvicorn
servers run in one event loop in one background thread and bind 127.0.0.1 only.

    with SimulatorServer(SimulatorConfig(conflict="replace")) as sim:
        sim.state.add_meeting(organizer_id, meeting_id)
        os.environ.update(sim.env())

Graph's calls *out* (notifications to a subscriber's webhook) are made from the server's
event loop: `notify_event`, `notify_lifecycle` and `deliver` may be called from any other
thread and return once the subscriber has answered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shlex
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self, TypeVar

import httpx
import uvicorn

from worker.simulator.app import SimulatorApp
from worker.simulator.config import DEFAULT_MAX_SUBSCRIPTION_MINUTES, FaultConfig, SimulatorConfig
from worker.simulator.notifications import Delivery
from worker.simulator.state import SimulatorState
from worker.simulator.tls import TlsFiles, make_tls_files, ssl_context

HOST = "127.0.0.1"
_START_TIMEOUT_S = 15.0
_STOP_TIMEOUT_S = 30.0
# Longer than any client pool's idle time, so the server never closes a connection the
# client is just reusing (a source of spurious "server disconnected" errors).
_KEEP_ALIVE_S = 75
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# Deliveries to several subscribers run together, each bounded by its own 10 s timeout.
_OUTBOUND_TIMEOUT_S = 60.0
T = TypeVar("T")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.new_event_loop
    return uvloop.new_event_loop


class SimulatorServer:
    """The Graph and Entra simulator on 127.0.0.1, run in a background thread.

    Use as a context manager, or call `start()` and `stop()`. `state` is the live
    SimulatorState, usable from the calling thread while the server runs.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.state = SimulatorState(self.config)
        self.app = SimulatorApp(self.state)
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._tls: TlsFiles | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._https_port: int | None = None
        self._http_port: int | None = None

    # Life cycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Start both listeners; returns once they accept connections.

        Raises RuntimeError if a listener cannot start (a port in use, say).
        """
        if self._thread is not None:
            raise RuntimeError("the simulator is already running")
        if self.config.tls_dir is not None:
            self._tls = make_tls_files(self.config.tls_dir)
        else:
            self._tempdir = tempfile.TemporaryDirectory(prefix="meetreg-simulator-")
            self._tls = make_tls_files(Path(self._tempdir.name))
        servers = [self._uvicorn(self.config.https_port, self._tls)]
        if self.config.plain_http:
            servers.append(self._uvicorn(self.config.http_port, None))
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(
            target=self._run, args=(servers,), name="meetreg-simulator", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S) or self._error is not None:
            error = self._error
            self.stop()
            raise RuntimeError(f"the simulator did not start: {error!r}") from error
        return self

    def stop(self) -> None:
        """Stop both listeners, end simulated stalls, and remove the temporary files."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is not None:
            if loop is not None and stopping is not None:
                with contextlib.suppress(RuntimeError):  # the loop already ended
                    loop.call_soon_threadsafe(stopping.set)
            thread.join(_STOP_TIMEOUT_S)
        self._thread = self._loop = self._stopping = None
        self._https_port = self._http_port = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = self._tls = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Where it is --------------------------------------------------------------------------

    @property
    def https_url(self) -> str:
        """ "https://127.0.0.1:PORT": login, Graph (under /beta and /v1.0), the control API."""
        if self._https_port is None:
            raise RuntimeError("the simulator is not running")
        return f"https://{HOST}:{self._https_port}"

    @property
    def http_url(self) -> str | None:
        """ "http://127.0.0.1:PORT" when `plain_http` is on, else None."""
        return f"http://{HOST}:{self._http_port}" if self._http_port is not None else None

    @property
    def graph_base_url(self) -> str:
        """Graph's beta root, where meetreg registers (its GRAPH_BASE_URL)."""
        return f"{self.https_url}/beta"

    @property
    def graph_v1_url(self) -> str:
        """Graph's v1.0 root, where meetreg reads events and subscribes to them."""
        return f"{self.https_url}/v1.0"

    @property
    def authority_host(self) -> str:
        return self.https_url

    @property
    def ca_path(self) -> str:
        """PEM file of the CA to trust (SSL_CERT_FILE, REQUESTS_CA_BUNDLE)."""
        if self._tls is None:
            raise RuntimeError("the simulator is not running")
        return str(self._tls.ca_path)

    @property
    def tenant_id(self) -> str:
        return self.config.tenant_id

    @property
    def client_id(self) -> str:
        return self.config.client_id

    @property
    def client_secret(self) -> str:
        return self.config.client_secret

    def fetch_token(self, http: httpx.Client | None = None) -> str:
        """A client-credentials token from this simulator's login endpoint, as a test or a
        benchmark needs one without MSAL. `http` (based anywhere) is used if given."""
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scope": GRAPH_SCOPE,
        }
        url = f"{self.https_url}/{self.tenant_id}/oauth2/v2.0/token"
        if http is not None:
            response = http.post(url, data=form)
        else:
            with httpx.Client(verify=ssl_context(self.ca_path), timeout=30) as login:
                response = login.post(url, data=form)
        response.raise_for_status()
        return str(response.json()["access_token"])

    def env(self, graph_over_http: bool = False) -> dict[str, str]:
        """The environment a meetreg process needs to use this simulator.

        `graph_over_http` points GRAPH_BASE_URL at the plain-HTTP listener (login stays
        on HTTPS: MSAL insists).
        """
        graph = self.graph_base_url
        if graph_over_http:
            if self.http_url is None:
                raise RuntimeError("the simulator was started without plain_http")
            graph = f"{self.http_url}/beta"
        return {
            "GRAPH_BASE_URL": graph,
            "AZURE_AUTHORITY_HOST": self.authority_host,
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_CLIENT_ID": self.client_id,
            "AZURE_CLIENT_SECRET": self.client_secret,
            "SSL_CERT_FILE": self.ca_path,
            "REQUESTS_CA_BUNDLE": self.ca_path,
        }

    def managed_identity_env(self, client_id: str | None = None) -> dict[str, str]:
        """The environment of meetreg on an App Service whose identity endpoint is this
        simulator (MEETREG_AUTH=managed-identity, no secret); `client_id` picks a
        user-assigned identity (one of `user_assigned_identities`)."""
        env = self._graph_env()
        env.update(
            MEETREG_AUTH="managed-identity",
            IDENTITY_ENDPOINT=f"{self.https_url}/msi/token",
            IDENTITY_HEADER=self.config.identity_header,
        )
        if client_id:
            env["AZURE_CLIENT_ID"] = client_id
        return env

    def delegated_env(self, token_cache: Path) -> dict[str, str]:
        """The environment of `meetreg login` and of delegated runs against this simulator
        (MEETREG_AUTH=delegated, the token cache at `token_cache`, no secret)."""
        env = self.env()
        del env["AZURE_CLIENT_SECRET"]
        env.update(MEETREG_AUTH="delegated", MEETREG_TOKEN_CACHE=str(token_cache))
        return env

    def _graph_env(self) -> dict[str, str]:
        return {
            "GRAPH_BASE_URL": self.graph_base_url,
            "SSL_CERT_FILE": self.ca_path,
            "REQUESTS_CA_BUNDLE": self.ca_path,
        }

    # Graph calling out ---------------------------------------------------------------------

    def notify_event(
        self, user_id: str, event_id: str, change_type: str = "created", retries: int = 0
    ) -> list[Delivery]:
        """Notify every live subscription to the user's events (objectId or UPN) that covers
        `change_type` ("created", "updated", "deleted"), as Graph does: one POST each to its
        notificationUrl, sent again up to `retries` times while answered 5xx or not at all.
        Returns every attempt made, once all are answered. Raises ValueError for an unknown
        user, event (unless "deleted") or change type, or a negative `retries`."""
        webhooks = self.app.webhooks
        return self._on_loop(webhooks.notify_event(user_id, event_id, change_type, retries))

    def notify_lifecycle(
        self, subscription_id: str, lifecycle_event: str, retries: int = 0
    ) -> list[Delivery]:
        """POST `reauthorizationRequired`, `subscriptionRemoved` (which deletes the
        subscription first) or `missed` to its lifecycleNotificationUrl, with redeliveries
        as `notify_event`; [] without one. Raises ValueError for an unknown subscription or
        lifecycle event, or a negative `retries`."""
        webhooks = self.app.webhooks
        return self._on_loop(webhooks.notify_lifecycle(subscription_id, lifecycle_event, retries))

    def deliver(self, url: str, payload: dict[str, Any], retries: int = 0) -> Delivery:
        """POST any JSON `payload` to `url`, as Graph would (a redelivery, a forgery), with
        redeliveries as `notify_event`. Returns the last attempt (`attempt` counts them;
        all are in `state.deliveries()`). Raises ValueError for a negative `retries`."""
        return self._on_loop(self.app.webhooks.deliver(url, payload, retries=retries))[-1]

    def _on_loop(self, call: Coroutine[Any, Any, T]) -> T:
        """Run `call` in the server's event loop and wait for its result."""
        loop = self._loop
        if loop is None:
            call.close()
            raise RuntimeError("the simulator is not running")
        if threading.current_thread() is self._thread:
            call.close()
            # Waiting here would stop the very loop that must make the call.
            raise RuntimeError("call the notify methods from another thread than the server's")
        return asyncio.run_coroutine_threadsafe(call, loop).result(_OUTBOUND_TIMEOUT_S)

    # The background thread ----------------------------------------------------------------

    def _uvicorn(self, port: int, tls: TlsFiles | None) -> uvicorn.Server:
        config = uvicorn.Config(
            self.app,
            host=HOST,
            port=port,
            ssl_certfile=str(tls.cert_path) if tls else None,
            ssl_keyfile=str(tls.key_path) if tls else None,
            log_config=None,  # leave the host process's logging alone
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            backlog=4096,
            timeout_keep_alive=_KEEP_ALIVE_S,
            timeout_graceful_shutdown=5,
        )
        return uvicorn.Server(config)

    def _run(self, servers: list[uvicorn.Server]) -> None:
        try:
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runner.run(self._serve(servers))
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self, servers: list[uvicorn.Server]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = stopping = asyncio.Event()
        self.app.stopping = stopping
        tasks = [asyncio.create_task(_serve_one(server)) for server in servers]
        stop_wait = asyncio.create_task(stopping.wait())
        try:
            while not all(server.started for server in servers):
                if any(task.done() for task in tasks):
                    break
                await asyncio.sleep(0.005)
            else:
                ports = [server.servers[0].sockets[0].getsockname()[1] for server in servers]
                self._https_port = ports[0]
                self._http_port = ports[1] if len(ports) > 1 else None
                self._ready.set()
                await asyncio.wait([stop_wait, *tasks], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.set()  # ends simulated stalls, so shutdown does not wait for them
            for server in servers:
                server.should_exit = True
            results = await asyncio.gather(*tasks, return_exceptions=True)
            await stop_wait
            await self.app.webhooks.aclose()
        for result in results:
            if isinstance(result, BaseException):
                raise result


async def _serve_one(server: uvicorn.Server) -> None:
    try:
        await server.serve()
    except SystemExit as exc:
        # uvicorn exits the process when it cannot bind; here that is one failed start.
        raise RuntimeError(f"uvicorn could not start on port {server.config.port}") from exc


# The command line -------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m worker.simulator",
        description="Run the Microsoft Graph / Entra simulator on 127.0.0.1 until SIGINT or "
        "SIGTERM, printing the environment that points meetreg at it.",
    )
    add = parser.add_argument
    add("--port", type=int, default=0, help="HTTPS port (default: any free port)")
    add(
        "--http-port",
        type=int,
        default=None,
        help="also listen in plain HTTP on this port (0: any)",
    )
    add("--latency-ms", type=float, default=0.0, help="mean simulated latency")
    add("--conflict", choices=["409", "400", "replace"], default="409")
    add(
        "--resource-form",
        choices=["users", "users@tenant", "alternate"],
        default="alternate",
        help="how change notifications spell their resource",
    )
    add("--rate-limit", type=float, default=None, help="requests per second before 429")
    add("--retry-after-style", choices=["int", "float"], default="int")
    add("--throttle-probability", type=float, default=0.0)
    add("--throttle-retry-after-s", type=float, default=1.0)
    add("--error-5xx-probability", type=float, default=0.0)
    add("--commit-then-timeout-probability", type=float, default=0.0)
    add("--commit-then-500-probability", type=float, default=0.0)
    add("--stall-s", type=float, default=60.0)
    add("--seed", type=int, default=None)
    add("--token-ttl-s", type=float, default=3600.0)
    add(
        "--max-subscription-minutes",
        type=int,
        default=DEFAULT_MAX_SUBSCRIPTION_MINUTES,
        help="how far ahead a subscription may expire (4230: the older limit)",
    )
    add("--tenant-id", default=None)
    add("--client-id", default=None)
    add("--client-secret", default=None)
    add("--tls-dir", type=Path, default=None, help="keep the CA and certificate here")
    add("--seed-file", type=Path, default=None, help='JSON {"users": [...], "meetings": [...]}')
    return parser


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """The SimulatorConfig the command-line arguments describe."""
    faults = FaultConfig(
        latency_ms=args.latency_ms,
        rate_limit_per_s=args.rate_limit,
        retry_after_style=args.retry_after_style,
        throttle_probability=args.throttle_probability,
        throttle_retry_after_s=args.throttle_retry_after_s,
        error_5xx_probability=args.error_5xx_probability,
        commit_then_timeout_probability=args.commit_then_timeout_probability,
        commit_then_500_probability=args.commit_then_500_probability,
        stall_s=args.stall_s,
        seed=args.seed,
    )
    names = {
        "tenant_id": args.tenant_id,
        "client_id": args.client_id,
        "client_secret": args.client_secret,
    }
    return SimulatorConfig(
        **{name: value for name, value in names.items() if value is not None},
        conflict=args.conflict,
        resource_form=args.resource_form,
        token_ttl_s=args.token_ttl_s,
        max_subscription_minutes=args.max_subscription_minutes,
        faults=faults,
        https_port=args.port,
        plain_http=args.http_port is not None,
        http_port=args.http_port or 0,
        tls_dir=args.tls_dir,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator in the foreground until SIGINT or SIGTERM; returns the exit code."""
    args = _parser().parse_args(argv)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    with SimulatorServer(config_from_args(args)) as sim:
        if args.seed_file is not None:
            seed = json.loads(args.seed_file.read_text())
            sim.state.add_users(seed.get("users", []))
            sim.state.add_meetings(seed.get("meetings", []))
        print(f"# meetreg Graph simulator: {sim.https_url} (control API under /_sim/)")
        if sim.http_url:
            print(f"# plain HTTP: {sim.http_url}")
        for name, value in sim.env().items():
            print(f"export {name}={shlex.quote(value)}")
        sys.stdout.flush()
        while not stop.wait(1.0):
            pass
    return 0
