"""Running the installed `meetreg` console script as a user would, in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

MEETREG = str(Path(sys.executable).parent / "meetreg")
CELERY = str(Path(sys.executable).parent / "celery")


def command_env(**extra: str) -> dict[str, str]:
    """This process's environment (already cleaned of meetreg settings) plus `extra`."""
    env = dict(os.environ)
    env.pop("MEETREG_TEST_REDIS_URL", None)
    env.update(extra)
    env["COLUMNS"] = "200"  # Rich wraps to the terminal width; keep lines whole
    return env


def meetreg(*args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 120):
    return subprocess.run(
        [MEETREG, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_until(predicate, *, timeout_s: float, what: str, poll_s: float = 0.1) -> None:
    """Poll `predicate` until true; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(poll_s)


def start_worker(
    name: str,
    env: dict[str, str],
    cwd: Path,
    *,
    log: Path | None = None,
    errors: Path | None = None,
    options: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """`celery -A worker.app worker`, as an operator starts it (`options` added, e.g.
    `("-c", "8")`); with `log`, at INFO level and its output written there; with
    `errors`, its stderr alone (its log lines) written there, its stdout (the banner)
    dropped."""
    level = "INFO" if log or errors else "WARNING"
    argv = ["worker", "-n", f"{name}@%h", f"--loglevel={level}", *options]
    if errors is not None:
        with errors.open("wb") as output:  # the child keeps its own descriptor
            return subprocess.Popen(
                [CELERY, "-A", "worker.app", *argv],
                env=_no_metrics_port(env),
                cwd=cwd,
                stdout=subprocess.DEVNULL,
                stderr=output,
            )
    return _celery(argv, env, cwd, log)


def start_beat(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """`celery -A worker.app beat`, its output written to `log`."""
    return _celery(["beat", "--loglevel=INFO"], env, cwd, log)


def _no_metrics_port(env: dict[str, str]) -> dict[str, str]:
    """A worker opens /metrics on 0.0.0.0:9808 by default; tests listen on 127.0.0.1 only,
    and several workers run at once: no port unless the test gives one."""
    return {"MEETREG_METRICS_PORT": "0", **env}


def _celery(
    args: list[str], env: dict[str, str], cwd: Path, log: Path | None
) -> subprocess.Popen[bytes]:
    env = _no_metrics_port(env)
    if log is None:
        return subprocess.Popen(
            [CELERY, "-A", "worker.app", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    with log.open("wb") as output:  # the child keeps its own descriptor
        return subprocess.Popen(
            [CELERY, "-A", "worker.app", *args],
            env=env,
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def stop(process: subprocess.Popen) -> None:
    """Ask politely (SIGTERM), then insist."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
