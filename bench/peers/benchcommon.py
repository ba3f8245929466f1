"""What every bench driver shares: arguments, the job counter, the finish line.

Imported by the peer drivers (in the peers' virtualenv), by ``bench/raw.py`` and
``bench/ours.py`` and by the bench app that runs inside ``runworker`` (in the
project's virtualenv), so it needs nothing but the standard library and redis-py.

How a drain is timed, the same way for every system:

* the task body is a no-op that calls :meth:`Counter.tick` (an ``itertools``
  counter: a few hundred nanoseconds, the same cost in every system);
* the clock starts when the first job starts (``first``): process start-up,
  imports, connecting and the first fetch are excluded for everybody;
* when the N-th job has run, a watcher thread (asleep on an Event until then, so
  it costs nothing while the worker runs) polls Redis every 0.5 ms until the
  system shows every job acknowledged, and that instant is ``end``.

Each driver prints exactly one JSON object on one stdout line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True, help="URL of the bench's own Redis")
    parser.add_argument("--op", required=True, help="enqueue_single | enqueue_bulk | drain | ...")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--prefetch", type=int, default=0, help="0: the system's default")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up a drain after this long")
    return parser.parse_args(argv)


def emit(**result: Any) -> None:
    """Print the one result line and make sure it leaves the process."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


class Counter:
    """Counts executed jobs; notes when the first started and when the target was reached."""

    def __init__(self, target: int) -> None:
        self.target = target
        self._count = itertools.count(1)
        self.first: float | None = None
        self.last: float | None = None
        self.done = threading.Event()

    def tick(self) -> None:
        n = next(self._count)  # atomic under the GIL, also with several threads
        if n == 1:
            self.first = time.time()
        if n == self.target:
            self.last = time.time()
            self.done.set()


#: The counter of this process; drivers replace it before their worker starts.
COUNTER = Counter(0)


def noop(*_args: Any, **_kwargs: Any) -> None:
    """The body of every bench job."""
    COUNTER.tick()


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def wait_until_acked(acked: Callable[[], bool], timeout: float, poll: float = 0.0005) -> dict[str, Any]:
    """Wait for the N-th job, then for ``acked()``; returns the timing fields of a drain result."""
    if not COUNTER.done.wait(timeout):
        return {"error": f"timed out: {next(COUNTER._count) - 1} of {COUNTER.target} jobs ran in {timeout:.0f}s"}
    deadline = time.monotonic() + 60
    while not acked():
        if time.monotonic() > deadline:
            return {"error": "every job ran but the system never showed them all acknowledged"}
        time.sleep(poll)
    end = time.time()
    assert COUNTER.first is not None and COUNTER.last is not None
    return {"first": COUNTER.first, "last": COUNTER.last, "end": end, "seconds": end - COUNTER.first}


def watch_and_exit(acked: Callable[[], bool], timeout: float, **extra: Any) -> threading.Thread:
    """Start the watcher: print the drain result, then end the process at once.

    Used by drivers whose worker has no "stop when empty" mode: every job is
    acknowledged by then, so nothing is lost by ``os._exit``.
    """

    def run() -> None:
        result = wait_until_acked(acked, timeout)
        emit(**extra, **result)
        os._exit(0 if "error" not in result else 3)

    thread = threading.Thread(target=run, name="bench-watcher", daemon=True)
    thread.start()
    return thread
