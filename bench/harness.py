"""What every benchmark needs: Redis and the simulator, seeded meetings, measured children.

meetreg is only ever run as its users run it, through its commands and environment
variables, in child processes whose CPU time and peak memory come from the kernel:
`/proc/PID/stat` while they run, `os.wait4`'s rusage when they end. The simulator runs in
this process (a background thread), so its arrival log shares our `time.monotonic()`.
"""

from __future__ import annotations

import csv
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar
from urllib.parse import quote

import httpx
import redis
from celery import Celery

from worker.redis.embedded import EmbeddedRedis
from worker.simulator import FaultConfig, SimulatorConfig, SimulatorServer
from worker.simulator.traffic import Arrivals
from worker.store.outcome_store import OutcomeStore
from worker.store.records import BatchStatus

# meetreg and celery as installed next to the interpreter running the benchmark.
BIN = Path(sys.executable).parent
ORGANIZERS = 20
EXTERNAL = {
    "@odata.type": "#microsoft.graph.externalMeetingRegistration",
    "allowedRegistrant": "everyone",
}
# Inherited settings that would point a child elsewhere than at this run's Redis and
# simulator. CURL_CA_BUNDLE overrides requests' (so MSAL's) CA bundle on some machines.
_FOREIGN_PREFIXES = ("MEETREG_", "AZURE_")
_FOREIGN_NAMES = frozenset({"REDIS_URL", "GRAPH_BASE_URL", "CURL_CA_BUNDLE", "HTTPS_PROXY"})
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_POLL_S = 0.05


class BenchError(RuntimeError):
    """A benchmark could not run (a child failed to start, a batch was refused)."""


# Children ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    """What a child process cost, from the kernel's accounting."""

    cpu_s: float  # user + system
    peak_rss_kb: int  # ru_maxrss: kilobytes on Linux
    exit_code: int


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process, from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ", from field 3 on
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime


class Child:
    """One meetreg process, its output in a log file; reaped with `os.wait4` for rusage."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path):
        self.command = list(command)
        self.log_path = log
        self._log: IO[bytes] = log.open("wb")
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            self.command, env=dict(env), cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.usage: Usage | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_s(self) -> float:
        """CPU seconds so far (the final figure once reaped)."""
        return self.usage.cpu_s if self.usage is not None else proc_cpu_s(self.pid)

    def running(self) -> bool:
        return self.usage is None and self._reap(os.WNOHANG) is None

    def wait(self, timeout_s: float) -> Usage | None:
        """Reap the child within `timeout_s`; None if it is still running."""
        deadline = time.monotonic() + timeout_s
        while (usage := self._reap(os.WNOHANG)) is None:
            if time.monotonic() >= deadline:
                return None
            time.sleep(_POLL_S)
        return usage

    def stop(self, timeout_s: float = 30.0) -> Usage:
        """SIGTERM (a warm shutdown for celery), SIGKILL after `timeout_s`; reap it."""
        if (usage := self._reap(os.WNOHANG)) is not None:
            return usage
        # os.kill, not Popen's methods: those poll first, reaping the child without rusage.
        os.kill(self.pid, signal.SIGTERM)
        usage = self.wait(timeout_s)
        if usage is None:
            os.kill(self.pid, signal.SIGKILL)
            usage = self._reap(0)
        assert usage is not None
        return usage

    def output_tail(self, lines: int = 20) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def _reap(self, options: int) -> Usage | None:
        if self.usage is not None:
            return self.usage
        pid, status, rusage = os.wait4(self.pid, options)
        if pid == 0:
            return None
        code = os.waitstatus_to_exitcode(status)
        self.process.returncode = code  # reaped here: Popen must not wait for it again
        self._log.close()
        self.usage = Usage(rusage.ru_utime + rusage.ru_stime, rusage.ru_maxrss, code)
        return self.usage


def child_env(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without meetreg/Azure/Redis settings, plus `settings`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _FOREIGN_NAMES and not name.startswith(_FOREIGN_PREFIXES)
    }
    env.update(settings)
    return env


def self_cpu_s() -> float:
    """CPU seconds of this process (every thread: the simulator's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# Redis and the simulator ------------------------------------------------------------------


@dataclass
class Stack:
    """A private Redis and a simulator (Graph over plain HTTP), and a scratch folder."""

    redis_url: str
    sim: SimulatorServer
    workdir: Path

    def env(self, settings: Mapping[str, str]) -> dict[str, str]:
        """The environment of a meetreg child using this stack, with meetreg `settings`."""
        return child_env(
            {
                "REDIS_URL": self.redis_url,
                **self.sim.env(graph_over_http=True),
                "MEETREG_METRICS_PORT": "0",  # no port opened; two workers would share it
                **settings,
            }
        )

    def flush_redis(self) -> None:
        """Forget every batch, queued message and meeting record: a run starts clean."""
        client = redis.Redis.from_url(self.redis_url)
        try:
            client.flushall()
        finally:
            client.close()

    def redis_cpu_s(self) -> float:
        client = redis.Redis.from_url(self.redis_url)
        try:
            return proc_cpu_s(int(client.info("server")["process_id"]))
        finally:
            client.close()

    def batch_status(self, batch_id: str) -> BatchStatus:
        client = redis.Redis.from_url(self.redis_url)
        try:
            return OutcomeStore(client).batch_status(batch_id)
        finally:
            client.close()


@contextmanager
def open_stack(latency_ms: float, rate_limit_per_s: float | None) -> Iterator[Stack]:
    """Start Redis and the simulator with this latency and service limit (None: no limit)."""
    faults = FaultConfig(latency_ms=latency_ms, rate_limit_per_s=rate_limit_per_s)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="meetreg-bench-")))
        server = stack.enter_context(EmbeddedRedis())
        sim = stack.enter_context(SimulatorServer(SimulatorConfig(faults=faults, plain_http=True)))
        sim.state.add_users({"object_id": user} for user in organizers())
        yield Stack(server.url, sim, workdir)


