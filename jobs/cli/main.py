"""The `meetreg` command line (README, Commands).

Exit codes: 0 done (every row a success), 1 some row `failed` or `invalid`, 2 refused
(a file, a configuration, an unknown batch). A user's mistake is one line on stderr,
never a traceback.

A command imports what only it needs in its own body: `meetreg enqueue`'s start-up is time
before its batch's first row can go, and the worker's code (the Graph client, MSAL and its
cryptography, Celery's worker) took 0.4 s of its 1 s of imports.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import datetime
from functools import wraps
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar
from urllib.parse import urlsplit

import typer
from rich.console import Console

from jobs.cli.progress import (
    STALL_ADVICE,
    BatchProgress,
    counts_text,
    stall_text,
    summary_table,
    working_text,
)
from jobs.enqueue import Enqueued, enqueue_file, requeue_failed, resume_batch
from jobs.report import check_format, write_report
from jobs.sources.csv_file import read_rows
from jobs.sources.drop_folder import check_folder
from worker.errors import ConfigError, GraphAuthError, GraphError, InputError, MeetregError
from worker.models import RowState
from worker.publish import publish_chunks
from worker.redis.connection import describe_failure
from worker.redis.embedded import EmbeddedRedis
from worker.schedule import next_run
from worker.settings import AuthMode, Settings, load_settings, use_settings
from worker.store.outcomes import BatchStatus, OutcomeStore
from worker.store.outcomes import open_store as open_runtime_store
from worker.telemetry.logs import configure_logging
from worker.validation import AllowedRegistrant

if TYPE_CHECKING:
    from worker.graph.calendar import CalendarApi

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


def exit_code(status: BatchStatus) -> int:
    bad = status.counts[RowState.FAILED] + status.counts.get(RowState.INVALID, 0)
    return EXIT_ROWS_FAILED if bad or not status.finished else EXIT_OK


def paused_text(status: BatchStatus) -> str:
    if status.cancelled:
        return f"{status.batch_id} was cancelled"
    return (
        f"{status.batch_id} is PAUSED: {status.paused}\n"
        f"  fix the cause, then `meetreg resume {status.batch_id}`; "
        f"or `meetreg cancel {status.batch_id}` to end it"
    )


def open_store(settings: Settings) -> OutcomeStore:
    """The outcome store these settings name, checked reachable. The settings become this
    process's, so the Celery app publishes to the same Redis and the worker uses them."""
    use_settings(settings)
    client, store = open_runtime_store(settings)
    try:
        client.ping()
    except Exception as exc:  # redis-py's errors; the URL may hold a password: not shown
        raise ConfigError(describe_failure(settings.require_redis(), exc)) from None
    return store


def settings_and_store() -> tuple[Settings, OutcomeStore]:
    """The settings of a command that works on the outcome store, and the store, reachable.
    Raises ConfigError (no REDIS_URL, a bad setting, Redis unreachable)."""
    settings = load_settings()
    settings.require_redis()
    return settings, open_store(settings)


def _enqueue_file(
    settings: Settings,
    store: OutcomeStore,
    file: Path,
    batch_id: str | None,
    allowed_registrant: AllowedRegistrant | None,
) -> Enqueued:
    return enqueue_file(
        file,
        store=store,
        publish=publish_chunks,
        batch_id=batch_id,
        allowed_registrant=allowed_registrant,
        chunk_size=settings.chunk_size,
    )


FileArg = Annotated[Path, typer.Argument(help="CSV file of meetings (README, CSV format).")]
BatchIdOpt = Annotated[
    str | None, typer.Option("--batch-id", help="Your id for the batch; made up if absent.")
]
DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Read each row's meeting from Graph and print what would happen; send no POST.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]
RegistrantOpt = Annotated[
    AllowedRegistrant | None,
    typer.Option("--allowed-registrant", help="For rows that do not say; default everyone."),
]


