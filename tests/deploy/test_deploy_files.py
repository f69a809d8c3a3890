"""deploy/ agrees with the code: no container engine runs here, so the files are read and
every command, port, variable, queue and image name in them is checked against meetreg."""

from __future__ import annotations

import configparser
import fnmatch
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from deploy_helpers import DEPLOY, ROOT, healthcheck

from jobs.cli.main import cli
from worker import keys
from worker.settings import DEFAULT_INTAKE_MAX_BYTES, DEFAULT_METRICS_PORT, Settings

SERVE_PORT = 8080
# The image's tag everywhere: meetreg's version, never a tag that moves.
IMAGE = "meetreg:" + tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
# Read by KEDA's trigger, not by meetreg: the Secret holds them beside meetreg's settings.
KEDA_ONLY = {"REDIS_ADDRESS", "REDIS_PASSWORD"}
# `meetreg serve`'s readiness: Redis answers, whether or not a worker runs (/healthz fails
# while none does, and a worker outage must not take the webhook out of the Service).
READINESS_PATH = "/readyz"
# What deploy/ already names and a change on its way to meetreg adds: serve's readiness
# path and the viewer's key. Each test below fails once meetreg has it: then empty these.
NOT_YET_SERVED: set[str] = set()
NOT_YET_IN_SETTINGS: set[str] = set()


def settings_names() -> set[str]:
    return {str(field.validation_alias) for field in Settings.model_fields.values()}


def env_example() -> dict[str, tuple[str, bool]]:
    """deploy/meetreg.env.example: each name, its value, and whether the line sets it
    (`NAME=value`) or only shows the default (`#NAME=value`)."""
    found: dict[str, tuple[str, bool]] = {}
    for line in (DEPLOY / "meetreg.env.example").read_text().splitlines():
        match = re.fullmatch(r"(#?)([A-Z][A-Z0-9_]*)=(.*)", line)
        if match:
            commented, name, value = match.groups()
            found[name] = (value.strip('"'), not commented)
    return found


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


@pytest.mark.parametrize("argv", every_command(), ids=lambda argv: " ".join(argv[:4]))
def test_the_images_health_check_knows_the_role_of_every_command(argv: list[str]) -> None:
    # With no argument (the image's HEALTHCHECK), it reads the role from the command.
    role = "serve" if argv[:2] == ["meetreg", "serve"] else argv[3]
    assert healthcheck().role_of(argv) == role
    if role in ("serve", "flower"):  # it asks where the command listens
        listens = re.search(r"--port[= ](\d+)", " ".join(argv))
        assert listens is not None
        assert healthcheck().option(argv, "--port", 0) == int(listens.group(1))


def test_the_image_is_slim_and_runs_as_a_user_not_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    final_stage = text.split("\nFROM ")[-1]
    assert re.match(r"python:3\.\d+\.\d+-slim", final_stage)
    user = re.search(r"^USER (\S+)$", final_stage, re.M)
    assert user is not None and user.group(1) not in ("0", "root")
    assert f"EXPOSE {SERVE_PORT}" in final_stage
    for package in ("worker", "jobs"):  # what pyproject packages
        assert f"COPY {package} ./{package}" in text


def test_every_variable_given_to_meetreg_is_one_it_reads() -> None:
    names = settings_names() | NOT_YET_IN_SETTINGS
    secret = manifests()["Secret/meetreg"]["stringData"]
    environment = [
        name
        for service in compose()["services"].values()
        for name in service.get("environment", {})
    ]
    for name in [*secret, *env_example(), *environment]:
        assert name in names | KEDA_ONLY, name


def test_the_env_example_lists_every_setting_and_shows_its_default() -> None:
    example = env_example()
    assert set(example) == settings_names() | NOT_YET_IN_SETTINGS
    for attribute, field in Settings.model_fields.items():
        name = str(field.validation_alias)
        value, sets_it = example[name]
        if sets_it:
            continue
        # A line that only shows the default shows the one meetreg has.
        shown = getattr(Settings(**{name: value}), attribute) if value else None
        assert shown == field.default, f"{name}: the example shows {value!r}"


def test_what_deploy_names_ahead_of_meetreg_is_still_ahead() -> None:
    # Once meetreg serves the path or reads the setting, empty NOT_YET_SERVED or
    # NOT_YET_IN_SETTINGS above: the checks they relax then hold in full.
    assert not NOT_YET_SERVED & _route_paths(), "meetreg serves it now: empty NOT_YET_SERVED"
    assert not NOT_YET_IN_SETTINGS & settings_names(), "empty NOT_YET_IN_SETTINGS"


