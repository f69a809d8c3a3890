"""Retry at scale: `meetreg retry` of a big batch whose rows failed, into a fresh Redis.

    .venv/bin/python bench/requeue.py                  # 100,000 rows, every other failed
    .venv/bin/python bench/requeue.py --rows 10000 1000000

Measures the command as a user runs it (process start to exit: wall time, CPU, peak RSS
from `os.wait4`) and, in the same run, the baseline: merely reading the batch's rows from
Redis (`OutcomeStore.iter_rows`), which any retry must do. No target in the issue: the
figures say what an operator waits for, and that memory stays flat in the batch's size.
Exit 0 when every retry ran, 2 when one failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from tempfile import TemporaryDirectory

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis

from bench.harness import at_each_size, machine_note, markdown_table, run_meetreg
from worker.models import RowRecord, RowState
from worker.redis.embedded import EmbeddedRedis
from worker.store.outcome_store import OutcomeStore

BATCH_ID = "bench-retry"


def failed_batch(store: OutcomeStore, rows: int) -> None:
    """A finished batch of `rows` rows: every other one failed (403), the rest created."""
    store.create_batch(
        BATCH_ID,
        "bench.csv",
        (
            RowRecord(
                seq=seq,
                line=seq + 1,
                user_id="organizer@contoso.example",
                meeting_id=f"bench-retry-{seq:07d}",
                allowed_registrant="everyone",
                status=RowState.FAILED if seq % 2 else RowState.CREATED,
                http_status=403 if seq % 2 else 201,
                error="Forbidden" if seq % 2 else "",
            )
            for seq in range(1, rows + 1)
        ),
    )


def measure(rows: int) -> list[object] | None:
    """One table row for a `rows`-row batch; None if `meetreg retry` failed."""
    with TemporaryDirectory(prefix="meetreg-bench-") as tmp, EmbeddedRedis() as server:
        workdir = Path(tmp)
        client = redis.Redis.from_url(server.url)
        store = OutcomeStore(client)
        failed_batch(store, rows)
        started_at = time.perf_counter()
        for _ in store.iter_rows(BATCH_ID, rows):
            pass
        baseline_s = time.perf_counter() - started_at
        ran = run_meetreg(["retry", BATCH_ID], server.url, workdir)
        if ran is None:
            return None
        usage, wall_s = ran
        queued = store.batch_status(BATCH_ID).counts["queued"]
        client.close()
    return [
        f"{rows:,}",
        f"{queued:,}",
        f"{wall_s:.2f}",
        f"{queued / wall_s:,.0f}",
        f"{usage.cpu_s:.2f}",
        f"{usage.peak_rss_kb / 1024:.0f}",
        f"{rows / baseline_s:,.0f}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    args = parser.parse_args(argv)
    print(f"# {machine_note()}", flush=True)
    table = at_each_size(args.rows, measure)
    if table is None:
        return 2
    headers = [
        "rows",
        "requeued",
        "wall s",
        "requeued rows/s",
        "CPU s",
        "peak RSS MB",
        "baseline: rows read/s",
    ]
    print()
    print(markdown_table(headers, table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
