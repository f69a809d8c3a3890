"""Redis as production runs it: over TLS, as an ACL user, behind Sentinel, and one that may
evict keys. Each test starts its own real redis-server (and Sentinel) with that setting and
runs the installed commands against it: `meetreg`, `celery -A worker.app worker` and beat.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cli_helpers import command_env, meetreg, start_beat, start_worker, stop, wait_until
from pipeline_helpers import meetings_csv

from worker import keys
from worker.redis.connection import connect
from worker.redis.embedded import EmbeddedRedis
from worker.redis.target import parse_redis_url
from worker.simulator import SimulatorServer
from worker.simulator.tls import make_tls_files
from worker.store.outcome_store import OutcomeStore

ROWS = 5
PASSWORD = "acl-secret-8c1f2e"
# What an operator grants meetreg: everything but the admin and dangerous commands.
ACL_USER = ["--user", "default", "off"]
ACL_USER += ["--user", "meetreg", "on", f">{PASSWORD}", "~*", "&*", "+@all", "-@dangerous"]
BEAT_LEADS = "beat: Acquired lock"
EVICTION_WARNING = "Redis may drop meetreg's keys"
KOMBU_UNVERIFIED = "defaulting to insecure SSL"


def batch_file(sim: SimulatorServer, tmp_path: Path) -> Path:
    return meetings_csv(sim, tmp_path / "meetings.csv", [f"m-{i}" for i in range(ROWS)])


def env_for(sim: SimulatorServer, redis_url: str, **extra: str) -> dict[str, str]:
    # Few threads: a worker with the default 256 takes seconds to start and stop.
    small = {"MEETREG_RATE_LIMIT": "1000", "MEETREG_CONCURRENCY": "2"}
    return command_env(**{**sim.env(), "REDIS_URL": redis_url, **small, **extra})


def assert_refused_in_one_line(result, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr


def checks(doctor) -> dict[str, dict[str, str]]:
    return {check["name"]: check for check in json.loads(doctor.stdout)["checks"]}


def all_created(sim: SimulatorServer, store: OutcomeStore, batch_id: str) -> None:
    status = store.batch_status(batch_id)
    assert status.finished
    assert status.counts["created"] == ROWS
    assert sum(sim.state.creations.values()) == ROWS


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(tls=make_tls_files(tmp_path / "redis-tls")) as server:
        yield server


def test_a_batch_runs_over_tls_with_the_ca_in_the_url_or_in_ssl_cert_file(
    sim: SimulatorServer, tls_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    """`enqueue` trusts Redis' CA through ?ssl_ca_certs=; the worker and beat through
    SSL_CERT_FILE (a bundle with the simulator's CA and Redis' CA, as a company CA would)."""
    assert tls_redis.tls is not None
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(Path(sim.ca_path).read_text() + tls_redis.tls.ca_path.read_text())
    bare_url = f"rediss://127.0.0.1:{tls_redis.port}/0"
    enqueued = meetreg("enqueue", str(batch_file(sim, tmp_path)), env=env_for(sim, tls_redis.url))
    assert enqueued.returncode == 0, enqueued.stderr
    batch_id = enqueued.stdout.strip()

    worker_env = env_for(sim, bare_url, SSL_CERT_FILE=str(bundle))
    worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
    worker = start_worker("tls", worker_env, tmp_path, log=worker_log)
    beat = start_beat(worker_env, tmp_path, beat_log)
    store = OutcomeStore(connect(parse_redis_url(tls_redis.url)))
    try:
        wait_until(lambda: store.batch_status(batch_id).finished, timeout_s=60, what="the batch")
        wait_until(lambda: BEAT_LEADS in beat_log.read_text(), timeout_s=30, what="beat's lock")
    finally:
        stop(worker)
        stop(beat)
    all_created(sim, store, batch_id)
    text = worker_log.read_text() + beat_log.read_text()
    assert KOMBU_UNVERIFIED not in text  # Celery verified the certificate too
    assert EVICTION_WARNING not in text  # noeviction: nothing to warn about


def test_redis_with_a_certificate_from_an_untrusted_ca_is_refused_in_one_line(
    sim: SimulatorServer, tls_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    path = batch_file(sim, tmp_path)
    wrong_ca = f"rediss://127.0.0.1:{tls_redis.port}/0?ssl_ca_certs={sim.ca_path}"
    bare = f"rediss://127.0.0.1:{tls_redis.port}/0"  # SSL_CERT_FILE: the simulator's CA only
    for url in (wrong_ca, bare):
        result = meetreg("enqueue", str(path), env=env_for(sim, url))
        assert_refused_in_one_line(result, "not trusted", f"127.0.0.1:{tls_redis.port}")


def test_an_acl_user_without_dangerous_commands_runs_workers_and_its_password_stays_hidden(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    path = batch_file(sim, tmp_path)
    with EmbeddedRedis(args=ACL_USER) as server:
        url = f"redis://meetreg:{PASSWORD}@127.0.0.1:{server.port}/0"
        env = env_for(sim, url)
        enqueued = meetreg("enqueue", str(path), "--batch-id", "acl-1", env=env)
        assert enqueued.returncode == 0, enqueued.stderr
        logs = [tmp_path / "worker.log", tmp_path / "beat.log"]
        worker = start_worker("acl", env, tmp_path, log=logs[0])
        beat = start_beat(env, tmp_path, logs[1])
        store = OutcomeStore(connect(parse_redis_url(url)))
        try:
            wait_until(lambda: store.batch_status("acl-1").finished, timeout_s=60, what="batch")
            wait_until(lambda: BEAT_LEADS in logs[1].read_text(), timeout_s=30, what="beat")
        finally:
            stop(worker)
            stop(beat)
        all_created(sim, store, "acl-1")
        doctor = meetreg("doctor", "--json", env=env)
        wrong = f"redis://meetreg:wrong-{PASSWORD}@127.0.0.1:{server.port}/0"
        refused = meetreg("status", "acl-1", env=env_for(sim, wrong))

    # INFO and CONFIG are @dangerous: doctor and the worker say the policy could not be
    # read, and go on.
    assert doctor.returncode == 0, doctor.stdout
    assert checks(doctor)["redis"]["status"] == "ok"
    assert checks(doctor)["redis eviction"]["status"] == "warn"
    assert "maxmemory-policy could not be read" in logs[0].read_text()
    assert_refused_in_one_line(refused, "refused the user name or password")
    outputs = [enqueued.stdout, enqueued.stderr, doctor.stdout, refused.stderr]
    assert not [text for text in outputs + [log.read_text() for log in logs] if PASSWORD in text]


def test_a_batch_runs_through_sentinel_and_beat_finds_the_master(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    path = batch_file(sim, tmp_path)
    with (
        EmbeddedRedis() as master,
        EmbeddedRedis(sentinel_of=("meetreg-master", master.port)) as sentinel,
    ):
        url = f"sentinel://127.0.0.1:{sentinel.port}"
        env = env_for(sim, url, MEETREG_REDIS_SENTINEL_MASTER="meetreg-master")
        on_master = redis.Redis(port=master.port)
        beat = start_beat(env, tmp_path, tmp_path / "beat.log")
        try:
            result = meetreg("run", str(path), "--batch-id", "ha-1", env=env)
            # redbeat found the master through the Sentinel too: its lock is there.
            wait_until(lambda: on_master.exists(keys.BEAT_LOCK), timeout_s=30, what="beat")
        finally:
            stop(beat)
        assert result.returncode == 0, result.stderr
        all_created(sim, OutcomeStore(on_master), "ha-1")

        unknown = meetreg("status", "ha-1", env={**env, "MEETREG_REDIS_SENTINEL_MASTER": "nope"})
    assert_refused_in_one_line(unknown, "master nope", f"127.0.0.1:{sentinel.port}")


def test_a_redis_that_may_evict_keys_is_reported_by_the_worker_and_fails_doctor(
    sim: SimulatorServer, tmp_path: Path
) -> None:
    with EmbeddedRedis(args=["--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru"]) as lru:
        env = env_for(sim, lru.url)
        log = tmp_path / "worker.log"
        worker = start_worker("evicting", env, tmp_path, log=log)
        try:
            wait_until(
                lambda: EVICTION_WARNING in log.read_text(), timeout_s=30, what="the warning"
            )
        finally:
            stop(worker)
        doctor = meetreg("doctor", "--json", env=env)
    (warning,) = [line for line in log.read_text().splitlines() if EVICTION_WARNING in line]
    assert "WARNING" in warning
    assert "allkeys-lru" in warning and "set maxmemory-policy noeviction" in warning
    assert doctor.returncode == 1
    assert checks(doctor)["redis eviction"]["status"] == "fail"
