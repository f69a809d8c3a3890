"""Bad input and bad configuration: exit 2, one line on stderr, no traceback, nothing enqueued."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from cli_helpers import command_env, meetreg

from worker import keys

GUID = "0f3a9c2e-5b7d-4e1f-9a8b-6c5d4e3f2a1b"
FILES = {
    "no header": (b"", "no header row"),
    "not text": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "not UTF-8"),
    "required column absent": (b"user_id,subject\nu@x.com,hello\n", "no meeting_id"),
    "broken quote": (f'user_id,meeting_id\n{GUID},"m1\n{GUID},m2\n'.encode(), "quote"),
    "utf-16": ("user_id,meeting_id\n".encode("utf-16"), "UTF-16"),
}


def assert_refused(result, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


def assert_nothing_enqueued(client: redis.Redis) -> None:
    assert client.keys("meetreg:*") == []
    assert client.llen("meetreg") == 0


@pytest.mark.parametrize("command", ["enqueue", "run"])
@pytest.mark.parametrize("case", sorted(FILES))
def test_unusable_file_is_refused_whole(
    command: str, case: str, tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    content, problem = FILES[case]
    path = tmp_path / "meetings.csv"
    path.write_bytes(content)
    env = command_env(
        REDIS_URL=redis_url, AZURE_TENANT_ID="t", AZURE_CLIENT_ID="c", AZURE_CLIENT_SECRET="s"
    )
    result = meetreg(command, str(path), env=env)
    assert_refused(result, str(path), problem)
    assert_nothing_enqueued(redis_client)


def test_broken_quote_far_down_the_file_enqueues_nothing(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    good = "".join(f"{GUID},meeting-{i}\n" for i in range(5000))
    path = tmp_path / "meetings.csv"
    path.write_text(f'user_id,meeting_id\n{good}{GUID},"m\n{GUID},x\n')
    result = meetreg("enqueue", str(path), env=command_env(REDIS_URL=redis_url))
    assert_refused(result, "quote")
    assert_nothing_enqueued(redis_client)


@pytest.mark.parametrize(
    ("target", "problem"), [("missing.csv", "no such file"), (".", "is a directory")]
)
def test_missing_file_and_folder_are_refused(
    target: str, problem: str, tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    result = meetreg("enqueue", str(tmp_path / target), env=command_env(REDIS_URL=redis_url))
    assert_refused(result, problem)
    assert_nothing_enqueued(redis_client)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("MEETREG_RATE_LIMIT", "fast"), ("MEETREG_CONCURRENCY", "0"), ("REDIS_URL", "http://x")],
)
def test_bad_setting_is_named_in_one_line(
    variable: str, value: str, tmp_path: Path, redis_url: str
) -> None:
    path = tmp_path / "meetings.csv"
    path.write_text(f"user_id,meeting_id\n{GUID},m1\n")
    env = command_env(REDIS_URL=redis_url)
    env[variable] = value
    assert_refused(meetreg("enqueue", str(path), env=env), variable)


def test_secret_in_a_bad_setting_is_never_echoed(tmp_path: Path, redis_url: str) -> None:
    path = tmp_path / "meetings.csv"
    path.write_text(f"user_id,meeting_id\n{GUID},m1\n")
    env = command_env(REDIS_URL="redis://:hunter2-secret@127.0.0.1:1/0")
    result = meetreg("enqueue", str(path), env=env)
    assert_refused(result, "cannot reach Redis")
    assert "hunter2" not in result.stderr + result.stdout


def test_run_without_credentials_names_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "meetings.csv"
    path.write_text(f"user_id,meeting_id\n{GUID},m1\n")
    assert_refused(meetreg("run", str(path), env=command_env()), "AZURE_TENANT_ID")


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["report"], ["retry"]])
def test_unknown_batch_is_refused(
    command: list[str], redis_url: str, redis_client: redis.Redis
) -> None:
    result = meetreg(*command, "no-such-batch", env=command_env(REDIS_URL=redis_url))
    assert_refused(result, "no-such-batch")


def test_bad_batch_id_is_refused(tmp_path: Path, redis_url: str, redis_client: redis.Redis) -> None:
    path = tmp_path / "meetings.csv"
    path.write_text(f"user_id,meeting_id\n{GUID},m1\n")
    result = meetreg(
        "enqueue", str(path), "--batch-id", "../../etc", env=command_env(REDIS_URL=redis_url)
    )
    assert_refused(result, "batch id")
    assert_nothing_enqueued(redis_client)


def test_run_with_a_wrong_secret_is_refused_before_anything_is_enqueued(
    sim, tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    path = tmp_path / "meetings.csv"
    path.write_text(f"user_id,meeting_id\n{GUID},m1\n")
    env = command_env(**sim.env(), REDIS_URL=redis_url)
    env["AZURE_CLIENT_SECRET"] = "wrong-secret-value"
    result = meetreg("run", str(path), env=env)
    assert_refused(result, "invalid_client", "AADSTS7000215")
    assert "wrong-secret-value" not in result.stderr + result.stdout
    assert_nothing_enqueued(redis_client)


CREDENTIALS = {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_SECRET": "s"}
NOTIFY = ["--notification-url", "https://hooks.example/graph/notifications"]


@pytest.mark.parametrize(
    ("args", "extra", "words"),
    [
        (["serve"], {}, ["MEETREG_WEBHOOK_CLIENT_STATE", "MEETREG_API_KEY"]),
        (["serve"], {"MEETREG_API_KEY": "short"}, ["MEETREG_API_KEY", "16"]),
        (
            ["serve"],
            {"MEETREG_API_KEY": "k" * 32, "MEETREG_VIEWER_KEY": "short"},
            ["MEETREG_VIEWER_KEY", "16"],
        ),
        (
            ["serve"],
            {"MEETREG_API_KEY": "k" * 32, "MEETREG_PUBLIC_PAGES": "maybe"},
            ["MEETREG_PUBLIC_PAGES"],
        ),
        (["subscribe", "--user", GUID, *NOTIFY], CREDENTIALS, ["MEETREG_WEBHOOK_CLIENT_STATE"]),
        (
            ["subscribe", "--user", GUID, "--notification-url", "ftp://x/y"],
            {**CREDENTIALS, "MEETREG_WEBHOOK_CLIENT_STATE": "c" * 32},
            ["ftp://x/y", "https"],
        ),
        (
            ["subscribe", "--user", GUID, *NOTIFY],
            {"MEETREG_WEBHOOK_CLIENT_STATE": "c" * 32},
            ["AZURE_TENANT_ID"],
        ),
    ],
)
def test_event_commands_refuse_a_configuration_they_cannot_work_with(
    args: list[str],
    extra: dict[str, str],
    words: list[str],
    redis_url: str,
    redis_client: redis.Redis,
) -> None:
    result = meetreg(*args, env=command_env(REDIS_URL=redis_url, **extra))
    assert_refused(result, *words)
    assert_nothing_enqueued(redis_client)


def test_enqueue_under_an_existing_batch_id_with_other_rows_is_refused(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    env = command_env(REDIS_URL=redis_url)
    first = tmp_path / "first.csv"  # with an invalid row and a duplicate: they resume too
    rows = [f"{GUID},m-{i}" for i in range(3)] + ["nobody,m-9", f"{GUID},m-0"]
    first.write_text("user_id,meeting_id\n" + "\n".join(rows) + "\n")
    assert meetreg("enqueue", str(first), "--batch-id", "crm-1", env=env).returncode == 0
    rows_before = redis_client.hgetall(keys.rows("crm-1"))
    queued_before = redis_client.llen(keys.QUEUE)

    other = tmp_path / "other.csv"  # as many rows, other meetings
    other.write_text("user_id,meeting_id\n" + "".join(f"{GUID},x-{i}\n" for i in range(5)))
    result = meetreg("enqueue", str(other), "--batch-id", "crm-1", env=env)

    assert_refused(result, "crm-1", "rows differ")
    assert redis_client.hgetall(keys.rows("crm-1")) == rows_before
    assert redis_client.llen(keys.QUEUE) == queued_before
    # The same rows again resume the batch, as before.
    again = meetreg("enqueue", str(first), "--batch-id", "crm-1", env=env)
    assert again.returncode == 0, again.stderr
