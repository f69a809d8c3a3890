"""`meetreg serve` and the Graph subscriptions whose notifications it receives."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated
from urllib.parse import urlsplit

import typer

from jobs.cli.app import (
    EXIT_OK,
    EXIT_ROWS_FAILED,
    cli,
    err,
    out,
    reachable_store,
    refusals,
    settings_and_store,
)
from worker.errors import ConfigError, GraphError, InputError
from worker.settings import load_settings
from worker.telemetry.logs import configure_logging


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
    store = reachable_store(settings)
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
    store = reachable_store(settings)
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
