"""deploy/ agrees with the code: no container engine runs here, so the files are read and
every command, port, variable, queue and image name in them is checked against meetreg."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from jobs.cli import cli
from worker import keys
from worker.settings import DEFAULT_METRICS_PORT, Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SERVE_PORT = 8080
# Read by KEDA's trigger, not by meetreg: the Secret holds them beside meetreg's settings.
KEDA_ONLY = {"REDIS_ADDRESS", "REDIS_PASSWORD"}


def settings_names() -> set[str]:
    return {str(field.validation_alias) for field in Settings.model_fields.values()}


def manifests() -> dict[str, dict[str, Any]]:
    """Every Kubernetes object in deploy/kubernetes, by `kind/name`."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def containers() -> list[dict[str, Any]]:
    return [
        container
        for doc in manifests().values()
        if doc["kind"] == "Deployment"
        for container in doc["spec"]["template"]["spec"]["containers"]
    ]


def systemd_commands() -> list[list[str]]:
    commands = []
    for path in sorted((DEPLOY / "systemd").glob("*.service")):
        unit = configparser.ConfigParser(interpolation=None, strict=False)
        unit.read_string(path.read_text())
        assert unit["Service"]["User"] not in ("", "root"), path.name
        argv = shlex.split(unit["Service"]["ExecStart"].replace("%%", "%"))
        commands.append([Path(argv[0]).name, *argv[1:]])
    return commands


def every_command() -> list[list[str]]:
    from_compose = [
        service["command"]
        for service in compose()["services"].values()
        if service.get("image", "").startswith("meetreg")
    ]
    from_k8s = [container["command"] for container in containers()]
    dockerfile = re.search(r"^CMD (\[.*\])$", (DEPLOY / "Dockerfile").read_text(), re.M)
    assert dockerfile is not None
    return [*from_compose, *from_k8s, *systemd_commands(), yaml.safe_load(dockerfile.group(1))]


def check_command(argv: list[str]) -> None:
    """The command is one of meetreg's roles and its arguments parse."""
    if argv[0] == "celery":
        assert argv[1:3] == ["-A", "worker.app"], argv
        assert argv[3] in ("worker", "beat", "flower"), argv
        from worker.app import app

        assert app.main == "meetreg"
        return
    assert argv[0] == "meetreg", argv
    group: Any = typer.main.get_command(cli)
    with group.make_context("meetreg", list(argv[1:])) as ctx:
        sub = group.get_command(ctx, argv[1])
        assert sub is not None, argv
        sub.make_context(argv[1], list(argv[2:]))  # raises on an option it does not take


@pytest.mark.parametrize("argv", every_command(), ids=lambda argv: " ".join(argv[:4]))
def test_every_command_in_deploy_is_a_meetreg_role_that_parses(argv: list[str]) -> None:
    check_command(argv)


def test_the_image_is_slim_and_runs_as_a_user_not_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    final_stage = text.split("\nFROM ")[-1]
    assert final_stage.startswith("python:3.12-slim")
    user = re.search(r"^USER (\S+)$", final_stage, re.M)
    assert user is not None and user.group(1) not in ("0", "root")
    assert f"EXPOSE {SERVE_PORT}" in final_stage
    for package in ("worker", "jobs"):  # what pyproject packages
        assert f"COPY {package} ./{package}" in text


def test_every_variable_given_to_meetreg_is_one_it_reads() -> None:
    names = settings_names()
    secret = manifests()["Secret/meetreg"]["stringData"]
    example = [
        line.split("=", 1)[0]
        for line in (DEPLOY / "meetreg.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    environment = [
        name
        for service in compose()["services"].values()
        for name in service.get("environment", {})
    ]
    for name in [*secret, *example, *environment]:
        assert name in names | KEDA_ONLY, name


def test_one_image_name_everywhere() -> None:
    images = {container["image"] for container in containers()}
    images |= {
        s["image"] for s in compose()["services"].values() if s["image"].startswith("meetreg")
    }
    assert images == {"meetreg:latest"}


def test_serve_listens_where_its_probes_service_and_ports_look() -> None:
    serve = manifests()["Deployment/meetreg-serve"]["spec"]["template"]["spec"]["containers"][0]
    command = serve["command"]
    assert command[command.index("--port") + 1] == str(SERVE_PORT)
    (port,) = serve["ports"]
    assert port["containerPort"] == SERVE_PORT
    assert serve["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    service = manifests()["Service/meetreg-serve"]
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert (
        service["spec"]["selector"]
        == manifests()["Deployment/meetreg-serve"]["spec"]["selector"]["matchLabels"]
    )

    assert "/healthz" in _route_paths()
    served = compose()["services"]["serve"]
    assert served["ports"] == [f"{SERVE_PORT}:{SERVE_PORT}"]
    assert f"127.0.0.1:{SERVE_PORT}/healthz" in " ".join(served["healthcheck"]["test"])


def _route_paths() -> set[str]:
    from jobs.serve import build_app

    app = build_app(None)  # type: ignore[arg-type]  # routes only; no request is made
    return {route.path for route in app.routes}  # type: ignore[attr-defined]


def test_workers_scale_on_the_queue_meetreg_publishes_to() -> None:
    scaled = manifests()["ScaledObject/meetreg-worker"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == keys.QUEUE
    assert f"Deployment/{scaled['spec']['scaleTargetRef']['name']}" in manifests()
    auth = manifests()[f"TriggerAuthentication/{trigger['authenticationRef']['name']}"]
    secret = manifests()["Secret/meetreg"]["stringData"]
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["key"] in secret


def test_beat_runs_once_and_redis_keeps_what_it_is_given() -> None:
    assert manifests()["Deployment/meetreg-beat"]["spec"]["replicas"] == 1
    redis_command = " ".join(compose()["services"]["redis"]["command"])
    assert "--appendonly yes" in redis_command
    assert "--maxmemory-policy noeviction" in redis_command


def test_worker_metrics_are_exposed_where_prometheus_is_told_to_look() -> None:
    port = DEFAULT_METRICS_PORT
    worker = manifests()["Deployment/meetreg-worker"]["spec"]["template"]
    (container,) = worker["spec"]["containers"]
    assert {"name": "metrics", "containerPort": port} in container["ports"]
    assert worker["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }
    serve = manifests()["Deployment/meetreg-serve"]["spec"]["template"]
    annotations = serve["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(SERVE_PORT)
    assert annotations["prometheus.io/path"] in _route_paths()
    assert str(port) in compose()["services"]["worker"]["expose"]
    assert re.search(rf"^EXPOSE {SERVE_PORT} {port}$", (DEPLOY / "Dockerfile").read_text(), re.M)
    unit = (DEPLOY / "systemd" / "meetreg-worker@.service").read_text()
    # Several instances on one host: each its own port, derived from the instance name.
    assert re.search(r"^Environment=MEETREG_METRICS_PORT=\d+%i$", unit, re.M)


def test_task_events_are_on_so_flower_sees_the_workers() -> None:
    from worker.app import celery_config
    from worker.settings import load_settings

    config = celery_config(load_settings(redis_url="redis://localhost:6379/0"))
    assert config["worker_send_task_events"] is True
    assert config["task_send_sent_event"] is False  # the producer stays fast (worker.app)
    assert compose()["services"]["flower"]["command"][3] == "flower"
