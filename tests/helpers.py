"""Helpers shared by the engine tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from reliable_queue.janitor import Janitor
from reliable_queue.worker import Worker


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {predicate}")
        time.sleep(interval)


class RunningWorker:
    """A Worker running in a thread of the test process, stopped on exit."""

    def __init__(self, **options: Any) -> None:
        self.worker = Worker(**options)
        self.thread = threading.Thread(target=self.worker.run, kwargs={"install_signals": False}, daemon=True)

    def __enter__(self) -> Worker:
        self.thread.start()
        return self.worker

    def __exit__(self, *exc: Any) -> None:
        self.worker.stop()
        self.thread.join(30)
        assert not self.thread.is_alive(), "worker did not stop"


class RunningJanitor:
    def __init__(self, **options: Any) -> None:
        self.janitor = Janitor(**options)
        self.thread = threading.Thread(target=self.janitor.run, kwargs={"install_signals": False}, daemon=True)

    def __enter__(self) -> Janitor:
        self.thread.start()
        return self.janitor

    def __exit__(self, *exc: Any) -> None:
        self.janitor.stopping.set()
        self.thread.join(30)


def drained(queue: Any) -> bool:
    s = queue.stats()
    return s["pending"] == 0 and s["inflight"] == 0 and s["scheduled"] == 0
