"""Running the installed `meetreg` console script as a user would, in a subprocess."""

from __future__ import annotations

import os
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
