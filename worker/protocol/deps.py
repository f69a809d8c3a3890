"""What the protocol's parts (worker.protocol.chunk, row, wave) share: the clients and
knobs they are given, and the two ways a row is left as it is."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from worker.errors import ConfigError
from worker.models import Operation
from worker.protocol.leases import LeaseKeeper
from worker.protocol.retry_policy import RetryPolicy
from worker.protocol.target import Target
from worker.ratelimit.limiter import RateLimiter
from worker.store.outcome_store import OutcomeStore
from worker.store.records import MeetingRecord


@dataclass(frozen=True, slots=True)
class Policy:
    """The protocol's knobs, from Settings."""

    max_attempts: int = 6
    get_before_post: bool = True
    backoff_base_s: float = 1.0
    # The rows of a chunk go the common way in waves (worker.protocol.wave), this many at
    # a time: with $batch on, where calls sent together share envelopes.
    in_waves: bool = False
    wave_size: int = 20
    threads: int = 32  # MEETREG_CONCURRENCY: the threads of a worker process

    def looks_first(self, record: MeetingRecord) -> bool:
        """GET before the POST: always with get_before_post, else when a POST of ours may
        have reached Graph."""
        return self.get_before_post or record.posts > 0


@dataclass(slots=True)
class Deps:
    """Everything `process_chunk` talks to; built once per worker process."""

    store: OutcomeStore
    graph: object  # the Graph client the targets call through (closed with the process)
    target: Target  # what a meeting batch's row creates, and its undo removes
    limiter: RateLimiter
    leases: LeaseKeeper
    policy: Policy = field(default_factory=Policy)
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    webinars: Target | None = None  # what a registrant batch's row creates, if configured
    publications: Target | None = None  # what a publication batch's row publishes, if so

    def target_for(self, operation: Operation) -> Target:
        """The target a batch of `operation` works on."""
        if operation is Operation.PUBLISH:
            if self.publications is None:
                raise ConfigError("this worker has no webinar publication target")
            return self.publications
        if not operation.webinars:
            return self.target
        if self.webinars is None:
            raise ConfigError("this worker has no webinar target")
        return self.webinars

    @property
    def retry_policy(self) -> RetryPolicy:
        """How a row (or a dry run's read) retries: throttling never uses an attempt."""
        policy = self.policy
        return RetryPolicy(policy.max_attempts, policy.backoff_base_s, self.rng)


class LeaseLost(Exception):
    """Another worker holds the meeting now; this one must not send anything more."""


class BatchPaused(Exception):
    """The batch is paused: leave the row as it is, for `meetreg resume` to send again."""
