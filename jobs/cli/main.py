"""The `meetreg` command line (docs/commands.md): the entry point.

Each module under jobs/cli/ registers its commands on one application (jobs.cli.app);
they are imported here in the order `meetreg --help` lists them: batches, serve and
subscriptions, signing in, the nightly job, then the demo; then the `webinars` group (Typer
lists a group of commands after the plain commands).

A command imports what only it needs in its own body: `meetreg enqueue`'s start-up is time
before its batch's first row can go, and the worker's code (the Graph client, MSAL and its
cryptography, Celery's worker) took 0.4 s of its 1 s of imports.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Literal

import typer

from jobs.cli.app import cli, err, out, refusals
from worker.errors import ConfigError
from worker.settings import load_settings
from worker.telemetry.logs import configure_logging

# The command modules register on `cli` as they are imported: this order is --help's.
# isort: off
from jobs.cli import batch_commands
from jobs.cli import serve_commands  # noqa: F401
from jobs.cli import credential_commands  # noqa: F401
from jobs.cli import nightly_commands  # noqa: F401
from jobs.cli import webinar_commands  # noqa: F401

# isort: on

# The simulator's RegistrationApiMode, spelled here: importing it would load the simulator.
GraphMode = Literal["live", "gone", "app-only-refused"]


@cli.command()
@refusals
def demo(
    rows: Annotated[int, typer.Option(help="How many rows in the sample batch.")] = 3000,
    webinars: Annotated[
        bool, typer.Option("--webinars", help="Register people for Teams webinars instead.")
    ] = False,
    graph_mode: Annotated[
        GraphMode,
        typer.Option(
            "--graph-mode",
            help="How the simulated meeting registration API answers: live, gone (retired "
            "2024-12-12) or app-only-refused; the last two show the refusal (exit 2).",
        ),
    ] = "live",
) -> None:
    """Run a sample batch against the built-in Graph simulator, with faults switched on."""

    from jobs.cli.demo import MEETINGS, WEBINARS, run_demo  # the simulator loads only here

    sample = WEBINARS if webinars else MEETINGS
    code = run_demo(
        rows,
        run_batch=batch_commands.run_batch,
        console=err,
        out=out,
        sample=sample,
        graph_mode=graph_mode,
    )
    raise typer.Exit(code)


def main() -> None:
    # A bad setting is left to the command itself to refuse, in one line.
    with contextlib.suppress(ConfigError):
        # Warnings only by default: the progress bar and summary are a command's output.
        configure_logging(load_settings(), default_level="WARNING")
    cli()
