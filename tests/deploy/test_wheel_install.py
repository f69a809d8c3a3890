"""meetreg as a user installs it: the built wheel in a fresh virtualenv, without dev extras.

The dev install hides what a production install lacks (pytest pulled in `packaging`, which
kombu's Redis transport imports and only `celery[redis]` brings). So this builds the wheel,
installs it on exactly the versions of requirements.lock (hashes checked), and runs the
demo, a real `celery -A worker.app worker` on a small batch and `meetreg serve`'s health
check from that virtualenv, in a folder outside the source tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_helpers import command_env, free_port, stop, wait_until
from pipeline_helpers import ORGANIZER

from worker.simulator import SimulatorServer

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT_S = 300


class Installed:
    """A virtualenv holding the wheel and the runtime lock, nothing else."""

    def __init__(self, venv: Path, cwd: Path) -> None:
        self.bin = venv / "bin"
        self.cwd = cwd

    def env(self, **extra: str) -> dict[str, str]:
        env = command_env(**extra)
        for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            env.pop(name, None)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        return env

    def run(self, *argv: str, env: dict[str, str], timeout: float = 120):
        return subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            env=env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _pip(venv: Path, *args: str) -> None:
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", *args],
        check=True,
        capture_output=True,
        timeout=INSTALL_TIMEOUT_S,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    where = tmp_path_factory.mktemp("wheel")
    dist = where / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    (wheel,) = dist.glob("meetreg-*.whl")
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    _pip(
        venv,
        "install",
        "--quiet",
        "--require-hashes",
        "--no-deps",
        "-r",
        str(ROOT / "requirements.lock"),
    )
    _pip(venv, "install", "--quiet", "--no-deps", str(wheel))
    _pip(venv, "check")
    cwd = where / "cwd"
    cwd.mkdir()
    yield Installed(venv, cwd)


def test_the_wheel_runs_from_its_own_virtualenv_not_the_source_tree(installed: Installed) -> None:
    found = installed.run(
        "python",
        "-c",
        "import jobs, worker; print(worker.__file__); print(jobs.__file__)",
        env=installed.env(),
    )
    assert found.returncode == 0, found.stderr
    for path in found.stdout.split():
        assert "site-packages" in path and not path.startswith(str(ROOT / "worker"))
    # No dev tool came along: what a user installs is what this test runs.
    assert installed.run("python", "-c", "import pytest", env=installed.env()).returncode != 0


def test_the_demo_runs_on_an_embedded_redis_and_the_simulator(installed: Installed) -> None:
    done = installed.run("meetreg", "demo", "--rows", "200", env=installed.env(), timeout=180)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "created" in done.stdout


class Started:
    """A process of the installed virtualenv, its output in a log file under its folder."""

    def __init__(self, installed: Installed, name: str, argv: list[str], env: dict[str, str]):
        self.log = installed.cwd / f"{name}.log"
        with self.log.open("wb") as output:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [str(installed.bin / argv[0]), *argv[1:]],
                env=env,
                cwd=installed.cwd,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"exited: {self.log.read_text()}")


def test_a_worker_and_serve_from_the_wheel_finish_a_batch_and_report_healthy(
    installed: Installed, sim: SimulatorServer, redis_url: str, redis_client
) -> None:
    meetings = [f"wheel-m-{i}" for i in range(12)]
    for meeting in meetings:
        sim.state.add_meeting(ORGANIZER, meeting)
    csv_file = installed.cwd / "batch.csv"
    csv_file.write_text("user_id,meeting_id\n" + "".join(f"{ORGANIZER},{m}\n" for m in meetings))
    env = installed.env(
        **sim.env(),
        REDIS_URL=redis_url,
        MEETREG_RATE_LIMIT="1000",
        MEETREG_API_KEY="wheel-test-key-0123456789abcdef",
    )
    port = free_port()
    worker = Started(
        installed, "worker", ["celery", "-A", "worker.app", "worker", "-n", "w@%h"], env
    )
    served = Started(
        installed, "serve", ["meetreg", "serve", "--host", "127.0.0.1", "--port", str(port)], env
    )
    health: dict = {}
    status: dict = {}

    def healthy() -> bool:
        nonlocal health
        worker.alive()
        served.alive()
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()
        except httpx.TransportError:
            return False
        return bool(health["ok"])

    def finished() -> bool:
        nonlocal status
        worker.alive()
        shown = installed.run("meetreg", "status", "wheel", "--json", env=env)
        status = json.loads(shown.stdout)
        return bool(status["finished"])

    try:
        wait_until(healthy, timeout_s=60, what=f"serve to see the worker healthy: {health}")
        assert health == {"ok": True, "redis": "ok", "workers": 1}
        enqueued = installed.run(
            "meetreg", "enqueue", str(csv_file), "--batch-id", "wheel", env=env
        )
        assert enqueued.returncode == 0, enqueued.stderr
        wait_until(finished, timeout_s=90, what="the wheel's worker to finish", poll_s=0.5)
    finally:
        stop(worker.process)
        stop(served.process)
    assert status["counts"]["created"] == len(meetings)
    assert sim.state.stats()["duplicates"] == []
    for started in (worker, served):
        assert "Traceback" not in started.log.read_text()
