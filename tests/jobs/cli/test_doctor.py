"""`meetreg doctor` against a real Redis and the simulator: what passes, what fails, and
never a secret in what it prints."""

from __future__ import annotations

import json

import pytest
import redis
from cli_helpers import command_env, meetreg, wait_until
from pipeline_helpers import NO_POLICY_USER, ORGANIZER, posts
from store_helpers import row

from jobs.cli.doctor import Status, eviction_check, persistence_check, redis_version_check
from worker.redis.eviction import EvictionPolicy
from worker.simulator import SimulatorServer
from worker.store.outcome_store import OutcomeStore


def checks(result) -> dict[str, dict[str, str]]:
    return {check["name"]: check for check in json.loads(result.stdout)["checks"]}


def test_a_ready_machine_passes_and_prints_no_secret(
    sim: SimulatorServer,
    redis_url: str,
    redis_client: redis.Redis,  # empty: no batch another test left behind
) -> None:
    env = command_env(**sim.env(), REDIS_URL=redis_url)
    result = meetreg("doctor", "--user", ORGANIZER, "--json", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    found = checks(result)
    assert {
        name: check["status"] for name, check in found.items() if name != "redis persistence"
    } == {
        "configuration": "ok",
        "redis": "ok",
        "redis version": "ok",
        "redis eviction": "ok",
        "batches": "ok",
        "token": "ok",
        "graph meetings": "ok",
        "registration API": "skipped",
    }
    assert "not checked (give --sample-meeting)" in found["registration API"]["detail"]
    assert sim.client_secret not in result.stdout + result.stderr
    assert posts(sim) == 0  # the probe only reads


def test_a_setting_under_its_old_name_works_and_is_a_warning(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis
) -> None:
    env = command_env(**sim.env(), REDIS_URL=redis_url, MEETREG_BATCH_SIZE="5")
    result = meetreg("doctor", "--json", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    renamed = checks(result)["renamed setting"]
    assert renamed["status"] == "warn"
    assert renamed["detail"] == "MEETREG_BATCH_SIZE is deprecated; use MEETREG_ENVELOPE_SIZE"
    assert result.stderr.count("MEETREG_BATCH_SIZE is deprecated") == 1


def test_a_batch_whose_rows_stopped_moving_fails_naming_it_and_what_to_do(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis
) -> None:
    store = OutcomeStore(redis_client, stall_after_s=3)
    store.create_batch("stuck", "f.csv", [row(1), row(2)])
    store.create_batch("waiting", "f.csv", [row(1)])  # queued only: not stalled
    store.claim("stuck", row(1), "stuck-m1", "a worker gone", 10_000)  # never renewed
    wait_until(lambda: store.batch_status("stuck").stalled, timeout_s=30, what="stuck stalled")

    result = meetreg(
        "doctor", env=command_env(**sim.env(), REDIS_URL=redis_url, MEETREG_RECOVERY_S="3")
    )
    assert result.returncode == 1, result.stdout + result.stderr
    (line,) = [line for line in result.stdout.splitlines() if "stalled batch" in line]
    assert line.startswith("fail")
    assert "stuck: no row has moved for" in line
    assert "1 row in workers' hands" in line
    assert "check that workers are running" in line and "`meetreg status stuck`" in line
    assert "waiting" not in result.stdout


def test_a_wrong_secret_fails_naming_the_aadsts_code(sim: SimulatorServer, redis_url: str) -> None:
    env = command_env(
        **{**sim.env(), "AZURE_CLIENT_SECRET": "wrong-secret-value"}, REDIS_URL=redis_url
    )
    result = meetreg("doctor", "--user", ORGANIZER, env=env)
    assert result.returncode == 1
    token_line = next(line for line in result.stdout.splitlines() if " token " in f" {line} ")
    assert token_line.startswith("fail")
    assert "AADSTS7000215" in token_line
    assert "wrong-secret-value" not in result.stdout + result.stderr
    assert "skipped" in result.stdout  # the Graph probe needs a token


def test_a_user_without_the_access_policy_fails_the_graph_probe(
    sim: SimulatorServer, redis_url: str
) -> None:
    result = meetreg(
        "doctor",
        "--user",
        NO_POLICY_USER,
        "--json",
        env=command_env(**sim.env(), REDIS_URL=redis_url),
    )
    assert result.returncode == 1
    probe = checks(result)["graph meetings"]
    assert probe["status"] == "fail"
    assert "403" in probe["detail"]


def test_a_redis_that_may_evict_keys_fails(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis
) -> None:
    before = redis_client.config_get("maxmemory-policy")["maxmemory-policy"]
    redis_client.config_set("maxmemory-policy", "volatile-lru")
    try:
        result = meetreg("doctor", "--json", env=command_env(**sim.env(), REDIS_URL=redis_url))
    finally:
        redis_client.config_set("maxmemory-policy", before)
    assert result.returncode == 1
    assert checks(result)["redis eviction"]["status"] == "fail"
    assert "volatile-lru" in checks(result)["redis eviction"]["detail"]


def test_an_unreachable_redis_fails_without_showing_its_password(sim: SimulatorServer) -> None:
    env = command_env(**sim.env(), REDIS_URL="redis://:hunter2-password@127.0.0.1:1/0")
    result = meetreg("doctor", "--json", env=env)
    assert result.returncode == 1
    assert checks(result)["redis"]["status"] == "fail"
    assert "hunter2" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("version", "status"),
    [
        ("7.0.15", Status.OK),
        ("6.2.0", Status.OK),
        ("6.0.9", Status.FAIL),
        ("5.0", Status.FAIL),
        (None, Status.WARN),
    ],
)
def test_redis_versions(version: str | None, status: Status) -> None:
    assert redis_version_check(version).status is status


@pytest.mark.parametrize(
    ("policy", "maxmemory", "status"),
    [
        ("noeviction", 0, Status.OK),
        ("noeviction", 1 << 30, Status.OK),
        ("allkeys-lru", 1 << 30, Status.FAIL),
        ("volatile-ttl", 0, Status.FAIL),
        (None, 0, Status.WARN),  # Redis would not say: checked by hand
    ],
)
def test_eviction_policies(policy: str | None, maxmemory: int, status: Status) -> None:
    check = eviction_check(EvictionPolicy(policy, maxmemory))
    assert check.status is status
    if status is not Status.OK:
        assert "noeviction" in check.detail  # the fix is named


@pytest.mark.parametrize(
    ("aof", "save", "status", "words"),
    [
        (True, "", Status.OK, "AOF on"),
        (False, "3600 1", Status.WARN, "snapshots only"),
        (False, "", Status.WARN, "nothing on disk"),
        (False, None, Status.WARN, "not readable"),
        (None, None, Status.WARN, "not readable"),
    ],
)
def test_persistence(aof: bool | None, save: str | None, status: Status, words: str) -> None:
    check = persistence_check(aof, save)
    assert check.status is status
    assert words in check.detail


@pytest.mark.parametrize(
    ("mode", "status", "words"),
    [
        ("live", "ok", "meeting registration API: live"),
        ("gone", "fail", "meeting registration API: gone since 2024-12-12"),
        ("app-only-refused", "fail", "meeting registration API: refused for app-only tokens"),
    ],
)
def test_a_sample_meeting_shows_the_registration_apis_mode(
    sim: SimulatorServer, redis_url: str, redis_client: redis.Redis, mode, status, words
) -> None:
    sim.state.add_meeting(ORGANIZER, "m-sample")
    sim.state.set_registration_api(mode)
    env = command_env(**sim.env(), REDIS_URL=redis_url)
    result = meetreg("doctor", "--sample-meeting", f"{ORGANIZER}:m-sample", env=env)
    line = next(line for line in result.stdout.splitlines() if "registration API" in line)
    assert line.split()[0] == status
    assert words in line
    assert result.returncode == (0 if status == "ok" else 1)
    assert posts(sim) == 0


def test_a_sample_meeting_not_given_as_user_colon_meeting_is_refused_in_one_line(
    sim: SimulatorServer,
) -> None:
    result = meetreg("doctor", "--sample-meeting", "no-colon", env=command_env(**sim.env()))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "meetreg: --sample-meeting 'no-colon': give USER:MEETING (an organizer and a meeting id)"
    ]
