"""The nightly job as operators run it: `meetreg nightly --once`, and the `meetreg.nightly`
task in a real `celery -A worker.app worker`, against the simulator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from cli_helpers import CELERY, command_env, free_port, meetreg, start_worker, stop, wait_until
from pipeline_helpers import ORGANIZER, posts

from worker import keys
from worker.simulator import SimulatorServer
from worker.store.outcome_store import OutcomeStore

HEADER = "user_id,meeting_id\n"


@pytest.fixture(scope="module")
def drop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("drop")


@pytest.fixture(scope="module")
def nightly_env(server: SimulatorServer, redis_url: str, drop_dir: Path) -> dict[str, str]:
    return command_env(
        **server.env(),
        REDIS_URL=redis_url,
        MEETREG_DROP_DIR=str(drop_dir),
        MEETREG_RATE_LIMIT="1000",
        MEETREG_CONCURRENCY="4",
    )


@pytest.fixture(scope="module")
def worker_log(
    nightly_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A worker for the module; yields its log."""
    folder = tmp_path_factory.mktemp("worker")
    log = folder / "worker.log"
    process = start_worker("nightly-tests", nightly_env, folder, log=log)
    yield log
    stop(process)


@pytest.fixture
def drop(drop_dir: Path) -> Path:
    """The module's drop folder, emptied."""
    for entry in drop_dir.iterdir():
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return drop_dir


def put(folder: Path, name: str, body: str, *, age_s: float = 60.0) -> None:
    path = folder / name
    path.write_text(body, encoding="utf-8")
    then = time.time() - age_s
    os.utime(path, (then, then))


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def today() -> str:
    return f"{datetime.now(UTC):%Y%m%d}"


def finished(store: OutcomeStore, batch_id: str) -> bool:
    return store.batch_exists(batch_id) and store.batch_status(batch_id).finished


def test_nightly_once_enqueues_good_files_rejects_broken_ones_and_workers_register_them(
    sim: SimulatorServer,
    redis_client: redis.Redis,
    nightly_env: dict[str, str],
    worker_log: Path,
    drop: Path,
) -> None:
    for i in range(3):
        sim.state.add_meeting(ORGANIZER, f"m-{i}")
    put(drop, "good.csv", HEADER + "".join(f"{ORGANIZER},m-{i}\n" for i in range(3)))
    put(drop, "broken.csv", f'{HEADER}{ORGANIZER},"m-9\n')
    put(drop, "uploading.csv", HEADER, age_s=0)
    put(drop, "notes.txt", "left alone")

    result = meetreg("nightly", "--once", env=nightly_env)

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    batch_id = f"good-{today()}"
    assert f"good.csv: batch {batch_id}, 3 rows, moved to processed/good.csv" in result.stdout
    assert names(drop) == ["notes.txt", "processed", "rejected", "uploading.csv"]
    assert names(drop / "processed") == ["good.csv"]
    assert names(drop / "rejected") == ["broken.csv", "broken.csv.error.txt"]
    reason = (drop / "rejected" / "broken.csv.error.txt").read_text()
    assert reason.startswith("broken.csv: unterminated quote") and reason.count("\n") == 1

    store = OutcomeStore(redis_client)
    wait_until(lambda: finished(store, batch_id), timeout_s=30, what="the worker to finish")
    assert store.batch_status(batch_id).counts["created"] == 3
    assert sum(sim.state.creations.values()) == 3

    os.utime(drop / "uploading.csv")  # still being written: on a slow machine it has aged
    again = meetreg("nightly", "--once", "--json", env=nightly_env)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)["last_24h"]
    assert [(b["batch_id"], b["counts"]["created"]) for b in summary["batches"]] == [(batch_id, 3)]


