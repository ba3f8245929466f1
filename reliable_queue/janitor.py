"""The janitor: recover expired leases, promote due jobs, expire old dead letters.

A pass over a queue is a few script calls, each bounded (at most ``BATCH`` jobs),
repeated until there is nothing left to do, so its cost grows with the number of
expired leases and due jobs, never with the length of pending. Any number of
janitors may run: each transition is conditional inside one script (the job is
still in in-flight and its lease still expired by the server's clock), so a job
is requeued once per expiry.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from . import signals
from .conf import get_settings
from .job import Job
from .queue import BATCH, Queue, get_queue
from .worker import REDIS_DOWN, Backoff

logger = logging.getLogger("reliable_queue.janitor")
job_logger = logging.getLogger("reliable_queue.jobs")


@dataclass
class PassResult:
    """What one pass did to one queue."""

    requeued: int = 0
    dead: int = 0
    promoted: int = 0
    expired: int = 0

    def __bool__(self) -> bool:
        return bool(self.requeued or self.dead or self.promoted or self.expired)

    def __str__(self) -> str:
        return f"requeued={self.requeued} dead={self.dead} promoted={self.promoted} expired={self.expired}"


class Janitor:
    """Recovers and promotes jobs of ``queues`` (all configured queues by default)."""

    def __init__(self, queues: Sequence[str] | None = None, interval: float | None = None,
                 name: str | None = None) -> None:
        settings = get_settings()
        self.queues = [get_queue(n) for n in (queues or settings.queues)]
        self.interval = interval if interval is not None else settings.janitor_interval
        self.name = (name or f"janitor.{socket.gethostname()[:40]}.{os.getpid()}").replace("|", "_")
        self.stopping = threading.Event()

    def run_once(self) -> dict[str, PassResult]:
        """One pass over every queue; returns what it did per queue.

        A queue that Redis refuses (a key of the wrong type, say) is logged and
        skipped: the other queues are still recovered. Redis being unreachable
        is raised to the caller, which retries with backoff.
        """
        results = {}
        for queue in self.queues:
            try:
                results[queue.name] = self.pass_over(queue)
            except redis.ResponseError as exc:
                logger.error("janitor pass over queue %s failed, skipped this time: %s", queue.name, exc)
                results[queue.name] = PassResult()
        return results

    def pass_over(self, queue: Queue) -> PassResult:
        result = PassResult()
        while True:
            rows = queue._recover(self.name, BATCH)
            for job_id, action, attempt, reason in rows:
                jid, why = job_id.decode("utf-8", "replace"), reason.decode("utf-8", "replace")
                if action == b"requeued":
                    result.requeued += 1
                    job_logger.info("requeued %s in %s (attempt %s): %s", jid, queue.name, attempt, why)
                    self._signal(queue, jid, signals.job_requeued, source="janitor", user=None,
                                 previous_state="inflight")
                else:
                    result.dead += 1
                    logger.error("dead-lettered %s in %s after %s attempt(s): %s", jid, queue.name, attempt, why)
                    self._signal(queue, jid, signals.job_dead_lettered, reason=why, worker=None, exception=None)
            if len(rows) < BATCH:
                break
        while True:
            moved = len(queue._promote(BATCH))
            result.promoted += moved
            if moved < BATCH:
                break
        while True:
            expired = queue._expire_dead(BATCH)
            result.expired += expired
            if expired < BATCH:
                break
        return result

    @staticmethod
    def _signal(queue: Queue, job_id: str, sig: Any, **kwargs: Any) -> None:
        if sig.receivers:
            job = queue.get(job_id) or Job(id=job_id, task="", queue=queue.name)
            signals.send(sig, sender=Janitor, queue=queue.name, job=job, **kwargs)

    def run(self, install_signals: bool = True, on_pass: Any = None) -> None:
        """Pass every ``interval`` seconds until SIGTERM/SIGINT."""
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stopping.set())
        logger.info("janitor %s started: queues=%s interval=%.1fs", self.name,
                    ",".join(q.name for q in self.queues), self.interval)
        backoff = Backoff()
        while not self.stopping.is_set():
            try:
                results = self.run_once()
                backoff.reset()
            except REDIS_DOWN as exc:
                delay = backoff.next_delay()
                logger.warning("Redis unavailable (%s); retrying in %.1fs", exc, delay)
                self.stopping.wait(delay)
                continue
            except Exception:  # a janitor must outlive any one bad pass
                delay = backoff.next_delay()
                logger.exception("janitor pass failed; retrying in %.1fs", delay)
                self.stopping.wait(delay)
                continue
            if on_pass is not None:
                on_pass(results)
            self.stopping.wait(self.interval)
        self._deregister()
        logger.info("janitor %s stopped", self.name)

    def _deregister(self) -> None:
        """A clean stop takes this janitor off the queues' lists of live janitors."""
        try:
            for queue in self.queues:
                queue.client.zrem(queue.keys.janitors, self.name)
        except REDIS_DOWN:
            pass  # it ages out of the list instead
