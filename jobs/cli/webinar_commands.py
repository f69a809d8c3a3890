"""`meetreg webinars`: the commands about Teams webinars as their organizer. Today one,
`meetreg webinars publish`: publish draft webinars, as a batch of the PUBLISH operation.

Graph publishes a webinar for its organizer only, with a delegated token (application
permission is not supported): the command runs as the organizer `meetreg login` signed
in (MEETREG_AUTH=delegated), and refuses any other credential before anything is read.
The batch goes through the same pipeline as any other (exactly once, rate limit,
retries, outcomes, `meetreg status` and `meetreg report`), run in this process as
`meetreg run` does; its exit codes are run's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from jobs.cli.app import EXIT_OK, JsonOpt, cli, err, print_json, reachable_store, refusals
from jobs.cli.batch_commands import BatchIdOpt, redis_for, work_until_finished
from worker.errors import ConfigError, GraphError, InputError
from worker.publications import validate_publication
from worker.settings import AuthMode, Settings, load_settings
from worker.validation import SourceRow

ORGANIZER = "organizer"
DRAFT = "draft"
DRAFTS_SOURCE = "the signed-in organizer's draft webinars"
DELEGATED_ONLY = (
    "application permission is not supported for publishing a webinar: run `meetreg login` "
    "and set MEETREG_AUTH=delegated"
)

webinars = typer.Typer(
    name="webinars",
    help="Teams webinars, as their organizer (MEETREG_AUTH=delegated).",
    no_args_is_help=True,
)
cli.add_typer(webinars)


@webinars.command()
@refusals
def publish(
    file: Annotated[
        Path | None,
        typer.Argument(help="CSV file with a webinar_id column: the webinars to publish."),
    ] = None,
    all_drafts: Annotated[
        bool,
        typer.Option("--all-drafts", help="Publish every draft webinar you organize."),
    ] = False,
    batch_id: BatchIdOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish draft webinars you organize (signed in with `meetreg login`), in this
    process until every row is final; prints the summary and the report command."""
    from jobs.enqueue import enqueue_rows
    from jobs.sources.csv_file import PUBLICATIONS, CsvSource
    from worker.models import Operation
    from worker.publish import publish_chunks
    from worker.runtime import runtime

    if (file is None) == (not all_drafts):
        raise InputError("give a FILE of webinar ids or --all-drafts (one of the two)")
    settings = load_settings()
    require_delegated(settings)
    source = CsvSource(file, PUBLICATIONS) if file is not None else None
    if source is not None:
        source.check()  # a file refused whole is refused before any sign-in
    with redis_for(settings) as settings:
        store = reachable_store(settings)
        current = runtime(must_sign_in=True)
        rows = source.rows() if source is not None else list(draft_rows(current.deps.graph))
        if not rows:
            if as_json:
                print_json({"batch_id": None, "total": 0})
            err.print("no draft webinar to publish", markup=False)
            raise typer.Exit(EXIT_OK)
        done = enqueue_rows(
            rows,
            store=store,
            publish=publish_chunks,
            source=str(file) if file is not None else DRAFTS_SOURCE,
            batch_id=batch_id,
            chunk_size=settings.chunk_size,
            operation=Operation.PUBLISH,
        )
        err.print(f"batch {done.batch_id}: {done.total} webinars to publish", markup=False)
        raise typer.Exit(work_until_finished(settings, store, done.batch_id, as_json=as_json))


def require_delegated(settings: Settings) -> None:
    """Refuse (ConfigError) any credential but the signed-in organizer's, with what it needs."""
    if settings.auth_mode is not AuthMode.DELEGATED:
        raise ConfigError(DELEGATED_ONLY)
    settings.require_credentials()


def draft_rows(graph: object) -> Iterator[SourceRow]:
    """One row per draft webinar the signed-in user organizes, numbered by its place in
    Graph's listing. Raises ConfigError when Graph refuses the listing."""
    from worker.graph.client import GraphClient
    from worker.graph.webinars import WebinarClient

    if not isinstance(graph, GraphClient):
        raise ConfigError("this process has no Graph client for webinars")
    try:
        listed = WebinarClient(graph).my_webinars(ORGANIZER)
    except GraphError as exc:
        raise ConfigError(f"could not list your webinars: {exc.describe()}") from None
    drafts = [webinar.id for webinar in listed if webinar.status == DRAFT]
    for line, webinar_id in enumerate(drafts, start=1):
        yield validate_publication(webinar_id, line)
