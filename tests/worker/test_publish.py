"""Sending to the workers: each chunk one task message on the meetreg queue, a notification
one message of its own task; a broker that cannot be reached is a StoreError. In a process of
its own, as `meetreg enqueue` or `meetreg serve` would send (the Celery app reads REDIS_URL
once per process), to the session's Redis."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import redis
from cli_helpers import command_env, free_port

from worker import keys

SEND = """
from worker.errors import StoreError
from worker.publish import publish_change, publish_chunks, publish_lifecycle

class Note:
    def __init__(self, kind):
        self.kind = kind
    def to_json_dict(self):
        return {"kind": self.kind}

try:
    print(publish_chunks([("b-1", 0, 100), ("b-1", 100, 150)]))
    publish_change(Note("updated"))
    publish_lifecycle(Note("reauthorizationRequired"))
except StoreError as exc:
    print(exc)
"""


def send(redis_url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SEND],
        env=command_env(REDIS_URL=redis_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_each_chunk_and_notification_is_one_task_message_on_the_queue(
    redis_url: str, redis_client: redis.Redis
) -> None:
    assert send(redis_url) == "2"
    # The broker pushes to the list's head: the oldest message is the last one.
    messages = [json.loads(raw) for raw in reversed(redis_client.lrange(keys.QUEUE, 0, -1))]
    sent = [
        (message["headers"]["task"], json.loads(base64.b64decode(message["body"]))[0])
        for message in messages
    ]
    assert sent == [
        (keys.PROCESS_CHUNK_TASK, ["b-1", 0, 100]),
        (keys.PROCESS_CHUNK_TASK, ["b-1", 100, 150]),
        (keys.HANDLE_CHANGE_TASK, [{"kind": "updated"}]),
        (keys.HANDLE_LIFECYCLE_TASK, [{"kind": "reauthorizationRequired"}]),
    ]


def test_a_broker_that_cannot_be_reached_is_a_store_error_naming_why() -> None:
    said = send(f"redis://127.0.0.1:{free_port()}/0")
    assert said.startswith("cannot send to the queue: OperationalError: ")
    assert "Connection refused" in said
