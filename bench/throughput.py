"""Throughput at Graph's limit (issue #3): meetreg against the simulator, and a plain loop.

    .venv/bin/python bench/throughput.py --case all
    .venv/bin/python bench/throughput.py --case known --rows 600 --baseline-s 5
    .venv/bin/python bench/throughput.py --target webinars --case known nolimit

`--target webinars` follows each run of meetings with one of webinar registrants (people
for Teams webinars, a look by email then the POST: 2 requests a row too), the meeting run
being its baseline, and adds a table comparing the two.

Each case starts its own Redis and simulator (latency and limit as flags), measures a
plain sequential httpx loop first (the baseline: what a user's script achieves), then
meetreg: `meetreg enqueue` with celery workers already running, or `meetreg run`.
Prints one table of measurements and one of verdicts; exit 0 all targets met, 1 not,
2 a run could not be made.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    Baseline,
    BenchError,
    Child,
    SimTraffic,
    SimWindow,
    Stack,
    celery_worker,
    machine_note,
    markdown_table,
    meetreg,
    open_stack,
    run_baseline,
    seed_meetings,
    seed_webinars,
    wait_batch,
    wait_workers_ready,
    write_csv,
    write_registrants_csv,
)
from worker.store.records import BatchStatus

REQUESTS_PER_ROW = 2  # MEETREG_GET_BEFORE_POST (the default): a GET, then the POST
# What a batch's rows register: meetings' external registration (a GET then the POST, as
# above), or people for Teams webinars (always a look by email, then the POST).
TARGETS = ("meetings", "webinars")


@dataclass(frozen=True, slots=True)
class Measured:
    """What one meetreg run did and cost."""

    status: BatchStatus
    finished: bool
    wall_s: float  # enqueue (or `meetreg run`) started -> batch finished
    traffic: SimTraffic
    meetreg_cpu_s: float  # meetreg processes, during the batch
    peak_rss_kb: int  # the largest meetreg process
    redis_cpu_s: float


@dataclass(frozen=True, slots=True)
class Run:
    """One measured meetreg run, its baseline, and the figures derived from them."""

    case: str
    mode: str  # "meetreg run" or "N celery worker(s)"
    measured: Measured
    baseline: Baseline
    target: str = "meetings"

    @property
    def status(self) -> BatchStatus:
        return self.measured.status

    @property
    def finished(self) -> bool:
        return self.measured.finished

    @property
    def wall_s(self) -> float:
        return self.measured.wall_s

    @property
    def traffic(self) -> SimTraffic:
        return self.measured.traffic

    @property
    def rows_per_s(self) -> float:
        return self.status.done / self.wall_s

    @property
    def good_requests_per_s(self) -> float:
        """Graph requests not answered 429, per second of wall time: end to end."""
        return (self.traffic.requests - self.traffic.throttled) / self.wall_s

    @property
    def ratio(self) -> float:
        return self.rows_per_s / self.baseline.rows_per_s if self.baseline.rows_per_s else math.nan

    def per_1000_rows(self, cpu_s: float) -> float:
        return cpu_s / self.status.done * 1000 if self.status.done else math.nan


@dataclass(frozen=True, slots=True)
class Verdict:
    figure: str
    target: str
    passed: bool


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    sim_limit_per_s: float | None  # the simulated service's own limit
    meetreg_limit_per_s: float  # MEETREG_RATE_LIMIT
    limit_per_s: float | None  # what throughput is measured against
    modes: tuple[int, ...]  # celery worker processes; 0: `meetreg run`
    expected_rows_per_s: float  # sizes the batch to last --seconds
    judge: Callable[[Run], Verdict]
    # How long a run lasts unless --seconds says: at a known limit, two minutes (12,000
    # rows, a small real batch), so the figure is the sustained pace more than start-up.
    seconds: float = 30.0


def _percent(value: float) -> str:
    return f"{value:.1%}" if math.isfinite(value) else "-"


def _at_limit(
    limit: float, minimum: float, max_throttled: float, no_failures: bool
) -> Callable[[Run], Verdict]:
    def judge(run: Run) -> Verdict:
        share = run.good_requests_per_s / limit
        failed = run.status.counts.get("failed", 0) + run.status.counts.get("invalid", 0)
        throttled = run.traffic.throttled_share
        figure = f"{_percent(share)} of {limit:g}/s end to end; {_percent(throttled)} 429"
        target = f">= {minimum:.0%}; < {max_throttled:.1%} 429"
        passed = share >= minimum and throttled < max_throttled and run.finished
        if no_failures:
            figure += f"; {failed} failed"
            target += "; 0 failed"
            passed = passed and failed == 0
        return Verdict(figure, target, passed)

    return judge


def _no_limit(run: Run) -> Verdict:
    return Verdict(
        f"{run.rows_per_s:.0f} rows/s", ">= 500 rows/s", run.rows_per_s >= 500 and run.finished
    )


def _shared_limit(run: Run) -> Verdict:
    arrivals = run.traffic.arrivals
    average = arrivals.sustained_per_s() or 0.0
    busiest = arrivals.busiest(1.0)
    figure = f"busiest 1 s: {busiest}; average {average:.1f}/s"
    return Verdict(figure, "both <= 100/s", busiest <= 100 and average <= 100 and run.finished)


CASES = {
    case.name: case
    for case in (
        Case(
            name="known",
            sim_limit_per_s=200,
            meetreg_limit_per_s=200,
            limit_per_s=200,
            modes=(1,),
            expected_rows_per_s=200 / REQUESTS_PER_ROW,
            judge=_at_limit(200, minimum=0.95, max_throttled=0.005, no_failures=False),
            seconds=120.0,
        ),
        Case(
            name="unknown",
            sim_limit_per_s=80,
            meetreg_limit_per_s=1000,
            limit_per_s=80,
            modes=(1,),
            expected_rows_per_s=80 / REQUESTS_PER_ROW,
            judge=_at_limit(80, minimum=0.85, max_throttled=0.05, no_failures=True),
        ),
        Case(
            name="nolimit",
            sim_limit_per_s=None,
            meetreg_limit_per_s=100_000,
            limit_per_s=None,
            modes=(0, 1),
            expected_rows_per_s=500,
            judge=_no_limit,
        ),
        Case(
            name="two-workers",
            sim_limit_per_s=None,
            meetreg_limit_per_s=100,
            limit_per_s=100,
            modes=(2,),
            expected_rows_per_s=100 / REQUESTS_PER_ROW,
            judge=_shared_limit,
        ),
    )
}


# Measuring --------------------------------------------------------------------------------


def measure_workers(
    stack: Stack,
    workers: int,
    csv_path: Path,
    batch_id: str,
    env: dict[str, str],
    timeout_s: float,
) -> Measured:
    """Celery workers started and ready first; then `meetreg enqueue` and the batch is timed."""
    logs = stack.workdir
    children = [
        Child(celery_worker(f"bench{index}"), env, logs, logs / f"{batch_id}-worker{index}.log")
        for index in range(workers)
    ]
    try:
        wait_workers_ready(stack.redis_url, children)
        # Start-up is not the batch's: count the workers' CPU from here on.
        workers_cpu_s = [child.cpu_s() for child in children]
        redis_cpu_s = stack.redis_cpu_s()
        window = SimWindow(stack.sim)
        command = meetreg("enqueue", str(csv_path), "--batch-id", batch_id)
        producer = Child(command, env, logs, logs / f"{batch_id}-enqueue.log")
        enqueued = producer.wait(timeout_s)
        if enqueued is None or enqueued.exit_code != 0:
            producer.stop()
            raise BenchError(f"meetreg enqueue failed:\n{producer.output_tail()}")
        remaining_s = timeout_s - (time.monotonic() - window.started_at)
        status, ended_at, finished = wait_batch(stack, batch_id, remaining_s, children)
        workers_cpu_s = [
            child.cpu_s() - before for child, before in zip(children, workers_cpu_s, strict=True)
        ]
        redis_cpu_s = stack.redis_cpu_s() - redis_cpu_s
        traffic = window.close()
    finally:
        usages = [child.stop() for child in children]
    return Measured(
        status=status,
        finished=finished,
        wall_s=ended_at - window.started_at,
        traffic=traffic,
        meetreg_cpu_s=sum(workers_cpu_s) + enqueued.cpu_s,
        peak_rss_kb=max([enqueued.peak_rss_kb, *(usage.peak_rss_kb for usage in usages)]),
        redis_cpu_s=redis_cpu_s,
    )


def measure_run(
    stack: Stack, csv_path: Path, batch_id: str, env: dict[str, str], timeout_s: float
) -> Measured:
    """`meetreg run`, timed from its start to its exit."""
    logs = stack.workdir
    redis_cpu_s = stack.redis_cpu_s()
    window = SimWindow(stack.sim)
    command = meetreg("run", str(csv_path), "--batch-id", batch_id)
    child = Child(command, env, logs, logs / f"{batch_id}-run.log")
    usage = child.wait(timeout_s)
    ended_at = time.monotonic()
    if usage is not None and usage.exit_code not in (0, 1):  # 1: some rows failed
        raise BenchError(f"meetreg run exited {usage.exit_code}:\n{child.output_tail()}")
    # Read before a timed-out child is stopped: its warm shutdown still finishes rows.
    traffic = window.close()
    status = stack.batch_status(batch_id)
    exited = usage is not None
    if usage is None:
        usage = child.stop()
    return Measured(
        status=status,
        finished=exited and status.finished,
        wall_s=ended_at - window.started_at,
        traffic=traffic,
        meetreg_cpu_s=usage.cpu_s,
        peak_rss_kb=usage.peak_rss_kb,
        redis_cpu_s=stack.redis_cpu_s() - redis_cpu_s,
    )


def run_case(
    case: Case, args: argparse.Namespace, targets: Sequence[str] = ("meetings",)
) -> list[Run]:
    """Each of the case's modes for each target, in that order, on one Redis and simulator,
    against one baseline loop."""
    seconds = args.seconds or case.seconds
    rows = args.rows or math.ceil(case.expected_rows_per_s * seconds)
    timeout_s = args.timeout_s or max(120.0, 2 * seconds)
    settings = {"MEETREG_RATE_LIMIT": f"{case.meetreg_limit_per_s:g}", **dict(args.set)}
    runs: list[Run] = []
    with open_stack(args.latency_ms, case.sim_limit_per_s) as stack:
        files = {}
        for target in targets:
            for workers in case.modes:
                batch_id = _batch_id(case, target, workers)
                files[batch_id] = _sample(stack, target, batch_id, rows)
        # Enough meetings for the loop at its fastest (latency jitters down to 0.5x).
        spare = int(args.baseline_s * 2000 / max(args.latency_ms, 1.0)) + 100
        baseline = run_baseline(
            stack.sim, seed_meetings(stack.sim, "baseline", spare), args.baseline_s
        )
        env = stack.env(settings)
        for target in targets:
            for workers in case.modes:
                batch_id = _batch_id(case, target, workers)
                note = f"# {case.name}: {rows} {target} rows, {_mode(workers)} ..."
                print(note, file=sys.stderr, flush=True)
                stack.flush_redis()  # nothing left over from a run that timed out
                # The simulator runs in this process and stamps arrivals as it reads them.
                # A full collection over its seeded meetings stopped it for 70-130 ms, and
                # the requests that waited meanwhile were stamped together: a clump its
                # per-second window counted against meetreg. What exists now lives to the
                # end anyway.
                gc.freeze()
                path = files[batch_id]
                if workers:
                    measured = measure_workers(stack, workers, path, batch_id, env, timeout_s)
                else:
                    measured = measure_run(stack, path, batch_id, env, timeout_s)
                runs.append(Run(case.name, _mode(workers), measured, baseline, target))
    return runs


def _batch_id(case: Case, target: str, workers: int) -> str:
    return f"bench-{case.name}-{target}-{workers}w"


def _sample(stack: Stack, target: str, batch_id: str, rows: int) -> Path:
    """Seed `rows` new meetings (or webinar registrants) and write the file that names them."""
    path = stack.workdir / f"{batch_id}.csv"
    if target == "webinars":
        return write_registrants_csv(path, seed_webinars(stack.sim, batch_id, rows))
    return write_csv(path, seed_meetings(stack.sim, batch_id, rows))


def _mode(workers: int) -> str:
    return "meetreg run" if workers == 0 else f"{workers} celery worker{'s' if workers > 1 else ''}"


# Reporting --------------------------------------------------------------------------------


def measurements_table(runs: Sequence[Run]) -> str:
    headers = [
        "case",
        "target",
        "meetreg",
        "rows done (failed)",
        "wall s",
        "sim req/s sustained",
        "busiest 1 s",
        "429 share",
        "e2e good req/s (of limit)",
        "rows/s e2e",
        "CPU s / 1k rows",
        "peak RSS MB",
        "redis CPU s / 1k rows",
        "sim CPU % of a core",
        "baseline rows/s",
        "ratio",
    ]
    table = []
    for run in runs:
        limit = CASES[run.case].limit_per_s
        sustained = run.traffic.arrivals.sustained_per_s()
        of_limit = f" ({_percent(run.good_requests_per_s / limit)})" if limit else ""
        failed = run.status.counts.get("failed", 0) + run.status.counts.get("invalid", 0)
        done = f"{run.status.done}/{run.status.total} ({failed})" + (
            "" if run.finished else " TIMED OUT"
        )
        table.append(
            [
                run.case,
                run.target,
                run.mode,
                done,
                f"{run.wall_s:.1f}",
                f"{sustained:.1f}" if sustained else "-",
                run.traffic.arrivals.busiest(1.0),
                f"{run.traffic.throttled_share:.2%}",
                f"{run.good_requests_per_s:.1f}{of_limit}",
                f"{run.rows_per_s:.1f}",
                f"{run.per_1000_rows(run.measured.meetreg_cpu_s):.2f}",
                f"{run.measured.peak_rss_kb / 1024:.0f}",
                f"{run.per_1000_rows(run.measured.redis_cpu_s):.2f}",
                f"{run.traffic.cpu_s / run.wall_s:.0%}",
                f"{run.baseline.rows_per_s:.1f}",
                f"{run.ratio:.1f}x",
            ]
        )
    return markdown_table(headers, table)


def verdicts_table(runs: Sequence[Run]) -> tuple[str, bool]:
    table = []
    passed_all = True
    for run in runs:
        verdict = CASES[run.case].judge(run)
        passed_all = passed_all and verdict.passed
        table.append(
            [
                run.case,
                run.target,
                run.mode,
                verdict.figure,
                verdict.target,
                "PASS" if verdict.passed else "FAIL",
                f"{run.ratio:.1f}x",
            ]
        )
    headers = ["case", "rows", "meetreg", "figure", "target", "result", "rows/s vs baseline"]
    return markdown_table(headers, table), passed_all


def targets_table(runs: Sequence[Run]) -> str:
    """Each webinar run beside the meeting run of the same case and mode, made just before
    it on the same Redis and simulator: what registering people costs against meetings."""
    meetings = {(run.case, run.mode): run for run in runs if run.target == "meetings"}
    table = []
    for run in runs:
        base = meetings.get((run.case, run.mode))
        if run.target != "webinars" or base is None:
            continue
        cpu = run.per_1000_rows(run.measured.meetreg_cpu_s)
        base_cpu = base.per_1000_rows(base.measured.meetreg_cpu_s)
        table.append(
            [
                run.case,
                run.mode,
                f"{run.rows_per_s:.1f}",
                f"{base.rows_per_s:.1f}",
                f"{run.rows_per_s / base.rows_per_s:.2f}x" if base.rows_per_s else "-",
                f"{cpu:.2f}",
                f"{base_cpu:.2f}",
            ]
        )
    headers = [
        "case",
        "meetreg",
        "webinar rows/s",
        "meeting rows/s",
        "webinars / meetings",
        "webinar CPU s / 1k rows",
        "meeting CPU s / 1k rows",
    ]
    return markdown_table(headers, table)


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name, value


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--case", choices=[*CASES, "all"], default=["all"], nargs="+")
    add(
        "--target",
        choices=TARGETS,
        default="meetings",
        help="webinars: each run of meetings is followed by one of webinar registrants, "
        "the meetings its baseline",
    )
    add(
        "--rows",
        type=int,
        default=None,
        help="rows per run (default: what lasts --seconds at the case's target)",
    )
    add(
        "--seconds",
        type=float,
        default=None,
        help="intended length of a run (sizes --rows; default: the case's, 30 s or 120 s)",
    )
    add("--latency-ms", type=float, default=100.0, help="simulated Graph latency, mean")
    add("--baseline-s", type=float, default=10.0, help="how long the sequential loop runs")
    add(
        "--timeout-s",
        type=float,
        default=None,
        help="stop a run after this (default: twice its length, at least 120 s); figures "
        "of what got done",
    )
    add(
        "--set",
        type=_setting,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra meetreg setting, e.g. MEETREG_CONCURRENCY=64 (repeatable)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    names = list(CASES) if "all" in args.case else list(dict.fromkeys(args.case))
    targets = ("meetings", "webinars") if args.target == "webinars" else ("meetings",)
    print(f"# {machine_note()}; simulator latency {args.latency_ms:g} ms", flush=True)
    runs: list[Run] = []
    try:
        for name in names:
            runs += run_case(CASES[name], args, targets)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    print()
    print(measurements_table(runs))
    print()
    verdicts, passed = verdicts_table(runs)
    print(verdicts)
    if args.target == "webinars":
        print()
        print(targets_table(runs))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
