"""Enqueue speed (issue #3): `meetreg enqueue` of a large CSV into a fresh Redis.

    .venv/bin/python bench/enqueue.py              # 100,000 rows
    .venv/bin/python bench/enqueue.py --rows 20000

Measures the command as a user runs it (process start to exit: wall time, CPU, peak RSS
from `os.wait4`) and, in the same run, the baseline: merely reading the same file with
Python's csv module. Exit 0 targets met, 1 not, 2 the command failed.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from tempfile import TemporaryDirectory

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from bench.harness import Child, child_env, machine_note, markdown_table, meetreg, organizers
from jobs.embedded_redis import EmbeddedRedis
from worker.store import OutcomeStore

TARGET_ROWS_PER_S = 20_000
TARGET_PEAK_RSS_MB = 150
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
    parser.add_argument("--rows", type=int, default=100_000)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    print(f"# {machine_note()}", flush=True)
    with TemporaryDirectory(prefix="meetreg-bench-") as tmp, EmbeddedRedis() as server:
        workdir = Path(tmp)
        path = workdir / "meetings.csv"
        write_rows(path, args.rows)
        baseline_s = read_csv_s(path)  # also leaves the file in the page cache for both
        started_at = time.monotonic()
        child = Child(
            meetreg("enqueue", str(path), "--batch-id", BATCH_ID),
            child_env({"REDIS_URL": server.url}),
            workdir,
            workdir / "enqueue.log",
        )
        usage = child.wait(timeout_s=600)
        wall_s = time.monotonic() - started_at
        if usage is None or usage.exit_code != 0:
            child.stop()
            print(f"bench: meetreg enqueue failed:\n{child.output_tail()}", file=sys.stderr)
            return 2
        client = redis.Redis.from_url(server.url)
        total = OutcomeStore(client).batch_status(BATCH_ID).total
        client.close()
    if total != args.rows:
        print(f"bench: the batch holds {total} rows, not {args.rows}", file=sys.stderr)
        return 2
    rows_per_s = args.rows / wall_s
    baseline_per_s = args.rows / baseline_s
    peak_mb = usage.peak_rss_kb / 1024
    headers = ["rows", "wall s", "rows/s", "CPU s", "peak RSS MB", "csv read rows/s", "ratio"]
    print()
    print(
        markdown_table(
            headers,
            [
                [
                    args.rows,
                    f"{wall_s:.2f}",
                    f"{rows_per_s:,.0f}",
                    f"{usage.cpu_s:.2f}",
                    f"{peak_mb:.0f}",
                    f"{baseline_per_s:,.0f}",
                    f"{rows_per_s / baseline_per_s:.3f}x",
                ]
            ],
        )
    )
    checks = [
        (
            "rows/s",
            f"{rows_per_s:,.0f}",
            f">= {TARGET_ROWS_PER_S:,}",
            rows_per_s >= TARGET_ROWS_PER_S,
        ),
        (
            "peak RSS",
            f"{peak_mb:.0f} MB",
            f"<= {TARGET_PEAK_RSS_MB} MB",
            peak_mb <= TARGET_PEAK_RSS_MB,
        ),
    ]
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
