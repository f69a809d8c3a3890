"""The locks fix what we test: every dependency pyproject.toml asks for is pinned there, at a
version its range admits, with hashes; and every install path reads them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)", re.M)


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / lock).read_text()
    return {canonicalize_name(name): version for name, version in PIN.findall(text)}


def asked(*extras: str) -> list[Requirement]:
    names = [*PROJECT["dependencies"]]
    for extra in extras:
        names += PROJECT["optional-dependencies"][extra]
    return [Requirement(name) for name in names]


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("requirements.lock", ("flower",)), ("requirements-dev.lock", ("flower", "dev"))],
)
def test_every_dependency_is_pinned_in_its_lock_within_its_range(
    lock: str, extras: tuple[str, ...]
) -> None:
    pinned = pins(lock)
    for requirement in asked(*extras):
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{lock} lacks {name}: run ./dev upgrade"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{lock} pins {name}=={pinned[name]}, outside {requirement.specifier}"
        )


def test_the_dev_lock_runs_what_production_runs() -> None:
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime


def test_every_pin_carries_a_hash() -> None:
    for lock in ("requirements.lock", "requirements-dev.lock"):
        for stanza in re.split(r"\n(?=\S)", (ROOT / lock).read_text()):
            if PIN.match(stanza):
                assert "--hash=sha256:" in stanza, f"{lock}: no hash for {stanza.split()[0]}"


def test_kombus_redis_transport_comes_with_what_it_imports() -> None:
    # kombu's Redis transport imports `packaging`, which only the `redis` extra brings.
    assert "packaging" in pins("requirements.lock")


@pytest.mark.parametrize("path", ["dev", "deploy/Dockerfile"])
def test_installs_take_the_lock_with_hashes_checked(path: str) -> None:
    text = (ROOT / path).read_text()
    assert "--require-hashes" in text
    assert re.search(r"--no-deps -r \S*requirements(-dev)?\.lock", text)
