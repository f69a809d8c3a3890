"""Reading REDIS_URL: what each form means, and one line naming the problem for a bad one
(never the URL: it may hold a password)."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.app import broker_config, redbeat_connection
from worker.errors import ConfigError
from worker.redis.target import parse_redis_url
from worker.settings import load_settings

SECRET = "pw-7f3a9c"


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("a CA")  # only its presence is checked when the URL is read
    return path


def test_a_plain_url_is_used_as_it_is() -> None:
    target = parse_redis_url(f"redis://meetreg:{SECRET}@cache.example:6380/2")
    assert target.url == f"redis://meetreg:{SECRET}@cache.example:6380/2"
    assert target.tls is None and not target.is_sentinel
    assert target.where == "cache.example:6380"


def test_rediss_verifies_the_certificate_unless_told_not_to(ca_file: Path) -> None:
    verified = parse_redis_url(f"rediss://:{SECRET}@cache.example/0?ssl_ca_certs={ca_file}")
    assert verified.tls == {"ssl_cert_reqs": "required", "ssl_ca_certs": str(ca_file)}
    assert verified.url == f"rediss://:{SECRET}@cache.example/0"  # TLS options moved out
    assert verified.where == "cache.example:6379"
    bare = parse_redis_url("rediss://cache.example/0")
    assert bare.tls == {"ssl_cert_reqs": "required"}  # SSL_CERT_FILE or the system's CAs
    opted_out = parse_redis_url("rediss://cache.example/0?ssl_cert_reqs=none")
    assert opted_out.tls == {"ssl_cert_reqs": "none"}


def test_celery_and_beat_get_the_same_tls_options(ca_file: Path) -> None:
    """kombu would otherwise connect to a bare rediss:// without verifying anything."""
    target = parse_redis_url(f"rediss://cache.example/0?ssl_ca_certs={ca_file}")
    assert broker_config(target)["broker_use_ssl"] == target.tls
    assert redbeat_connection(target)["redbeat_redis_use_ssl"] == target.tls


def test_a_sentinel_list_names_every_sentinel_and_the_master() -> None:
    target = parse_redis_url(
        f"sentinel://meetreg:{SECRET}@s1.example:26380/3;sentinel://s2.example",
        sentinel_master="prod",
    )
    assert target.sentinels == (("s1.example", 26380), ("s2.example", 26379))
    assert (target.master_name, target.username, target.password, target.db) == (
        "prod",
        "meetreg",
        SECRET,
        3,
    )
    # kombu would default a port it is not given to 6379: every port is spelled out.
    assert target.url == (
        f"sentinel://meetreg:{SECRET}@s1.example:26380/3;sentinel://s2.example:26379/3"
    )
    assert broker_config(target)["broker_transport_options"]["master_name"] == "prod"
    beat = redbeat_connection(target)["redbeat_redis_options"]
    assert (beat["service_name"], beat["sentinels"]) == ("prod", list(target.sentinels))
    assert SECRET not in repr(target) and SECRET not in target.where


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REDIS_URL": "http://cache.example"}, "REDIS_URL: must start with redis://"),
        ({"REDIS_URL": "rediss://h/0?ssl_cert_reqs=maybe"}, "REDIS_URL: ssl_cert_reqs must be"),
        (
            {"REDIS_URL": "rediss://h/0?ssl_ca_certs=/nowhere/ca.pem"},
            "REDIS_URL: ssl_ca_certs names no readable file",
        ),
        (
            {"REDIS_URL": f"sentinel://:{SECRET}@s1:26379"},
            "REDIS_URL: sentinel:// needs MEETREG_REDIS_SENTINEL_MASTER",
        ),
        (
            {"REDIS_URL": "sentinel://s1:26379;redis://s2", "MEETREG_REDIS_SENTINEL_MASTER": "m"},
            "REDIS_URL: a Sentinel list is sentinel://host:port;",
        ),
        (
            {"REDIS_URL": "sentinel://s1:x", "MEETREG_REDIS_SENTINEL_MASTER": "m"},
            "REDIS_URL: a Sentinel's port",
        ),
    ],
)
def test_a_bad_redis_url_is_one_line_naming_the_problem(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value) and SECRET not in str(refused.value)
