"""The commands about batches: enqueue, run, status, report, retry, resume, disable and
cancel a set of rows with one batch id."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from jobs.cli.app import (
    EXIT_OK,
    EXIT_ROWS_FAILED,
    JsonOpt,
    cli,
    err,
    out,
    print_json,
    reachable_store,
    refusals,
    settings_and_store,
)
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
from jobs.sources.csv_file import TARGETS, WEBINARS, CsvSource
from worker.errors import ConfigError, GraphAuthError, InputError
from worker.models import RowState
from worker.publish import publish_chunks
from worker.redis.embedded import EmbeddedRedis
from worker.settings import Settings, load_settings
from worker.store.outcome_store import OutcomeStore
from worker.store.records import BatchStatus
from worker.validation import AllowedRegistrant


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


def _file_source(
    settings: Settings, file: Path, target: str | None, allowed: AllowedRegistrant | None
) -> CsvSource:
    if target is not None and target not in TARGETS:
        raise InputError(f"--target must be {' or '.join(TARGETS)}, not {target!r}")
    return CsvSource(file, target, allowed, settings.registrant_defaults)


def _enqueue_file(
    settings: Settings,
    store: OutcomeStore,
    source: CsvSource,
    batch_id: str | None,
) -> Enqueued:
    return enqueue_file(
        source.path,
        store=store,
        publish=publish_chunks,
        batch_id=batch_id,
        allowed_registrant=source.allowed_registrant,
        chunk_size=settings.chunk_size,
        target=source.target,
        defaults=source.defaults,
    )


FileArg = Annotated[
    Path,
    typer.Argument(help="CSV file of meetings, or of webinar registrants (docs/csv-format.md)."),
]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--target",
        help="meetings or webinars: what the rows are. Default: a file with webinar_id and "
        "email columns is webinars, any other meetings.",
    ),
]
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
NoProbeOpt = Annotated[
    bool,
    typer.Option(
        "--no-probe",
        help="Do not first check, with one GET of a row's registration, that Graph still "
        "serves the meeting registration API (retired 2024-12-12). `enqueue` skips the "
        "check by itself where no Graph credential is configured (a pure producer).",
    ),
]
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
    no_probe: NoProbeOpt = False,
    as_json: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """Validate FILE, record the batch and enqueue it for the workers; prints the batch id.
    Refused (exit 2) when Graph no longer serves the meeting registration API."""
    if dry_run:
        _no_json_for_dry_run(as_json)
        settings = load_settings()
        source = _file_source(settings, file, target, allowed_registrant)
        raise typer.Exit(dry_run_file(settings, source))
    settings, store = settings_and_store()
    source = _file_source(settings, file, target, allowed_registrant)
    refuse_retired_api(settings, source, skip=no_probe)
    done = _enqueue_file(settings, store, source, batch_id)
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
    no_probe: NoProbeOpt = False,
    as_json: JsonOpt = False,
    target: TargetOpt = None,
) -> None:
    """Enqueue FILE and process it in this process until every row is final. Refused
    (exit 2) when Graph no longer serves the meeting registration API."""
    settings = load_settings()
    source = _file_source(settings, file, target, allowed_registrant)
    if dry_run:
        _no_json_for_dry_run(as_json)
        raise typer.Exit(dry_run_file(settings, source))
    settings.require_credentials()
    code = run_batch(settings, source, batch_id, as_json=as_json, probe=not no_probe)
    raise typer.Exit(code)


def refuse_retired_api(
    settings: Settings, source: CsvSource, *, skip: bool, graph: object = None
) -> None:
    """Before anything is recorded: raise ApiRetired (exit 2, one line) when one GET of a
    row's registration finds the meeting registration API retired (jobs/probe.py). Skipped
    with --no-probe, and where no Graph credential is configured: then not even imported,
    so `enqueue` as a pure producer starts as fast as before. Webinar registrants are not
    meetings: nothing to probe."""
    if skip or settings.auth_mode is None or source.kind == WEBINARS:
        return
    from jobs.probe import refuse_retired

    refuse_retired(settings, source.rows(), graph=graph)


def _no_json_for_dry_run(as_json: bool) -> None:
    if as_json:
        raise InputError("--json does not go with --dry-run: a dry run prints CSV")


def run_batch(
    settings: Settings,
    source: CsvSource,
    batch_id: str | None,
    *,
    as_json: bool = False,
    probe: bool = True,
) -> int:
    """`meetreg run`: with an embedded Redis when REDIS_URL is unset. Returns the exit code.
    `probe`: first check that Graph still serves the API (`refuse_retired_api`)."""
    from worker.runtime import runtime
    from worker.telemetry.metrics import SharedGauges, serve_metrics

    # The file first, then the credentials: each refusal before anything is enqueued.
    source.check()
    with redis_for(settings) as settings:
        store = reachable_store(settings)
        # The worker's own clients, built now: one sign-in, refused here if it fails.
        current = runtime(must_sign_in=True)
        # Through the worker's own client: its token, not a second sign-in.
        refuse_retired_api(settings, source, skip=not probe, graph=current.deps.graph)
        if settings.metrics_port is not None:  # a one-shot command opens no port unasked
            shared = SharedGauges(current.store, current.deps.limiter)
            serve_metrics(settings.metrics_port, settings.metrics_host, shared)
        done = _enqueue_file(settings, store, source, batch_id)
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


def dry_run_file(settings: Settings, source: CsvSource) -> int:
    """`--dry-run`: every row's forecast as CSV on stdout, the counts on stderr; no POST,
    nothing recorded or enqueued. Exit 0 when no row would fail, 1 otherwise."""
    from jobs.dry_run import Forecast, forecast_rows, write_forecasts
    from worker.runtime import runtime

    settings.require_credentials()
    source.check()  # a file refused whole is refused before any Graph call
    with redis_for(settings) as settings:
        reachable_store(settings)
        current = runtime(must_sign_in=True)
        rows = source.rows()
        forecasts = forecast_rows(rows, current.deps, threads=settings.concurrency)
        try:
            counts = write_forecasts(forecasts, sys.stdout, registrants=source.kind == WEBINARS)
        except GraphAuthError as exc:
            raise ConfigError(exc.describe()) from None
    err.print(
        "dry run, nothing sent: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v),
        markup=False,
    )
    bad = counts[Forecast.WOULD_FAIL] + counts[Forecast.INVALID]
    return EXIT_ROWS_FAILED if bad else EXIT_OK


@contextlib.contextmanager
def redis_for(settings: Settings) -> Iterator[Settings]:
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
    store = reachable_store(settings)
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
