"""The `meetreg` application every command module registers its commands on, and what
they share: the consoles, one-line refusals, exit codes, `--json`, and the outcome store.

Exit codes: 0 done (every row a success), 1 some row `failed` or `invalid`, 2 refused
(a file, a configuration, an unknown batch). A user's mistake is one line on stderr,
never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from worker.errors import ConfigError, MeetregError
from worker.redis.connection import describe_failure
from worker.settings import Settings, load_settings, use_settings
from worker.store.outcome_store import OutcomeStore, open_store

EXIT_OK, EXIT_ROWS_FAILED, EXIT_REFUSED = 0, 1, 2

P = ParamSpec("P")
T = TypeVar("T")

cli = typer.Typer(
    name="meetreg",
    help="Turn on external registration for Microsoft Teams meetings in bulk.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _show_version(wanted: bool) -> None:
    if wanted:
        try:
            shown = installed_version("meetreg")
        except PackageNotFoundError:  # a source tree that was never installed
            shown = "unknown"
        out.print(f"meetreg {shown}", markup=False)
        raise typer.Exit(EXIT_OK)


@cli.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Turn on external registration for Microsoft Teams meetings in bulk."""


def print_json(document: object) -> None:
    """A command's `--json` answer: one JSON document on stdout, nothing else there."""
    out.print(json.dumps(document), markup=False)


def refusals(fn: Callable[P, T]) -> Callable[P, T]:
    """Turn meetreg's own errors into one line on stderr and exit 2."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except MeetregError as exc:
            err.print(f"meetreg: {exc}", markup=False)
            raise typer.Exit(EXIT_REFUSED) from None

    return wrapper


def reachable_store(settings: Settings) -> OutcomeStore:
    """The outcome store these settings name, checked reachable. The settings become this
    process's, so the Celery app publishes to the same Redis and the worker uses them."""
    use_settings(settings)
    store = open_store(settings)
    try:
        store.redis.ping()
    except Exception as exc:  # redis-py's errors; the URL may hold a password: not shown
        raise ConfigError(describe_failure(settings.require_redis(), exc)) from None
    return store


def settings_and_store() -> tuple[Settings, OutcomeStore]:
    """The settings of a command that works on the outcome store, and the store, reachable.
    Raises ConfigError (no REDIS_URL, a bad setting, Redis unreachable)."""
    settings = load_settings()
    settings.require_redis()
    return settings, reachable_store(settings)


JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]
