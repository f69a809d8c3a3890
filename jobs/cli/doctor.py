"""`meetreg doctor`: is this machine ready to run meetreg against this tenant?

Each check is a function returning a `Check`; none raises, none prints a secret (the
messages are built from error codes and the first sentence of Entra's descriptions, with
the client secret blanked out by the token source). The command exits 0 only when no check
failed; a warning (Redis that keeps nothing on disk, say) is shown but does not fail.
A batch that has stalled (see `BatchStatus.stalled`) fails, one line per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

import redis
from pydantic import ValidationError

from jobs.cli.progress import stall_text
from worker import keys
from worker.errors import ConfigError, GraphError, GraphPermanent, InputError, StoreError
from worker.graph.auth import BearerAuth, SharedTokenSource
from worker.graph.client import GraphClient, build_http_client, signed_in_user
from worker.graph.credentials import build_token_source, describe_source
from worker.graph.managed_identity import identity_endpoint
from worker.redis.connection import connect, describe_failure
from worker.redis.eviction import EvictionPolicy, read_eviction_policy
from worker.settings import RENAMED, AuthMode, Settings, renamed_in_use
from worker.store.outcome_store import OutcomeStore
from worker.store.records import BatchStatus
from worker.validation import RegistrationRequest

MIN_REDIS_VERSION = (6, 2)  # Lua, SET ... GET, ZADD GT: what the outcome store's scripts use
# A join link no meeting has: the filter answers 200 with no meeting when the permission
# and the access policy are in place, 403 when they are not. Nothing is created.
PROBE_JOIN_URL = "https://teams.microsoft.com/l/meetup-join/meetreg-doctor-probe"
# Batches in progress looked at for a stall, the most recently opened first.
STALL_SCAN_BATCHES = 1000
MEETING_API = "meeting registration API"


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"  # works, but not as it should in production
    FAIL = "fail"
    SKIPPED = "skipped"  # an earlier check failed, or nothing to check


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str


def run_checks(
    settings: Settings,
    user_id: str | None = None,
    sample_meeting: RegistrationRequest | None = None,
) -> Iterator[Check]:
    """Every check, in order; later ones are skipped when what they need failed."""
    yield check_configuration(settings)
    yield from check_renamed_settings()
    yield from check_redis(settings)
    try:
        source = build_token_source(settings)
    except ConfigError as exc:
        yield Check("token", Status.SKIPPED, str(exc))
        yield meeting_api_check(settings, sample_meeting, token_ok=False)
        return
    try:  # one token source for both checks, as one worker process has
        token = check_token(source)
        yield token
        if user_id is not None:
            if token.status is not Status.OK:
                yield Check("graph", Status.SKIPPED, "no token")
            else:
                yield from check_user(settings, source, user_id)
    finally:
        source.close()
    yield meeting_api_check(settings, sample_meeting, token_ok=token.status is Status.OK)


def parse_sample_meeting(given: str | None) -> RegistrationRequest | None:
    """`--sample-meeting USER:MEETING` (USER an objectId or UPN). Raises InputError."""
    if given is None:
        return None
    user_id, _, meeting_id = given.partition(":")
    try:
        return RegistrationRequest(user_id=user_id, meeting_id=meeting_id or None)
    except ValidationError:
        pass
    raise InputError(
        f"--sample-meeting {given!r}: give USER:MEETING (an organizer and a meeting id)"
    )


def meeting_api_check(
    settings: Settings, sample: RegistrationRequest | None, *, token_ok: bool
) -> Check:
    """Which mode Graph's meeting registration API is in, as `meetreg run`'s probe sees it
    (jobs/probe.py) for the sample meeting: live, gone, or refused to app-only tokens."""
    name = "registration API"
    if sample is None:
        return Check(name, Status.SKIPPED, f"{MEETING_API}: not checked (give --sample-meeting)")
    if not token_ok:
        return Check(name, Status.SKIPPED, f"{MEETING_API}: not checked (no token)")
    from jobs.probe import Mode, probe_meeting

    probe = probe_meeting(settings, sample)
    if probe.refused:
        return Check(name, Status.FAIL, f"{MEETING_API}: {probe.mode}; {probe.detail}")
    if probe.mode is Mode.UNKNOWN:
        return Check(name, Status.WARN, f"{MEETING_API}: unknown ({probe.detail})")
    return Check(name, Status.OK, f"{MEETING_API}: {probe.mode}")


def check_configuration(settings: Settings) -> Check:
    try:
        settings.require_redis()
        mode = settings.require_credentials()
    except ConfigError as exc:
        return Check("configuration", Status.FAIL, str(exc))
    return Check(
        "configuration",
        Status.OK,
        f"{credential_text(settings, mode)}; "
        f"Graph {settings.graph_base_url}; rate limit {settings.rate_limit_per_s:g}/s",
    )


def check_renamed_settings() -> Iterator[Check]:
    """A warning for each setting read under a name meetreg replaced: it works, for now."""
    for old in renamed_in_use():
        yield Check("renamed setting", Status.WARN, f"{old} is deprecated; use {RENAMED[old]}")


def credential_text(settings: Settings, mode: AuthMode) -> str:
    """Which credential is in use, in words (never a secret)."""
    app = f"tenant {settings.tenant_id}, client {settings.client_id}"
    if mode is AuthMode.MANAGED_IDENTITY:
        who = f"user-assigned {settings.client_id}" if settings.client_id else "system-assigned"
        return f"managed identity ({who}) via {identity_endpoint()}"
    if mode is AuthMode.DELEGATED:
        return f"{app}, delegated (signed-in organizer), token cache {settings.token_cache}"
    return f"{app}, {'certificate' if mode is AuthMode.CERTIFICATE else 'client secret'}"


def check_redis(settings: Settings) -> Iterator[Check]:
    if not settings.redis_url:
        yield Check("redis", Status.SKIPPED, "REDIS_URL is not set")
        return
    try:
        target = settings.require_redis()
    except ConfigError as exc:
        yield Check("redis", Status.FAIL, str(exc))
        return
    client = connect(target, max_connections=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        yield Check("redis", Status.FAIL, describe_failure(target, exc))
        client.close()
        return
    try:
        yield Check("redis", Status.OK, f"reachable at {target.where}")
        server = _info(client, "server")
        yield redis_version_check(None if server is None else str(server.get("redis_version")))
        persistence = _info(client, "persistence")
        aof = None if persistence is None else str(persistence.get("aof_enabled")) == "1"
        yield persistence_check(aof, _snapshot_schedule(client))
        yield eviction_check(read_eviction_policy(client))
        store = OutcomeStore(client, stall_after_s=settings.recovery_s)
        yield from stall_checks(store.open_batches(STALL_SCAN_BATCHES))
    except (redis.RedisError, StoreError) as exc:  # Redis went away between two checks
        yield Check("redis", Status.FAIL, describe_failure(target, exc))
    finally:
        client.close()


def _info(client: redis.Redis, section: str) -> dict[str, object] | None:
    """An INFO section, or None when Redis refuses INFO (ACL users without @dangerous)."""
    try:
        return dict(client.info(section))
    except redis.ResponseError:
        return None


def _snapshot_schedule(client: redis.Redis) -> str | None:
    try:
        return str(client.config_get("save").get("save", ""))
    except redis.ResponseError:  # managed Redis often refuses CONFIG
        return None


def redis_version_check(version: str | None) -> Check:
    wanted = ".".join(map(str, MIN_REDIS_VERSION))
    if version is None:
        return Check("redis version", Status.WARN, f"not readable; meetreg needs {wanted} or newer")
    numbers = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if numbers < MIN_REDIS_VERSION:
        return Check("redis version", Status.FAIL, f"{version}; meetreg needs {wanted} or newer")
    return Check("redis version", Status.OK, version)


def persistence_check(aof: bool | None, save: str | None) -> Check:
    """`aof`: whether AOF is on, None when Redis would not say; `save` is the snapshot
    schedule (CONFIG GET save), None when Redis would not say."""
    if aof:
        return Check("redis persistence", Status.OK, "AOF on")
    if aof is None:
        detail = "not readable (INFO refused): a restart may lose recent outcomes without AOF"
    elif save:
        detail = f"snapshots only ({save}): a restart loses what changed since the last one"
    elif save is None:
        detail = "no AOF (snapshot schedule not readable): a restart may lose recent outcomes"
    else:
        detail = "nothing on disk: a restart loses every batch, outcome and queued row"
    return Check("redis persistence", Status.WARN, f"{detail}; set appendonly yes")


def eviction_check(policy: EvictionPolicy) -> Check:
    """Keys that may be evicted fail the check; a policy Redis would not show warns."""
    if not policy.known:
        return Check("redis eviction", Status.WARN, policy.describe())
    if policy.may_evict:
        return Check("redis eviction", Status.FAIL, policy.describe())
    return Check("redis eviction", Status.OK, policy.describe())


def stall_checks(batches: list[BatchStatus]) -> Iterator[Check]:
    """One failing check per stalled batch; one passing line when none is."""
    stalled = [batch for batch in batches if batch.stalled]
    if not stalled:
        yield Check("batches", Status.OK, f"{len(batches)} in progress, none stalled")
    for batch in stalled:
        yield Check(
            "stalled batch",
            Status.FAIL,
            f"{batch.batch_id}: {stall_text(batch)}; check that workers are running and "
            f"what they log, and `meetreg status {batch.batch_id}`",
        )


def check_token(source: SharedTokenSource) -> Check:
    try:
        source.token()
        return Check("token", Status.OK, describe_source(source))
    except GraphError as exc:
        return Check("token", Status.FAIL, exc.describe() if exc.code is None else exc.message)


def check_user(settings: Settings, source: SharedTokenSource, user_id: str) -> Iterator[Check]:
    """Read probes under the user: meetings (registrations need them), then calendar
    events when the webhook is configured (event-triggered runs need them)."""
    http = build_http_client(settings, BearerAuth(source))
    signed_in = signed_in_user(source)
    works = (
        f"OnlineMeetings.ReadWrite works for the signed-in {user_id}"
        if signed_in
        else f"OnlineMeetings.ReadWrite.All and the access policy work for {user_id}"
    )
    try:
        graph = GraphClient(http, settings.graph_base_url, signed_in=signed_in)
        yield _probe(
            "graph meetings", lambda: graph.find_meeting_id(user_id, PROBE_JOIN_URL), works
        )
        if settings.webhook_client_state is not None and signed_in is None:
            v1 = GraphClient(http, settings.graph_v1_base_url)
            yield _probe(
                "graph calendar",
                lambda: v1.send("GET", keys.events_path(user_id), query={"$top": "1"}),
                f"Calendars.Read works for {user_id}",
            )
    finally:
        http.close()


def _probe(name: str, call: Callable[[], object], ok: str) -> Check:
    try:
        call()
    except GraphPermanent as exc:
        if exc.code == "MeetingNotFound":  # our own "no such meeting": the read worked
            return Check(name, Status.OK, ok)
        return Check(name, Status.FAIL, f"HTTP {exc.status} {exc.describe()}")
    except GraphError as exc:
        return Check(name, Status.FAIL, exc.describe())
    return Check(name, Status.OK, ok)
