"""A Celery worker inside the current process, for `meetreg run` and `meetreg demo`.

The same worker `celery -A worker.app worker` starts (threads pool, the same task, the
same sweeper), only without the banner, logging takeover and signal handlers of the
command-line worker. It runs in the calling thread until `stop_when` says so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from celery import signals
from celery.worker import state as worker_state

from worker import keys
from worker.app import app

POLL_S = 0.2


def run_worker_until(stop_when: Callable[[], bool], *, concurrency: int) -> None:
    """Consume the meetreg queue in this thread until `stop_when()` is true.

    `stop_when` is polled from a watcher thread; the worker then shuts down warmly:
    running tasks finish, and messages it had not started go back to the queue.
    """
    # The app's `include` brings in the task module (the tasks and the worker hooks) as
    # the worker starts, as it does for `celery -A worker.app worker`.
    app.loader.import_default_modules()
    controller = app.WorkController(
        pool_cls="threads",
        concurrency=concurrency,
        queues=[keys.QUEUE],
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        loglevel="WARNING",
        # Only the command-line worker sends `worker_ready`; the sweeper starts on it, and
        # without it rows a dead worker held would wait for the broker's 12 h timeout.
        ready_callback=lambda consumer: signals.worker_ready.send(sender=consumer),
    )
    done = threading.Event()

    def watch() -> None:
        while not done.wait(POLL_S):
            if stop_when():
                # Read by the worker's event loop, which then shuts down warmly.
                worker_state.should_stop = 0
                return

    watcher = threading.Thread(target=watch, name="meetreg-watch", daemon=True)
    watcher.start()
    try:
        controller.start()
    finally:
        done.set()
        watcher.join(timeout=5)
        worker_state.should_stop = None
