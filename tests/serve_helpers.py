"""`meetreg serve` in a subprocess, as an operator runs it, and ways to talk to it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
from cli_helpers import MEETREG, free_port, stop, wait_until
from pipeline_helpers import NO_POLICY_USER, ORGANIZER

CLIENT_STATE = "client-state-for-tests-0123456789"
API_KEY = "api-key-for-tests-0123456789abcdef"
VIEWER_KEY = "viewer-key-for-tests-0123456789"
VIEWER = ("operator", VIEWER_KEY)  # HTTP Basic: any user name, the viewer key

# The status page's batch: two meetings registered, two unknown to Graph (404), one whose
# organizer has no access policy (403), a repeated row (skipped).
FAILING_BATCH_ROWS = [
    (ORGANIZER, "m-ok-1"),
    (ORGANIZER, "m-ok-2"),
    (ORGANIZER, "m-gone-1"),
    (ORGANIZER, "m-gone-2"),
    (NO_POLICY_USER, "m-forbidden"),
    (ORGANIZER, "m-ok-1"),
]
FAILING_BATCH_COUNTS = {"created": 2, "failed": 3, "skipped": 1}


class Served:
    """A running `meetreg serve` and httpx clients pointed at it: `http` presents no
    credential, `pages` the viewer key (HTTP Basic), as an operator's browser does."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / "serve.log"
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            [MEETREG, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            cwd=cwd,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self.http = httpx.Client(base_url=self.url, timeout=10)
        self.pages = httpx.Client(base_url=self.url, timeout=10, auth=VIEWER)
        wait_until(self._answers, timeout_s=30, what="meetreg serve to listen")

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"meetreg serve exited: {self.log.read_text()}")
        try:
            self.http.get("/healthz")
        except httpx.TransportError:
            return False
        return True

    def close(self) -> None:
        self.http.close()
        self.pages.close()
        stop(self.process)
        self._log_file.close()


def bearer(key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
