"""The commands about signing in: `meetreg login` and `meetreg doctor`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from jobs.cli.app import EXIT_OK, EXIT_ROWS_FAILED, cli, err, out, print_json, refusals
from worker.errors import ConfigError, GraphError
from worker.settings import AuthMode, load_settings


@cli.command()
@refusals
def login(
    show_status: Annotated[
        bool, typer.Option("--status", help="Show who is signed in, without signing in.")
    ] = False,
) -> None:
    """Sign in as the organizer, once, for MEETREG_AUTH=delegated (the device-code flow):
    open the URL shown, enter the code; the tokens are kept in MEETREG_TOKEN_CACHE (0600)."""
    from worker.graph.delegated import DelegatedTokenSource

    settings = load_settings()
    if settings.auth_mode not in (AuthMode.DELEGATED, None):
        raise ConfigError(
            f"MEETREG_AUTH is {settings.auth_mode}: `meetreg login` is for MEETREG_AUTH=delegated"
        )
    settings = settings.model_copy(update={"auth": AuthMode.DELEGATED})
    source = DelegatedTokenSource(settings)
    try:
        if show_status:
            user = source.signed_in_user()
        else:
            user = source.login(lambda text: err.print(text, markup=False))
    except GraphError as exc:
        raise ConfigError(exc.message) from None
    finally:
        source.close()
    out.print(f"signed in as {user}; token cache {source.file.path}", markup=False)


@cli.command()
@refusals
def doctor(
    user: Annotated[
        str | None, typer.Option("--user", help="Also probe Graph's reads for this organizer.")
    ] = None,
    sample_meeting: Annotated[
        str | None,
        typer.Option(
            "--sample-meeting",
            metavar="USER:MEETING",
            help="Also tell whether Graph still serves the meeting registration API (retired "
            "2024-12-12), with one GET of this meeting's registration.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help='One JSON object: {"ok": ..., "checks": [...]}.')
    ] = False,
) -> None:
    """Check the configuration, Redis, sign-in and (with --user) Graph; exit 0 when all pass."""
    from jobs.cli.doctor import Status, parse_sample_meeting, run_checks

    sample = parse_sample_meeting(sample_meeting)
    failed = False
    checks = []
    for check in run_checks(load_settings(), user, sample):
        failed |= check.status is Status.FAIL
        if as_json:
            checks.append(asdict(check))
        else:
            out.print(f"{check.status:<7} {check.name:<18} {check.detail}", markup=False)
    if as_json:
        print_json({"ok": not failed, "checks": checks})
    raise typer.Exit(EXIT_ROWS_FAILED if failed else EXIT_OK)