def test_rows_done_by_an_earlier_batch_are_skipped_without_a_graph_call(
    sim: SimulatorServer,
    redis_client: redis.Redis,
    nightly_env: dict[str, str],
    worker_log: Path,
    drop: Path,
    tmp_path: Path,
) -> None:
    for meeting in ("m-1", "m-2", "m-3"):
        sim.state.add_meeting(ORGANIZER, meeting)
    first = tmp_path / "first.csv"
    first.write_text(f"{HEADER}{ORGANIZER},m-1\n{ORGANIZER},m-2\n")
    assert meetreg("enqueue", str(first), "--batch-id", "first", env=nightly_env).returncode == 0
    store = OutcomeStore(redis_client)
    wait_until(lambda: finished(store, "first"), timeout_s=30, what="the earlier batch")

    def calls_about(meeting: str) -> int:
        return sum(f"/onlineMeetings/{meeting}/" in path for _, path, _ in sim.state.requests)

    before = {meeting: calls_about(meeting) for meeting in ("m-1", "m-2")}
    put(drop, "later.csv", f"{HEADER}{ORGANIZER},m-1\n{ORGANIZER},m-2\n{ORGANIZER},m-3\n")

    # What beat sends, twice, as two beats that both thought they led would.
    for _ in range(2):
        sent = subprocess.run(
            [CELERY, "-A", "worker.app", "call", "meetreg.nightly"],
            env=nightly_env,
            cwd=tmp_path,
            capture_output=True,
            check=False,
        )
        assert sent.returncode == 0, sent.stderr
    batch_id = f"later-{today()}"
    wait_until(lambda: finished(store, batch_id), timeout_s=30, what="the nightly batch")

    rows = list(store.iter_rows(batch_id, 3))
    assert [row.status for row in rows] == ["skipped", "skipped", "created"]
    assert {meeting: calls_about(meeting) for meeting in ("m-1", "m-2")} == before
    assert posts(sim) == 3  # one per meeting, ever
    assert names(drop / "processed") == ["later.csv"]
    wait_until(
        lambda: "already run or running" in worker_log.read_text(),
        timeout_s=10,
        what="the second message to find its slot claimed",
    )
    assert not store.batch_exists(f"{batch_id}-2")


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]


def test_nightly_once_without_a_drop_folder_is_refused(redis_url: str, tmp_path: Path) -> None:
    env = command_env(REDIS_URL=redis_url)
    assert_refused(meetreg("nightly", "--once", env=env), "MEETREG_DROP_DIR is not set")
    env["MEETREG_DROP_DIR"] = str(tmp_path / "missing")
    assert_refused(meetreg("nightly", "--once", env=env), "MEETREG_DROP_DIR", "not a folder")


def test_bad_cron_is_refused_by_the_command_and_by_beat(tmp_path: Path, redis_url: str) -> None:
    env = command_env(
        REDIS_URL=redis_url, MEETREG_DROP_DIR=str(tmp_path), MEETREG_NIGHTLY_CRON="0 2 * *"
    )
    assert_refused(meetreg("nightly", "--once", env=env), "MEETREG_NIGHTLY_CRON", "5 fields")
    beat = subprocess.run(
        [CELERY, "-A", "worker.app", "beat"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert_refused(beat, "MEETREG_NIGHTLY_CRON")


def test_when_redis_is_unreachable_nightly_once_leaves_the_files_and_says_so(
    tmp_path: Path,
) -> None:
    put(tmp_path, "meetings.csv", f"{HEADER}{ORGANIZER},m-1\n")
    env = command_env(
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", MEETREG_DROP_DIR=str(tmp_path)
    )
    assert_refused(meetreg("nightly", "--once", env=env), "cannot reach Redis")
    assert names(tmp_path) == ["meetings.csv"]


def test_nightly_without_once_says_when_the_next_run_is(tmp_path: Path) -> None:
    env = command_env(MEETREG_NIGHTLY_CRON="30 1 * * *", MEETREG_TIMEZONE="Europe/Paris")
    result = meetreg("nightly", "--json", env=env)
    assert result.returncode == 0, result.stderr
    schedule = json.loads(result.stdout)
    assert (schedule["cron"], schedule["timezone"]) == ("30 1 * * *", "Europe/Paris")
    assert datetime.fromisoformat(schedule["next_run"]).strftime("%H:%M") == "01:30"


def test_nightly_once_reads_no_link_and_says_nothing_of_a_files_text(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    secret = "s3cr3t-of-the-service-0123456789"
    env_file = tmp_path / "meetreg.env"
    env_file.write_text(f"AZURE_CLIENT_SECRET={secret}\n")
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.csv").symlink_to("../meetreg.env")
    then = time.time() - 60
    os.utime(drop / "a.csv", (then, then), follow_symlinks=False)
    os.utime(env_file, (then, then))
    put(drop, "b.csv", f"user_id,note={secret}\n{ORGANIZER},x\n")  # a regular file, refused
    env = command_env(REDIS_URL=redis_url, MEETREG_DROP_DIR=str(drop))

    result = meetreg("nightly", "--once", env=env)

    assert result.returncode == 1, result.stderr  # b.csv rejected
    assert "a.csv is a symbolic link" in result.stderr
    assert "b.csv: rejected, moved to rejected/b.csv" in result.stdout
    assert "the header has 2 columns" in result.stdout
    said = result.stdout + result.stderr
    (reason,) = [path.read_text() for path in drop.rglob("*.error.txt")]
    assert secret not in said and secret not in reason
    assert (drop / "a.csv").is_symlink() and env_file.read_text().startswith("AZURE_")
    assert redis_client.zcard(keys.BATCHES) == 0
