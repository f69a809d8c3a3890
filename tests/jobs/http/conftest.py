"""A batch that fails in every way a row can, made through the module's `meetreg serve`
(tests/jobs/conftest.py) and finished by its worker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from cli_helpers import meetreg, wait_until
from serve_helpers import (
    FAILING_BATCH_ROWS,
    Served,
    bearer,
)

from worker.simulator import SimulatorServer
from worker.store.outcome_store import OutcomeStore


@pytest.fixture
def failing_batch(
    sim: SimulatorServer,
    redis_client: redis.Redis,
    served: Served,
    serve_env: dict[str, str],
    worker: None,
    tmp_path: Path,
) -> Callable[..., str]:
    """Make a batch of FAILING_BATCH_ROWS, wait until the worker has finished it, and
    return its id. Its meetings' ids start with the batch id, so that batches do not
    share meetings. Sent to the JSON intake; with `file_name`, written to a CSV of that
    name and given to `meetreg enqueue` (the name shows as the batch's source)."""
    store = OutcomeStore(redis_client)

    def make(batch_id: str, file_name: str | None = None) -> str:
        rows = [(user, f"{batch_id}-{meeting}") for user, meeting in FAILING_BATCH_ROWS]
        for user, meeting in rows:
            if "-m-ok-" in meeting or meeting.endswith("-m-forbidden"):
                sim.state.add_meeting(user, meeting)
        if file_name is None:
            items = [{"user_id": user, "meeting_id": meeting} for user, meeting in rows]
            answer = served.http.post(
                "/api/registrations", params={"batch_id": batch_id}, json=items, headers=bearer()
            )
            assert answer.status_code == 202, answer.text
        else:
            csv_file = tmp_path / file_name
            lines = [f"{user},{meeting}" for user, meeting in rows]
            csv_file.write_text("user_id,meeting_id\n" + "\n".join(lines) + "\n")
            done = meetreg("enqueue", str(csv_file), "--batch-id", batch_id, env=serve_env)
            assert done.returncode == 0, done.stderr
        wait_until(lambda: store.batch_status(batch_id).finished, timeout_s=30, what="the batch")
        return batch_id

    return make
