"""Enqueue speed (issue #3): `meetreg enqueue` of a large CSV into a fresh Redis.

    .venv/bin/python bench/enqueue.py              # 100,000 rows
    .venv/bin/python bench/enqueue.py --rows 10000 100000 1000000

Measures the command as a user runs it (process start to exit: wall time, CPU, peak RSS
from `os.wait4`) and, in the same run, the baseline: merely reading the same file with
Python's csv module. Given several sizes, each is measured (the speed target from
TARGET_FROM_ROWS rows), and the peak RSS must stay flat in the file's size (the largest
file's within FLAT_RSS of the smallest's).
Exit 0 targets met, 1 not, 2 the command failed.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from bench.harness import at_each_size, machine_note, markdown_table, organizers, run_meetreg
from worker.redis.embedded import EmbeddedRedis
from worker.store.outcome_store import OutcomeStore

TARGET_ROWS_PER_S = 20_000
TARGET_PEAK_RSS_MB = 150
FLAT_RSS = 1.2  # the largest file's peak RSS over the smallest's, at most
# The size for the speed target; a smaller file's figure is mostly start-up (~0.8 s).
TARGET_FROM_ROWS = 100_000
BATCH_ID = "bench-enqueue"


def write_rows(path: Path, rows: int) -> None:
    """A CSV of `rows` valid, distinct rows (no simulator needed: enqueue does not call Graph)."""
    users = organizers()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "meeting_id"])
        writer.writerows((users[i % len(users)], f"bench-enqueue-{i:07d}") for i in range(rows))


def read_csv_s(path: Path) -> float:
    """Seconds to read every row of the file with the csv module, and nothing more."""
    started_at = time.perf_counter()
    with path.open(newline="", encoding="utf-8") as handle:
        for _ in csv.reader(handle):
            pass
    return time.perf_counter() - started_at


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    return parser


@dataclass(frozen=True, slots=True)
class Measured:
    rows: int
    wall_s: float
    cpu_s: float
    peak_mb: float
    baseline_s: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.wall_s

    @property
    def baseline_per_s(self) -> float:
        return self.rows / self.baseline_s


def measure(rows: int) -> Measured | None:
    """`meetreg enqueue` of a fresh `rows`-row file into a fresh Redis; None if it failed."""
    with TemporaryDirectory(prefix="meetreg-bench-") as tmp, EmbeddedRedis() as server:
        workdir = Path(tmp)
        path = workdir / "meetings.csv"
        write_rows(path, rows)
        baseline_s = read_csv_s(path)  # also leaves the file in the page cache for both
        ran = run_meetreg(["enqueue", str(path), "--batch-id", BATCH_ID], server.url, workdir)
        if ran is None:
            return None
        usage, wall_s = ran
        client = redis.Redis.from_url(server.url)
        total = OutcomeStore(client).batch_status(BATCH_ID).total
        client.close()
    if total != rows:
        print(f"bench: the batch holds {total} rows, not {rows}", file=sys.stderr)
        return None
    return Measured(rows, wall_s, usage.cpu_s, usage.peak_rss_kb / 1024, baseline_s)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    print(f"# {machine_note()}", flush=True)
    runs = at_each_size(args.rows, measure)
    if runs is None:
        return 2
    headers = ["rows", "wall s", "rows/s", "CPU s", "peak RSS MB", "csv read rows/s", "ratio"]
    print()
    print(
        markdown_table(
            headers,
            [
                [
                    f"{run.rows:,}",
                    f"{run.wall_s:.2f}",
                    f"{run.rows_per_s:,.0f}",
                    f"{run.cpu_s:.2f}",
                    f"{run.peak_mb:.0f}",
                    f"{run.baseline_per_s:,.0f}",
                    f"{run.rows_per_s / run.baseline_per_s:.3f}x",
                ]
                for run in runs
            ],
        )
    )
    checks = []
    for run in runs:
        if run.rows >= TARGET_FROM_ROWS:
            checks.append(
                (
                    f"{run.rows:,} rows: rows/s",
                    f"{run.rows_per_s:,.0f}",
                    f">= {TARGET_ROWS_PER_S:,}",
                    run.rows_per_s >= TARGET_ROWS_PER_S,
                )
            )
        checks.append(
            (
                f"{run.rows:,} rows: peak RSS",
                f"{run.peak_mb:.0f} MB",
                f"<= {TARGET_PEAK_RSS_MB} MB",
                run.peak_mb <= TARGET_PEAK_RSS_MB,
            )
        )
    if len(runs) > 1:
        smallest, largest = min(runs, key=lambda run: run.rows), max(runs, key=lambda run: run.rows)
        growth = largest.peak_mb / smallest.peak_mb
        checks.append(
            (
                f"peak RSS, {largest.rows:,} rows over {smallest.rows:,}",
                f"{growth:.2f}x",
                f"<= {FLAT_RSS}x (flat)",
                growth <= FLAT_RSS,
            )
        )
    print()
    print(
        markdown_table(
            ["enqueue", "figure", "target", "result"],
            [
                [name, figure, target, "PASS" if ok else "FAIL"]
                for name, figure, target, ok in checks
            ],
        )
    )
    return 0 if all(ok for *_, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