def test_one_pinned_image_name_everywhere() -> None:
    images = {container["image"] for container in containers()}
    images |= {
        s["image"] for s in compose()["services"].values() if s["image"].startswith("meetreg")
    }
    assert images == {IMAGE}
    assert f"-t {IMAGE} ." in (DEPLOY / "Dockerfile").read_text()  # how to build it


def test_serve_listens_where_its_probes_service_and_ports_look() -> None:
    serve = manifests()["Deployment/meetreg-serve"]["spec"]["template"]["spec"]["containers"][0]
    command = serve["command"]
    assert command[command.index("--port") + 1] == str(SERVE_PORT)
    (port,) = serve["ports"]
    assert port["containerPort"] == SERVE_PORT
    assert serve["readinessProbe"]["httpGet"] == {"path": READINESS_PATH, "port": port["name"]}
    assert serve["livenessProbe"]["tcpSocket"] == {"port": port["name"]}
    service = manifests()["Service/meetreg-serve"]
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert (
        service["spec"]["selector"]
        == manifests()["Deployment/meetreg-serve"]["spec"]["selector"]["matchLabels"]
    )

    assert READINESS_PATH in _route_paths() | NOT_YET_SERVED
    # The image's health check asks serve the same question (compose sets none of its own).
    assert healthcheck().READY_PATH == READINESS_PATH
    assert healthcheck().DEFAULT_SERVE_PORT == SERVE_PORT
    served = compose()["services"]["serve"]
    assert served["ports"] == [f"127.0.0.1:{SERVE_PORT}:{SERVE_PORT}"]
    assert "healthcheck" not in served


def _route_paths() -> set[str]:
    from jobs.http.app import build_app

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
    # Several instances on one host: each its own port, from the instance name.
    assert re.search(r"^Environment=MEETREG_METRICS_PORT=\S*%i$", unit, re.M)


def test_task_events_are_on_so_flower_sees_the_workers() -> None:
    from worker.app import celery_config
    from worker.settings import load_settings

    config = celery_config(load_settings(redis_url="redis://localhost:6379/0"))
    assert config["worker_send_task_events"] is True
    assert config["task_send_sent_event"] is False  # the producer stays fast (worker.app)
    assert compose()["services"]["flower"]["command"][3] == "flower"


# Kubernetes: what a cluster enforcing the "restricted" Pod Security profile admits, and
# what keeps a pod up ----------------------------------------------------------------------


def pod_templates() -> dict[str, dict[str, Any]]:
    return {
        name: doc["spec"]["template"]
        for name, doc in manifests().items()
        if doc["kind"] == "Deployment"
    }


@pytest.mark.parametrize("name", sorted(pod_templates()))
def test_every_pod_meets_the_restricted_pod_security_profile(name: str) -> None:
    pod = pod_templates()[name]["spec"]
    context = pod.get("securityContext", {})
    assert context.get("runAsNonRoot") is True and context.get("runAsUser", 0) != 0
    assert context.get("seccompProfile") == {"type": "RuntimeDefault"}
    assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod)
    assert pod.get("automountServiceAccountToken") is False  # meetreg never calls the API
    for volume in pod.get("volumes", []):
        assert set(volume) - {"name"} <= {"emptyDir", "secret", "configMap", "projected"}
    for container in pod["containers"]:
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security.get("privileged") is not True
        assert all("hostPort" not in port for port in container.get("ports", []))


@pytest.mark.parametrize("name", sorted(pod_templates()))
def test_every_pod_has_probes_memory_limits_and_a_writable_tmp(name: str) -> None:
    pod = pod_templates()[name]["spec"]
    for container in pod["containers"]:
        assert not container["image"].endswith(":latest") and ":" in container["image"]
        assert "livenessProbe" in container
        assert container["resources"]["limits"]["memory"]
        # The root is read-only; Python's temporary files (a report over 4 MiB is spooled
        # to one) go to /tmp, which must then be a volume of its own.
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        (tmp,) = [mount for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == tmp["name"]]
        assert "emptyDir" in volume
        assert "TMPDIR" not in {env["name"] for env in container.get("env", [])}


def test_beats_probe_is_the_images_health_check_for_beat() -> None:
    (beat,) = pod_templates()["Deployment/meetreg-beat"]["spec"]["containers"]
    command = beat["livenessProbe"]["exec"]["command"]
    assert command == ["python", "/opt/meetreg/healthcheck.py", "beat"]
    assert "COPY deploy/healthcheck.py /opt/meetreg/healthcheck.py" in dockerfile()