def organizers() -> list[str]:
    return [str(uuid.UUID(int=index + 1)) for index in range(ORGANIZERS)]


def seed_meetings(sim: SimulatorServer, prefix: str, count: int) -> list[tuple[str, str]]:
    """Seed `count` new meetings named `prefix-N`; returns (organizer, meeting id) pairs."""
    users = organizers()
    pairs = [(users[index % len(users)], f"{prefix}-{index:07d}") for index in range(count)]
    sim.state.add_meetings({"organizer_id": user, "meeting_id": mid} for user, mid in pairs)
    return pairs


def seed_webinars(sim: SimulatorServer, prefix: str, count: int) -> list[tuple[str, str]]:
    """Seed published webinars (one per 100 people, each organizer's in turn) and return
    `count` (webinar id, email) pairs of people to register for them, each new."""
    users = organizers()
    webinars = [
        f"{uuid.UUID(int=index + 1)}@{uuid.uuid5(uuid.NAMESPACE_DNS, prefix)}"
        for index in range(max(1, count // 100))
    ]
    sim.state.add_webinars(
        {"webinar_id": webinar, "organizer_id": users[index % len(users)]}
        for index, webinar in enumerate(webinars)
    )
    return [
        (webinars[index % len(webinars)], f"{prefix}-{index:07d}@fabrikam.example")
        for index in range(count)
    ]


def write_registrants_csv(path: Path, people: Iterable[tuple[str, str]]) -> Path:
    """A registrant file: `meetreg` reads it as webinar registrants by its header."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["webinar_id", "email", "first_name", "last_name"])
        writer.writerows((webinar, email, "Bench", "Person") for webinar, email in people)
    return path


def write_csv(path: Path, pairs: Iterable[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "meeting_id"])
        writer.writerows(pairs)
    return path


# What the simulator saw -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimTraffic:
    """The Graph requests of one measured phase."""

    statuses: Counter[str]  # "POST 201" -> count
    arrivals: Arrivals
    cpu_s: float  # this process: the simulator's thread and our polling

    @property
    def requests(self) -> int:
        """Graph calls as Graph counts them: each item of a $batch, not its envelope."""
        return len(self.arrivals.times)

    @property
    def throttled(self) -> int:
        return sum(n for status, n in self.statuses.items() if status.endswith(" 429"))

    @property
    def throttled_share(self) -> float:
        return self.throttled / self.requests if self.requests else 0.0


class SimWindow:
    """Opened before a phase and closed after it: the simulator's traffic in between."""

    def __init__(self, sim: SimulatorServer) -> None:
        self.sim = sim
        self.started_at = time.monotonic()
        self._statuses = Counter(sim.state.stats()["requests_by_status"])
        self._cpu_s = self_cpu_s()

    def close(self) -> SimTraffic:
        statuses = Counter(self.sim.state.stats()["requests_by_status"])
        statuses.subtract(self._statuses)
        return SimTraffic(
            +statuses,
            self.sim.state.arrivals().between(self.started_at),
            self_cpu_s() - self._cpu_s,
        )


# The baseline: what a user's script achieves ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Baseline:
    rows: int
    elapsed_s: float
    throttled: int

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.elapsed_s if self.elapsed_s else 0.0


def fetch_token(sim: SimulatorServer) -> str:
    """A client-credentials token from the simulator's login endpoint (over HTTPS)."""
    return sim.fetch_token()


def registration_path(user: str, meeting: str) -> str:
    return f"/users/{quote(user, safe='')}/onlineMeetings/{quote(meeting, safe='')}/registration"


def run_baseline(
    sim: SimulatorServer, pairs: Sequence[tuple[str, str]], seconds: float
) -> Baseline:
    """One POST per meeting, one after the other, for `seconds` (or until `pairs` run out).

    Over the same plain-HTTP Graph URL as meetreg; waits out a 429's Retry-After and
    sends again, as a careful script would.
    """
    graph = sim.env(graph_over_http=True)["GRAPH_BASE_URL"]
    headers = {"Authorization": f"Bearer {fetch_token(sim)}"}
    rows = throttled = 0
    with httpx.Client(base_url=graph, headers=headers, timeout=30) as client:
        started_at = time.monotonic()
        deadline = started_at + seconds
        for user, meeting in pairs:
            if time.monotonic() >= deadline:
                break
            path = registration_path(user, meeting)
            while (response := client.post(path, json=EXTERNAL)).status_code == 429:
                throttled += 1
                time.sleep(float(response.headers.get("Retry-After", "1")))
            rows += 1
        elapsed_s = time.monotonic() - started_at
    return Baseline(rows, elapsed_s, throttled)


# meetreg's side ---------------------------------------------------------------------------


def wait_workers_ready(redis_url: str, workers: Sequence[Child], timeout_s: float = 60.0) -> None:
    """Wait until every one of `workers` answers a ping.

    Raises BenchError when one exits first, or after `timeout_s`.
    """
    with Celery(broker=redis_url) as app:
        deadline = time.monotonic() + timeout_s
        while len(app.control.ping(timeout=0.5)) < len(workers):
            _check_running(workers)
            if time.monotonic() >= deadline:
                raise BenchError(f"the celery workers did not answer within {timeout_s} s")


def _check_running(workers: Sequence[Child]) -> None:
    for worker in workers:
        if not worker.running():
            raise BenchError(f"a celery worker exited:\n{worker.output_tail()}")


def wait_batch(
    stack: Stack, batch_id: str, timeout_s: float, workers: Sequence[Child] = ()
) -> tuple[BatchStatus, float, bool]:
    """Poll the batch until it is finished or `timeout_s` passed.

    Returns its last status, when that was read (monotonic), and whether it finished.
    Raises BenchError when one of `workers` exits meanwhile.
    """
    deadline = time.monotonic() + timeout_s
    client = redis.Redis.from_url(stack.redis_url)
    store = OutcomeStore(client)
    try:
        while True:
            status = store.batch_status(batch_id)
            read_at = time.monotonic()
            if status.finished or read_at >= deadline:
                return status, read_at, status.finished
            _check_running(workers)
            time.sleep(_POLL_S)
    finally:
        client.close()


def meetreg(*args: str) -> list[str]:
    return [str(BIN / "meetreg"), *args]


def run_meetreg(
    args: Sequence[str], redis_url: str, workdir: Path, timeout_s: float = 600
) -> tuple[Usage, float] | None:
    """Run `meetreg ARGS` on that Redis to its end: what it cost and its wall time (s), or
    None, having said why on stderr, if it failed."""
    started_at = time.monotonic()
    child = Child(
        meetreg(*args), child_env({"REDIS_URL": redis_url}), workdir, workdir / f"{args[0]}.log"
    )
    usage = child.wait(timeout_s=timeout_s)
    wall_s = time.monotonic() - started_at
    if usage is None or usage.exit_code != 0:
        child.stop()
        print(f"bench: meetreg {args[0]} failed:\n{child.output_tail()}", file=sys.stderr)
        return None
    return usage, wall_s


Run = TypeVar("Run")


def at_each_size(sizes: Sequence[int], measure: Callable[[int], Run | None]) -> list[Run] | None:
    """`measure` at each size in turn; None as soon as one run could not be made."""
    runs = []
    for size in sizes:
        run = measure(size)
        if run is None:
            return None
        runs.append(run)
    return runs


def celery_worker(name: str) -> list[str]:
    return [
        str(BIN / "celery"),
        "-A",
        "worker.app",
        "worker",
        "-n",
        f"{name}@%h",
        "--loglevel=WARNING",
    ]


# Printing ---------------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_note() -> str:
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    # Other work on the machine skews the CPU-bound figures: say how busy it was.
    return f"{os.cpu_count()} CPUs, load average {load}"
