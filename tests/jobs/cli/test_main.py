"""The `meetreg` entry point: every command registered, in the order --help lists them, and
a bad setting left for the command that reads it to refuse, in one line."""

from __future__ import annotations

import re

from cli_helpers import command_env, meetreg

COMMANDS_IN_HELP_ORDER = [
    *("enqueue", "run", "status", "report", "retry", "resume", "disable", "cancel"),
    *("serve", "subscribe", "subscriptions"),
    *("login", "doctor", "nightly"),
    "demo",
    "webinars",  # a group: Typer lists groups after the commands
]


def test_help_lists_batches_then_serving_signing_in_the_nightly_job_the_demo_and_webinars() -> None:
    shown = meetreg("--help", env=command_env())
    assert shown.returncode == 0, shown.stderr
    listed = re.findall(r"^│ ([a-z]+) {2,}", shown.stdout, flags=re.MULTILINE)
    assert listed == COMMANDS_IN_HELP_ORDER


def test_a_bad_setting_does_not_stop_the_program_only_the_command_that_needs_it() -> None:
    env = command_env(MEETREG_CONCURRENCY="many")
    version = meetreg("--version", env=env)
    assert version.returncode == 0, version.stderr
    refused = meetreg("status", "some-batch", env=env)
    assert refused.returncode != 0
    assert "MEETREG_CONCURRENCY" in refused.stderr
    assert "Traceback" not in refused.stderr