def test_disruption_budgets_keep_serve_up_and_let_nodes_drain() -> None:
    budgets = {
        doc["spec"]["selector"]["matchLabels"]["role"]: doc["spec"]
        for doc in manifests().values()
        if doc["kind"] == "PodDisruptionBudget"
    }
    serve = manifests()["Deployment/meetreg-serve"]["spec"]
    assert 1 <= budgets["serve"]["minAvailable"] < serve["replicas"]
    assert budgets["worker"]["maxUnavailable"] >= 1  # a single worker pod must not block


def test_network_policies_let_in_only_serve_and_scrapes_and_out_only_what_meetreg_needs() -> None:
    policies = [doc["spec"] for doc in manifests().values() if doc["kind"] == "NetworkPolicy"]
    everything = [p for p in policies if p["podSelector"]["matchLabels"] == {"app": "meetreg"}]
    (default,) = everything
    assert set(default["policyTypes"]) == {"Ingress", "Egress"}
    assert default["ingress"] == []
    open_ports = {
        (policy["podSelector"]["matchLabels"].get("role"), port["port"])
        for policy in policies
        for rule in policy.get("ingress", [])
        for port in rule["ports"]
    }
    assert open_ports == {("serve", SERVE_PORT), ("worker", DEFAULT_METRICS_PORT)}
    out = {port["port"] for rule in default["egress"] for port in rule["ports"]}
    secret = manifests()["Secret/meetreg"]["stringData"]
    redis_port = int(secret["REDIS_ADDRESS"].rsplit(":", 1)[1])
    assert {53, 443, redis_port, 6379} <= out


# compose: the nightly path, and what it publishes ---------------------------------------


def dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text()


def runs(service: dict[str, Any], role: str) -> bool:
    command = service.get("command", [])
    return command[:2] == ["celery", "-A"] and command[3] == role


def test_compose_runs_the_nightly_job_where_the_drop_folder_is_and_writable() -> None:
    from worker.app import celery_config
    from worker.settings import load_settings

    services = compose()["services"]
    # Beat sends the nightly task to the queue the workers take from: a worker runs it.
    config = celery_config(load_settings(redis_url="redis://redis:6379/0"))
    entry = config["beat_schedule"][keys.BEAT_ENTRY]
    assert entry["task"] == keys.NIGHTLY_TASK
    assert entry["options"]["queue"] == config["task_default_queue"] == keys.QUEUE
    (beat,) = [s for s in services.values() if runs(s, "beat")]
    workers = [s for s in services.values() if runs(s, "worker")]
    assert workers
    user = re.search(r"^USER (\d+)", dockerfile(), re.M)
    assert user is not None
    for worker in workers:
        assert "-Q" not in worker["command"]  # the default queue
        assert worker["environment"]["REDIS_URL"] == beat["environment"]["REDIS_URL"]
        drop_dir = worker["environment"]["MEETREG_DROP_DIR"]
        (mount,) = [v.split(":") for v in worker.get("volumes", []) if v.split(":")[1] == drop_dir]
        source, _, *options = mount
        # A named volume: Docker fills a new one from the image's folder, owner included
        # (a bind mount would keep the host folder's owner), and it is mounted writable.
        assert source in compose()["volumes"]
        assert not {"ro", "nocopy"} & set(options)
        # The image's folder there belongs to the user the image runs as.
        made = rf"^ && install -d -o {user.group(1)} -g \d+ -m 07[0-7]0 {re.escape(drop_dir)}$"
        assert re.search(made, dockerfile(), re.M), f"the image makes no {drop_dir} for its user"


def test_compose_publishes_on_this_host_only() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), name


# The image ------------------------------------------------------------------------------


def test_the_image_installs_the_lock_before_copying_the_source() -> None:
    # A layer is rebuilt when what it copies changes: the dependencies' layer must depend
    # on the lock alone, so editing meetreg's code reuses it.
    lines = dockerfile().splitlines()

    def first(pattern: str) -> int:
        return next(i for i, line in enumerate(lines) if re.search(pattern, line))

    installed = first(r"--require-hashes --no-deps -r requirements\.lock")
    assert first(r"^COPY requirements\.lock ") < installed
    for source in ("pyproject.toml", "worker", "jobs"):
        assert installed < first(rf"^COPY .*\b{re.escape(source)}\b")


def test_every_base_image_is_pinned_to_a_release() -> None:
    bases = re.findall(r"^FROM (\S+)", dockerfile(), re.M)
    assert bases
    for base in bases:
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base