@cli.command()
@refusals
def enqueue(
    file: FileArg,
    batch_id: BatchIdOpt = None,
    allowed_registrant: RegistrantOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Validate FILE, record the batch and enqueue it for the workers; prints the batch id."""
    if dry_run:
        _no_json_for_dry_run(as_json)
        raise typer.Exit(dry_run_file(load_settings(), file, allowed_registrant))
    settings, store = settings_and_store()
    done = _enqueue_file(settings, store, file, batch_id, allowed_registrant)
    status = store.batch_status(done.batch_id)
    if as_json:
        print_json({**asdict(done), "total": status.total, "counts": status.counts})
    else:
        out.print(done.batch_id, markup=False)
    verb = "resumed" if done.resumed else "enqueued"
    err.print(
        f"{verb} {status.total} rows in {done.chunks} chunks ({counts_text(status)})", markup=False
    )


@cli.command()
@refusals
def run(
    file: FileArg,
    batch_id: BatchIdOpt = None,
    allowed_registrant: RegistrantOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Enqueue FILE and process it in this process until every row is final."""
    settings = load_settings()
    if dry_run:
        _no_json_for_dry_run(as_json)
        raise typer.Exit(dry_run_file(settings, file, allowed_registrant))
    settings.require_credentials()
    code = run_batch(settings, file, batch_id, allowed_registrant, as_json=as_json)
    raise typer.Exit(code)


def _no_json_for_dry_run(as_json: bool) -> None:
    if as_json:
        raise InputError("--json does not go with --dry-run: a dry run prints CSV")


def run_batch(
    settings: Settings,
    file: Path,
    batch_id: str | None,
    allowed_registrant: AllowedRegistrant | None,
    *,
    as_json: bool = False,
) -> int:
    """`meetreg run`: with an embedded Redis when REDIS_URL is unset. Returns the exit code."""
    from worker.runtime import runtime
    from worker.telemetry.metrics import SharedGauges, serve_metrics

    # The file first, then the credentials: each refusal before anything is enqueued.
    for _ in read_rows(file, default_registrant=allowed_registrant):
        pass
    with _redis_for(settings) as settings:
        store = open_store(settings)
        # The worker's own clients, built now: one sign-in, refused here if it fails.
        current = runtime(must_sign_in=True)
        if settings.metrics_port is not None:  # a one-shot command opens no port unasked
            shared = SharedGauges(current.store, current.deps.limiter)
            serve_metrics(settings.metrics_port, settings.metrics_host, shared)
        done = _enqueue_file(settings, store, file, batch_id, allowed_registrant)
        err.print(f"batch {done.batch_id}: {done.total} rows", markup=False)
        return work_until_finished(settings, store, done.batch_id, as_json=as_json)


def work_until_finished(
    settings: Settings, store: OutcomeStore, batch_id: str, *, as_json: bool = False
) -> int:
    """Process the batch in this process with a progress bar, until it is finished (or
    paused); print the summary (`as_json`: the batch's status). Returns the exit code."""
    from jobs.cli.local_worker import run_worker_until

    with BatchProgress(store, batch_id, err) as progress:
        if not progress.update():
            run_worker_until(progress.update, concurrency=settings.concurrency)
    status = store.batch_status(batch_id)
    if as_json:
        print_json({**status.to_json_dict(), "elapsed_s": round(progress.elapsed_s, 3)})
    else:
        out.print(summary_table(status, progress.elapsed_s))
    if status.paused and not status.finished:
        err.print(paused_text(status), markup=False)
    if not as_json:
        out.print(f"report: meetreg report {batch_id}", markup=False)
    return exit_code(status)


def dry_run_file(
    settings: Settings, file: Path, allowed_registrant: AllowedRegistrant | None
) -> int:
    """`--dry-run`: every row's forecast as CSV on stdout, the counts on stderr; no POST,
    nothing recorded or enqueued. Exit 0 when no row would fail, 1 otherwise."""
    from jobs.dry_run import Forecast, forecast_rows, write_forecasts
    from worker.runtime import runtime

    settings.require_credentials()
    for _ in read_rows(file, default_registrant=allowed_registrant):
        pass  # a file refused whole is refused before any Graph call
    with _redis_for(settings) as settings:
        open_store(settings)
        current = runtime(must_sign_in=True)
        rows = read_rows(file, default_registrant=allowed_registrant)
        forecasts = forecast_rows(rows, current.deps, threads=settings.concurrency)
        try:
            counts = write_forecasts(forecasts, sys.stdout)
        except GraphAuthError as exc:
            raise ConfigError(exc.describe()) from None
    err.print(
        "dry run, nothing sent: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v),
        markup=False,
    )
    bad = counts[Forecast.WOULD_FAIL] + counts[Forecast.INVALID]
    return EXIT_ROWS_FAILED if bad else EXIT_OK


@contextlib.contextmanager
def _redis_for(settings: Settings) -> Iterator[Settings]:
    if settings.redis_url:
        yield settings
        return
    with EmbeddedRedis() as embedded:
        yield settings.model_copy(update={"redis_url": embedded.url})


@cli.command()
@refusals
def status(
    batch_id: Annotated[str, typer.Argument(help="The batch id enqueue or run printed.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Follow until the batch is finished.")
    ] = False,
) -> None:
    """Show a batch's progress."""
    _, store = settings_and_store()
    current = store.batch_status(batch_id)
    if watch and not current.finished:
        with BatchProgress(store, batch_id, err) as progress:
            while not progress.update():
                time.sleep(1)
        current = store.batch_status(batch_id)
    if as_json:
        out.print(json.dumps(current.to_json_dict()), markup=False)
    else:
        state = "finished" if current.finished else "in progress"
        if current.paused and not current.finished:
            state = "cancelled, ending" if current.cancelled else "PAUSED"
        elif current.stalled:
            state = "STALLED"
        out.print(f"{batch_id}: {current.done}/{current.total} done, {state}", markup=False)
        out.print(f"  {counts_text(current) or 'no rows'}", markup=False)
        if current.paused and not current.finished and not current.cancelled:
            out.print(f"  why: {current.paused}", markup=False)
        if current.stalled:
            out.print(f"  why: {stall_text(current)}", markup=False)
            out.print(f"  {STALL_ADVICE}", markup=False)
        elif current.working:
            out.print(f"  {working_text(current)}", markup=False)
        if current.undoes:
            out.print(f"  undo of {current.undoes}", markup=False)
        if current.undone_by:
            out.print(f"  undone by {current.undone_by}", markup=False)


@cli.command()
@refusals
def report(
    batch_id: Annotated[str, typer.Argument(help="The batch id.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    output: Annotated[Path | None, typer.Option("--output", help="Write here, not stdout.")] = None,
) -> None:
    """One record per input row: its outcome, HTTP status, error and Graph request-id."""
    check_format(fmt)
    _, store = settings_and_store()
    store.batch_status(batch_id)  # an unknown batch is refused before the file is made
    if output is None:
        write_report(store, batch_id, fmt, sys.stdout)
        return
    try:
        with output.open("w", encoding="utf-8", newline="") as handle:
            write_report(store, batch_id, fmt, handle)
    except OSError as exc:
        raise InputError(f"{output}: {exc.strerror or exc}") from None


@cli.command()
@refusals
def retry(
    batch_id: Annotated[str, typer.Argument(help="The batch id.")], as_json: JsonOpt = False
) -> None:
    """Enqueue the batch's `failed` rows again."""
    settings, store = settings_and_store()
    rows = requeue_failed(store, batch_id, publish=publish_chunks, chunk_size=settings.chunk_size)
    if as_json:
        print_json({"batch_id": batch_id, "retried": rows})
    else:
        out.print(f"{batch_id}: {rows} failed rows enqueued again", markup=False)


@cli.command()
@refusals
def resume(
    batch_id: Annotated[str, typer.Argument(help="The paused batch.")], as_json: JsonOpt = False
) -> None:
    """Lift a batch's pause and send its unfinished rows to the workers again."""
    settings, store = settings_and_store()
    sent = resume_batch(store, batch_id, publish=publish_chunks, chunk_size=settings.chunk_size)
    if as_json:
        print_json({"batch_id": batch_id, "resumed": True, "chunks": sent})
    else:
        out.print(f"{batch_id}: resumed, {sent} chunks of unfinished rows enqueued", markup=False)


@cli.command()
@refusals
def disable(
    source: Annotated[
        str, typer.Option("--batch", help="The batch whose registrations to delete.")
    ],
    batch_id: Annotated[
        str | None,
        typer.Option("--batch-id", help="Your id for the undo batch; made up if absent."),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="Process here and wait, as `run` does (default); or leave it to the workers.",
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Undo a batch: delete the registrations it created (never ones it found), as a new
    undo batch; prints its id. Run again, it resumes that undo batch."""
    from jobs.undo import check_source, enqueue_undo
    from worker.runtime import runtime

    settings = load_settings()
    settings.require_redis()  # the batch to undo lives there; an embedded one would be empty
    if wait:
        settings.require_credentials()
    store = open_store(settings)
    check_source(store, source)  # refused before any sign-in
    if wait:
        runtime(must_sign_in=True)
    done = enqueue_undo(
        store, source, publish=publish_chunks, batch_id=batch_id, chunk_size=settings.chunk_size
    )
    if done is None:
        err.print(f"{source}: created no registration; nothing to undo", markup=False)
        if as_json:
            print_json({"batch_id": None, "undoes": source, "total": 0})
        return
    if not as_json:
        out.print(done.batch_id, markup=False)
    verb = "resuming" if done.resumed else "undoing"
    err.print(
        f"{verb} {source}: undo batch {done.batch_id}, {done.total} registrations to delete",
        markup=False,
    )
    if wait:
        raise typer.Exit(work_until_finished(settings, store, done.batch_id, as_json=as_json))
    if as_json:
        print_json({**asdict(done), "undoes": source})


@cli.command()
@refusals
def cancel(
    batch_id: Annotated[str, typer.Argument(help="The batch to end.")], as_json: JsonOpt = False
) -> None:
    """End a batch: its unfinished rows become `failed` (cancelled); no more Graph calls."""
    _, store = settings_and_store()
    ended = store.cancel_batch(batch_id)
    if as_json:
        print_json({"batch_id": batch_id, "cancelled": True, "ended": ended})
    else:
        out.print(f"{batch_id}: cancelled, {ended} unfinished rows ended", markup=False)


@cli.command()
@refusals
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Receive Graph change notifications and JSON registration requests over HTTP."""
    import uvicorn  # only this command needs the HTTP server

    from jobs.http.app import build_app, serve_deps
    from jobs.http.deadlines import with_header_deadline
    from worker.graph.calendar import require_app_only

    settings = load_settings()
    settings.require_redis()
    if settings.webhook_client_state is None and settings.api_key is None:
        raise ConfigError("set MEETREG_WEBHOOK_CLIENT_STATE, MEETREG_API_KEY, or both")
    if settings.webhook_client_state is not None:
        require_app_only(settings)  # notifications lead to reading calendars
    store = open_store(settings)
    for name, value in (
        ("MEETREG_WEBHOOK_CLIENT_STATE", settings.webhook_client_state),
        ("MEETREG_API_KEY", settings.api_key),
    ):
        if value is None:
            err.print(f"meetreg: {name} is not set: its endpoints answer 503", markup=False)
    if settings.public_pages:
        err.print(
            "meetreg: MEETREG_PUBLIC_PAGES is on: whoever reaches this port reads every "
            "batch and report",
            markup=False,
        )
    elif settings.viewer_key is None and settings.api_key is None:
        err.print(
            "meetreg: MEETREG_VIEWER_KEY is not set: the status page and reports answer 503",
            markup=False,
        )
    app = build_app(serve_deps(settings, store))
    configure_logging(settings)
    # log_config=None: uvicorn's loggers (the access log too) go through ours, as JSON
    # lines when MEETREG_LOG_FORMAT says so, redacted.
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        server_header=False,
        http=with_header_deadline(settings.serve_header_timeout_s),
        limit_concurrency=settings.serve_max_connections,
        timeout_keep_alive=settings.serve_keep_alive_s,
    )


UserOpt = Annotated[
    list[str], typer.Option("--user", help="Organizer objectId or UPN; repeat for several.")
]


@cli.command()
@refusals
def subscribe(
    user: UserOpt,
    notification_url: Annotated[
        str, typer.Option(help="Public HTTPS URL of `meetreg serve`'s /graph/notifications.")
    ],
    lifecycle_url: Annotated[
        str | None, typer.Option(help="Public HTTPS URL of its /graph/lifecycle.")
    ] = None,
) -> None:
    """Subscribe to new and changed events in these users' calendars (renews existing ones)."""
    from jobs.events.subscriptions import SubscriptionBook, utc_now
    from jobs.events.subscriptions import subscribe as subscribe_user
    from worker.graph.calendar import build_calendar_api

    settings = load_settings()
    settings.require_credentials()
    client_state = settings.require_client_state()
    for url in (notification_url, lifecycle_url):
        if url is not None and urlsplit(url).scheme not in ("https", "http"):
            raise InputError(f"{url[:80]!r} is not an https:// URL")
    store = open_store(settings)
    book = SubscriptionBook(store.redis)
    calendar = build_calendar_api(settings)
    failed = 0
    try:
        for user_id in user:
            try:
                record = subscribe_user(
                    calendar,
                    book,
                    user_id,
                    notification_url=notification_url,
                    lifecycle_url=lifecycle_url,
                    client_state=client_state,
                    now=utc_now(),
                )
            except GraphError as exc:
                failed += 1
                err.print(f"meetreg: {user_id}: {exc.describe()}", markup=False)
                continue
            out.print(f"{record.id}  {user_id}  until {record.expires_at}", markup=False)
    finally:
        calendar.http.close()
    raise typer.Exit(EXIT_ROWS_FAILED if failed else EXIT_OK)


@cli.command()
@refusals
def subscriptions(
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array.")] = False,
) -> None:
    """List the Graph subscriptions meetreg keeps, soonest to lapse first."""
    from jobs.events.subscriptions import SubscriptionBook, utc_now

    _, store = settings_and_store()
    records = SubscriptionBook(store.redis).all()
    if as_json:
        out.print(json.dumps([asdict(record) for record in records]), markup=False)
        return
    if not records:
        out.print("no subscriptions", markup=False)
    now = utc_now()
    for record in records:
        left_h = (record.expiry - now).total_seconds() / 3600
        when = f"expires {record.expires_at} (in {left_h:.0f} h)" if left_h > 0 else "LAPSED"
        out.print(f"{record.id}  {record.user_id}  {when}  {record.notification_url}", markup=False)


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
    as_json: Annotated[
        bool, typer.Option("--json", help='One JSON object: {"ok": ..., "checks": [...]}.')
    ] = False,
) -> None:
    """Check the configuration, Redis, sign-in and (with --user) Graph; exit 0 when all pass."""
    from jobs.cli.doctor import Status, run_checks

    failed = False
    checks = []
    for check in run_checks(load_settings(), user):
        failed |= check.status is Status.FAIL
        if as_json:
            checks.append(asdict(check))
        else:
            out.print(f"{check.status:<7} {check.name:<18} {check.detail}", markup=False)
    if as_json:
        print_json({"ok": not failed, "checks": checks})
    raise typer.Exit(EXIT_ROWS_FAILED if failed else EXIT_OK)


@cli.command()
@refusals
def nightly(
    once: Annotated[bool, typer.Option("--once", help="Run the nightly job now.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """The nightly job: every CSV in MEETREG_DROP_DIR becomes a batch (then moves to
    processed/, or to rejected/ with its reason), subscriptions are renewed, and the last
    24 hours are summed up. `celery -A worker.app beat` runs it at MEETREG_NIGHTLY_CRON;
    without --once this shows when. It only enqueues: workers do the rows.
    Exit 0 every file enqueued or none to take; 1 a file rejected, or a step failed;
    2 configuration refused, or another nightly run in progress.
    """
    from jobs.nightly.job import NightlyDeps, run_nightly
    from jobs.nightly.view import show_report

    settings = load_settings()
    if not once:
        _show_schedule(settings, as_json)
        return
    settings.require_redis()
    check_folder(settings.require_drop_dir())
    store = open_store(settings)
    deps = NightlyDeps(
        settings=settings,
        store=store,
        publish=publish_chunks,
        calendar=lambda: _calendar(settings),
    )
    report = run_nightly(deps, now=datetime.now(settings.zone))
    if report is None:
        err.print("meetreg: another nightly run is in progress; try again later", markup=False)
        raise typer.Exit(EXIT_REFUSED)
    if as_json:
        out.print(json.dumps(report.to_json_dict()), markup=False)
    else:
        show_report(report, out)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_ROWS_FAILED)


def _show_schedule(settings: Settings, as_json: bool) -> None:
    upcoming = next_run(settings.nightly, datetime.now(settings.zone))
    if as_json:
        schedule = {
            "cron": settings.nightly_cron,
            "timezone": settings.timezone,
            "next_run": upcoming.isoformat(),
            "drop_dir": str(settings.drop_dir) if settings.drop_dir else None,
        }
        out.print(json.dumps(schedule), markup=False)
        return
    out.print(
        f"next run: {upcoming:%Y-%m-%d %H:%M} {settings.timezone} "
        f"(MEETREG_NIGHTLY_CRON={settings.nightly_cron!r}), sent by `celery -A worker.app beat`",
        markup=False,
    )
    out.print(f"drop folder: {settings.drop_dir or 'MEETREG_DROP_DIR is not set'}", markup=False)
    out.print("meetreg nightly --once runs it now", markup=False)


@contextlib.contextmanager
def _calendar(settings: Settings) -> Iterator[CalendarApi]:
    from worker.graph.calendar import build_calendar_api

    calendar = build_calendar_api(settings)
    try:
        yield calendar
    finally:
        calendar.http.close()


@cli.command()
@refusals
def demo(
    rows: Annotated[int, typer.Option(help="How many meetings in the sample batch.")] = 3000,
) -> None:
    """Run a sample batch against the built-in Graph simulator, with faults switched on."""

    from jobs.cli.demo import run_demo  # the simulator loads only for the demo

    raise typer.Exit(run_demo(rows, run_batch=run_batch, console=err, out=out))


def main() -> None:
    # A bad setting is left to the command itself to refuse, in one line.
    with contextlib.suppress(ConfigError):
        # Warnings only by default: the progress bar and summary are a command's output.
        configure_logging(load_settings(), default_level="WARNING")
    cli()
