"""A chunk's name and its waves (worker.protocol.chunk); the rows' way through a chunk is
tested end to end in tests/pipeline."""

from __future__ import annotations

import pytest

from worker.protocol.chunk import Chunk, chunk_name, parse_chunk, wave_size
from worker.protocol.deps import Policy


def test_a_chunks_name_reads_back_as_the_same_rows() -> None:
    name = chunk_name('batch:with,odd"chars', 20, 30)
    assert parse_chunk(name) == Chunk('batch:with,odd"chars', 20, 30)
    assert name == '["batch:with,odd\\"chars",20,30]'  # as held in `inflight`: stable


@pytest.mark.parametrize(
    ("rate_per_s", "threads", "expected"),
    [
        (10_000.0, 32, 20),  # the rate leaves room: a full wave
        (320.0, 32, 10),  # 2 s of 320 req/s is 320 rows' requests / 2 per row / 32 threads
        (80.0, 32, 3),
        (1.0, 32, 1),  # never less than one row
        (0.0, 32, 1),
    ],
)
def test_a_wave_holds_about_two_seconds_of_requests_across_every_thread(
    rate_per_s: float, threads: int, expected: int
) -> None:
    assert wave_size(Policy(wave_size=20, threads=threads), rate_per_s) == expected