def test_the_image_checks_its_own_health_with_the_script_it_carries() -> None:
    final_stage = dockerfile().split("\nFROM ")[-1]
    check = re.search(r"^HEALTHCHECK .*\n?.*CMD (\[.*\])$", final_stage, re.M)
    assert check is not None
    assert yaml.safe_load(check.group(1)) == ["python", "/opt/meetreg/healthcheck.py"]
    assert "COPY deploy/healthcheck.py /opt/meetreg/healthcheck.py" in final_stage


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps `path` out of the build context: its last matching
    line decides, a line matching a folder matches what is in it (Docker's rules)."""
    ignored = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if pattern.startswith("**/"):
            hit = any(fnmatch.fnmatchcase(part, pattern[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes)
        if hit:
            ignored = not keep
    return ignored


def test_the_build_context_holds_what_the_image_copies_and_no_secret() -> None:
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile(), re.M)
    for sources in copied:
        for source in sources.split():
            assert not dockerignored(source), source
    assert not dockerignored("worker/settings.py")
    assert not dockerignored("jobs/cli/main.py")
    for kept_out in (
        "deploy/meetreg.env",
        ".env",
        ".git/config",
        ".venv/bin/python",
        "tests/conftest.py",
        "worker/__pycache__/settings.cpython-312.pyc",
    ):
        assert dockerignored(kept_out), kept_out


# systemd --------------------------------------------------------------------------------


def units() -> dict[str, configparser.ConfigParser]:
    found = {}
    for path in sorted((DEPLOY / "systemd").glob("*.service")):
        unit = configparser.ConfigParser(interpolation=None, strict=False)
        unit.optionxform = str  # type: ignore[assignment,method-assign]
        unit.read_string(path.read_text())
        found[path.name] = unit
    return found


@pytest.mark.parametrize("name", sorted(units()))
def test_every_unit_owns_its_folder_and_gives_up_on_a_refused_configuration(name: str) -> None:
    service = units()[name]["Service"]
    # systemd makes /var/lib/meetreg for the user (ProtectSystem=strict leaves it writable).
    assert service["StateDirectory"] == "meetreg"
    assert service["WorkingDirectory"] == "/var/lib/meetreg"
    # meetreg exits 2 when it refuses its configuration: no restart loop on that.
    assert "2" in service["RestartPreventExitStatus"].split()
    assert service["Restart"] == "on-failure"


def worker_unit(instance: str) -> dict[str, str]:
    """meetreg-worker@INSTANCE's environment and node name, as systemd expands them."""
    text = (DEPLOY / "systemd" / "meetreg-worker@.service").read_text()
    text = text.replace("%i", instance).replace("%%", "%")
    environment = dict(
        line.removeprefix("Environment=").split("=", 1)
        for line in text.splitlines()
        if line.startswith("Environment=")
    )
    node = re.search(r" -n (\S+)", text)
    assert node is not None
    return {**environment, "node": node.group(1)}


def test_any_number_of_workers_on_a_host_each_get_their_own_metrics_port() -> None:
    unit = (DEPLOY / "systemd" / "meetreg-worker@.service").read_text()
    operations = (ROOT / "docs" / "operations.md").read_text()
    enables = re.findall(r"systemctl enable .*", unit + operations)
    documented = re.findall(r"meetreg-worker@(\w+)", "\n".join(enables))
    assert documented
    # Twenty workers named the way the unit and docs/operations.md show.
    first = int(documented[0])
    instances = [str(first + n) for n in range(20)] + documented
    ports = {}
    for instance in instances:
        port = int(worker_unit(instance)["MEETREG_METRICS_PORT"])
        assert 1024 <= port <= 65535, f"meetreg-worker@{instance}: port {port}"
        ports[instance] = port
    assert len(set(ports.values())) == len(set(instances))
    assert len({worker_unit(i)["node"] for i in instances}) == len(set(instances))


# The reverse proxy ----------------------------------------------------------------------


def nginx_directives() -> dict[str, str]:
    text = (DEPLOY / "nginx" / "meetreg.conf").read_text()
    return dict(re.findall(r"^\s*(\w+)\s+([^;{\n]+);", text, re.M))


def test_the_proxy_reads_requests_with_deadlines_and_meetregs_size_limit() -> None:
    directives = nginx_directives()
    for deadline in ("client_header_timeout", "client_body_timeout"):
        seconds = re.fullmatch(r"(\d+)s", directives[deadline])
        assert seconds is not None and int(seconds.group(1)) <= 30, deadline
    size = re.fullmatch(r"(\d+)m", directives["client_max_body_size"])
    assert size is not None and int(size.group(1)) * 1024 * 1024 == DEFAULT_INTAKE_MAX_BYTES
    assert directives["proxy_request_buffering"] == "on"
    # Where systemd's serve and compose's published port listen.
    assert directives["proxy_pass"] == f"http://127.0.0.1:{SERVE_PORT}"
    serve_unit = units()["meetreg-serve.service"]["Service"]["ExecStart"]
    assert f"--host 127.0.0.1 --port {SERVE_PORT}" in serve_unit
