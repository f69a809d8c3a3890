"""Redis round trips per row (issue #3): what one worker thread sends Redis for a batch.

    .venv/bin/python bench/round_trips.py            # 1,000 new meetings
    .venv/bin/python bench/round_trips.py --rows 200

Enqueues a batch of new meetings against a private Redis and the simulator (5 ms latency,
no limit), then runs its chunks in this process with the worker's own code, as a Celery
thread runs them (the chunk held when its message comes, then `process_chunk`), counting
every request redis-py writes to Redis and the code that asked for it. The lease keeper's
renewals are left out (they are per 10 s, not per row); the pause watch's reads are
counted but depend on time, not rows (50 a second per worker process).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from redis.connection import AbstractConnection

from bench.harness import markdown_table, open_stack, seed_meetings, write_csv
from jobs.enqueue import enqueue_rows
from jobs.sources.csv_file import read_rows
from worker.protocol.chunk import chunk_name, process_chunk
from worker.runtime import build_runtime
from worker.settings import load_settings

OURS = (str(Path(__file__).resolve().parent.parent / "worker"),)


def asker(frame: FrameType | None) -> str:
    """The innermost function of meetreg's worker that led to this request."""
    while frame is not None:
        code = frame.f_code
        if code.co_filename.startswith(OURS) and code.co_name not in ("wrapper",):
            return f"{Path(code.co_filename).name}:{code.co_name}"
        frame = frame.f_back
    return "?"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args(argv)
    with open_stack(5, None) as stack:
        path = write_csv(stack.workdir / "rows.csv", seed_meetings(stack.sim, "rt", args.rows))
        os.environ.update(stack.env({"MEETREG_RATE_LIMIT": "100000"}))
        settings = load_settings()
        current = build_runtime(settings)
        chunks: list[tuple[str, int, int]] = []

        def publish(sent: Iterable[tuple[str, int, int]]) -> int:
            before = len(chunks)
            chunks.extend(sent)
            return len(chunks) - before

        enqueue_rows(
            read_rows(path),
            store=current.store,
            publish=publish,
            source=str(path),
            chunk_size=settings.chunk_size,
        )
        current.deps.leases.stop()
        asked: Counter[str] = Counter()
        send = AbstractConnection.send_packed_command

        def counting(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
            asked[asker(sys._getframe(1))] += 1
            send(self, command, check_health)

        AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
        try:
            for chunk in chunks:
                # As the task_received hook holds it, for the message the task then runs.
                current.deps.leases.hold_chunk(chunk_name(*chunk), holder="bench")
                process_chunk(current.deps, *chunk, holder="bench")
        finally:
            AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
        done = current.store.batch_status(chunks[0][0]) if chunks else None
        current.close()
    rows = args.rows
    print(f"# {rows} new meetings, {len(chunks)} chunks; finished: {done and done.finished}")
    table = [(name, n, f"{n / rows:.3f}") for name, n in asked.most_common()]
    table.append(("all", sum(asked.values()), f"{sum(asked.values()) / rows:.3f}"))
    print(markdown_table(["asked by", "round trips", "per row"], table))
    return 0 if done is not None and done.finished else 1


if __name__ == "__main__":
    sys.exit(main())
