"""The container's health check, for each role the image runs: exit 0 healthy, 1 not.

The image's HEALTHCHECK runs it with no argument: the role is then read from the
container's command (PID 1), so one image is checked right as a worker, beat, serve or
Flower. Kubernetes runs it for beat, which serves no port (`healthcheck.py beat`).

    worker   its /metrics port (MEETREG_METRICS_PORT, else 9808) takes a connection
             (the port is the worker process's own thread; a scrape would read Redis)
    serve    GET /readyz answers 200: Redis answers (not whether a worker runs, so a
             worker outage keeps the webhook reachable)
    beat     some beat holds the schedule's lock in Redis; healthy too when Redis does
             not answer, since restarting beat would not bring Redis back
    flower   GET /healthcheck answers 200
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.request
from pathlib import Path

TIMEOUT_S = 5.0
READY_PATH = "/readyz"
DEFAULT_SERVE_PORT = 8080
FLOWER_PORT = 5555
ROLES = ("worker", "serve", "beat", "flower")


def role_of(argv: list[str]) -> str:
    """The role a container's command runs: `meetreg serve`, `celery ... beat` and so on."""
    for role in ("serve", "beat", "flower"):
        if role in argv:
            return role
    return "worker"


def option(argv: list[str], name: str, default: int) -> int:
    """`--port 8081` or `--port=8081` in a command, else `default`."""
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return int(argv[index + 1])
        if arg.startswith(f"{name}="):
            return int(arg.split("=", 1)[1])
    return default


def answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:  # noqa: S310 - our URL
            return int(response.status) == 200
    except OSError:  # refused, timed out, or an HTTP error status
        return False


def takes_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S).close()
    except OSError:
        return False
    return True


def beat_lock_held() -> bool:
    import redis

    from worker import keys
    from worker.errors import ConfigError
    from worker.redis.connection import connect
    from worker.settings import load_settings

    try:
        client = connect(load_settings().require_redis(), max_connections=1)
    except ConfigError as exc:  # beat refuses such a configuration too
        print(f"healthcheck: {exc}", file=sys.stderr)
        return False
    try:
        return bool(client.exists(keys.BEAT_LOCK))
    except (redis.RedisError, OSError):  # Redis does not answer: not beat's to mend
        return True
    finally:
        client.close()


def healthy(role: str, argv: list[str]) -> bool:
    if role == "worker":
        port = int(os.environ.get("MEETREG_METRICS_PORT") or 9808)
        # 0: the worker serves no /metrics, and there is nothing to ask.
        return port == 0 or takes_connections(port)
    if role == "serve":
        port = option(argv, "--port", DEFAULT_SERVE_PORT)
        return answers_200(f"http://127.0.0.1:{port}{READY_PATH}")
    if role == "beat":
        return beat_lock_held()
    port = option(argv, "--port", FLOWER_PORT)
    return answers_200(f"http://127.0.0.1:{port}/healthcheck")


def container_command() -> list[str]:
    try:
        return Path("/proc/1/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:  # not in a Linux container: the role must be given
        return []


def main(args: list[str]) -> int:
    command = container_command()
    role = args[0] if args else role_of(command)
    if role not in ROLES:
        print(f"healthcheck: role must be one of {', '.join(ROLES)}", file=sys.stderr)
        return 2
    return 0 if healthy(role, command) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
