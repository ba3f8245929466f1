"""The worker: consume queues, run tasks, keep leases alive, stop cleanly.

Shape of one worker process:

* ``concurrency`` *slot* threads. Each leases up to ``prefetch`` jobs with one
  ``fetch`` script call, which also acknowledges the jobs it finished since its
  last call, so a busy slot costs one round trip per batch. A slot with nothing
  to do blocks in Redis on the queues' wake-up keys (no polling).
* one *heartbeat* thread that extends the leases of every job the worker holds,
  well before they expire, and fails a job that reached its time limit (its slot
  thread is then replaced: a hung task never holds a slot or a lease forever).
* one *acker* thread that sends the acks of finished jobs whose slot is busy in a
  long next job, so they never wait for their lease to run out.
* one *reporter* thread that fails jobs at their time limit and sends the signals
  of what the heartbeat and the acker found, so a slow receiver never holds up
  an ack or a lease extension.
* the main thread, which handles signals. First SIGTERM/SIGINT: stop taking
  jobs, let running ones finish within ``shutdown_timeout``, then hand back
  what is left (unstarted jobs without charging an attempt). Second signal:
  exit at once; the janitor recovers the leases.

Redis going away is not fatal: every Redis call in the loops is retried with
capped exponential backoff, and finished work waiting to be acknowledged is
kept until the acknowledgement goes through (or the lease is found lost).
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import os
import queue as queue_module
import random
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from django.db import close_old_connections

from . import job as jobmod
from . import signals
from .conf import get_settings
from .connection import get_client, socket_timeout_of
from .exceptions import InvalidEnvelope, TaskNotFound
from .job import Job
from .queue import LIMIT_GRACE_MS, Queue, get_queue
from .tasks import get_task

logger = logging.getLogger("reliable_queue.worker")
#: One line per finished job, at INFO (``runworker -v 2`` shows them, ``-v 1`` does not).
job_logger = logging.getLogger("reliable_queue.jobs")

#: Exceptions that mean "Redis is unreachable right now": back off and retry.
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError)

#: Longest traceback kept per failed attempt.
MAX_TRACEBACK = 16_000


def default_worker_name() -> str:
    host = socket.gethostname().replace("|", "_")[:40]
    return f"{host}.{os.getpid()}.{random.randrange(16**4):04x}"


def retry_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: about base * 2**(attempt-1), between 50% and 100% of it."""
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return delay * random.uniform(0.5, 1.0)


@dataclass(eq=False)
class Lease:
    """A job this worker holds: its delivery token and what the heartbeat needs."""

    queue: Queue
    id: str
    token: str
    envelope: bytes
    attempt: int
    vt_ms: int
    #: The job's time limit (ms), and the local monotonic time it is reached: set when
    #: the job starts (a prefetched job waiting in the buffer is not running yet).
    limit_ms: int = 0
    limit_at: float = float("inf")
    #: When its hard limit in Redis passes, at the latest, by this worker's clock: set at
    #: pickup (the limits and graces of the jobs ahead of it in the batch, plus its own)
    #: and moved when its start is reported. A job is never started past it unasked.
    hard_at: float = float("inf")
    #: take_job_slot's count of running jobs has been given back (job_done) for it.
    done_counted: bool = False
    extended_at: float = field(default_factory=time.monotonic)
    started: bool = False
    lost: bool = False
    timed_out: bool = False
    #: Set once its outcome (ack, fail, dead-letter, hand-back) is decided: from then on
    #: that operation's reply, not the heartbeat's, says whether the lease was lost.
    settling: bool = False
    slot: Slot | None = None

    def hard_in_ms(self, now: float) -> int:
        """Its hard limit in Redis from now: the rest of its time limit (from its start) plus
        the grace for its ack; -1 while it is not running (Redis keeps the pickup's limit)."""
        if self.limit_at == float("inf"):
            return -1
        return max(0, int((self.limit_at - now) * 1000)) + LIMIT_GRACE_MS


class Backoff:
    """Capped exponential backoff with jitter for reconnecting to Redis."""

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self.first, self.cap, self.failures = first, cap, 0

    def reset(self) -> None:
        self.failures = 0

    def next_delay(self) -> float:
        self.failures += 1
        return min(self.cap, self.first * 2 ** (self.failures - 1)) * random.uniform(0.5, 1.0)


class Slot(threading.Thread):
    """One thread that runs jobs one after another."""

    def __init__(self, worker: Worker, number: int) -> None:
        super().__init__(name=f"reliable-queue-slot-{number}", daemon=True)
        self.worker = worker
        self.buffer: collections.deque[Lease] = collections.deque()
        # Finished jobs waiting for their ack, per queue: (lease, result, duration).
        # The acker thread may send them while this slot is busy in a long job,
        # so they are only touched under _acks_lock (see _add_ack, _take_acks).
        self.acks: dict[str, list[tuple[Lease, Any, float]]] = collections.defaultdict(list)
        self._acks_lock = threading.Lock()
        # close_old_connections() ran after the last job and nothing waited since:
        # the next job need not run it again (as a request cycle: once between jobs).
        self.db_checked = False
        # When the oldest finished job still waiting for its ack finished.
        self.ack_since: float | None = None
        self.current: Lease | None = None
        self.popped: Lease | None = None
        self.abandoned = False
        self.backoff = Backoff()
        # Queues whose keys Redis refused (WRONGTYPE...): when we last said so.
        self.broken_since: dict[str, float] = {}

    # The loop ------------------------------------------------------------------

    def run(self) -> None:
        w = self.worker
        try:
            while not w.stopping.is_set() and not self.abandoned:
                try:
                    if not self._step():
                        break
                except Exception:
                    # Never let one bad job or one broken key stop the worker: log it,
                    # leave the job to its lease (the janitor recovers it), pause, go on.
                    w.errors += 1
                    logger.exception("worker slot %s: unexpected error; going on after a pause", self.name)
                    if self.popped is not None:
                        w.forget(self.popped)
                        self.popped = None
                    w.force.wait(self.backoff.next_delay())
        finally:
            if not self.abandoned:
                self._hand_back()

    def _step(self) -> bool:
        """Run (or wait for) one job; False when the slot should stop."""
        w = self.worker
        if not self.buffer:
            progressed = self._refill()
            if not self.buffer:
                if progressed:  # only malformed entries came back: look again
                    return True
                if w.burst:
                    return False
                self._wait_for_work()
                return True
        lease = self.buffer.popleft()
        if lease.lost or lease.settling or not w.lease_still_held(lease):
            w.forget(lease)
            return True
        if w.stopping.is_set() or not w.take_job_slot():
            self.buffer.appendleft(lease)
            return False
        self.popped = lease
        self._run(lease)
        self.popped = None
        self.backoff.reset()
        self._flush_acks_if_due()
        return True

    def surrender(self) -> None:
        """Called (from the reporter, for the heartbeat) when this slot is stuck in a job past
        its time limit and is being replaced: send its waiting acks, hand back its unstarted jobs."""
        self.abandoned = True
        try:
            self._flush_acks()
        except Exception:
            logger.exception("could not send the acks of stuck slot %s; their leases will expire", self.name)
        unstarted = [lease for lease in self.buffer if not lease.lost and not lease.started]
        self.buffer.clear()
        if unstarted:
            self.worker.release(unstarted)

    def _refill(self) -> bool:
        """Ack what is finished and lease up to ``prefetch`` jobs.

        Returns False when no queue had anything (neither a job nor a malformed
        entry that was dead-lettered on the way).
        """
        w = self.worker
        want = w.fetch_size()
        progressed = False
        for queue in w.queues:
            acks = self._take_acks(queue.name)
            if want <= 0 and not acks:
                continue
            try:
                taken = self._call_fetch(queue, acks, max(want, 0))
            except redis.ResponseError as exc:
                self._return_acks(queue.name, acks)
                self._queue_refused(queue, exc)
                continue
            if taken is None:  # Redis down and we are stopping: give up for now
                return False
            leased, buried = taken
            progressed = progressed or bool(leased) or buried > 0
            want -= len(leased) + buried
            self.buffer.extend(leased)
        if not progressed and not w.stopping.is_set():
            # Due retries and delayed jobs become pending here too (not only in the
            # janitor): when some did, look again at once, so --burst does not exit
            # with work that is due.
            progressed = w.promote_due() > 0
        return progressed

    def _queue_refused(self, queue: Queue, exc: redis.ResponseError) -> None:
        """A queue whose script Redis refuses is skipped (the other queues go on); said once a minute."""
        now = time.monotonic()
        if now - self.broken_since.get(queue.name, -1e9) > 60:
            self.broken_since[queue.name] = now
            logger.error("queue %s is unusable and is skipped for now: %s", queue.name, exc)

    def _call_fetch(self, queue: Queue, acks: list[tuple[Lease, Any, float]], count: int,
                    report_later: bool = False) -> tuple[list[Lease], int] | None:
        """One fetch script call: send ``acks`` (taken with _take_acks) and lease ``count`` jobs.
        ``report_later``: send the acks' signals from the reporter thread, not this one."""
        w = self.worker
        while True:
            if w.stopping.is_set():
                count = 0  # a stop came while Redis was away: send the acks, lease nothing new
                if not acks:
                    return [], 0
            try:
                # Jobs leased from earlier queues in this round run before these (only the
                # slot's own thread leases, so only it reads its buffer here).
                ahead = sum(lease.limit_ms + LIMIT_GRACE_MS for lease in self.buffer) if count else 0
                sent_at = time.monotonic()
                results, leased, buried = queue._fetch(w.name, [(a[0].id, a[0].token) for a in acks], count,
                                                       ahead_ms=ahead)
                self.backoff.reset()
                break
            except REDIS_DOWN as exc:
                if not w.wait_redis(self.backoff, exc):
                    return None
        def report() -> None:
            for (lease, result, duration), outcome in zip(acks, results):
                if outcome == 1:
                    w.on_succeeded(lease, result, duration)
                elif outcome == 0:
                    w.on_lease_lost(lease, "ack")
                else:
                    # Gone already: an earlier try of this ack went through but its reply
                    # was lost, or another delivery acked it, or an operator deleted it.
                    # Which one cannot be told apart, so no job_succeeded is sent.
                    job_logger.info("job %s was already acknowledged or deleted", lease.id)

        for lease, _, _ in acks:
            w.forget(lease)
        if acks:
            if report_later:
                w.defer(report)  # the acker must not wait for signal receivers
            else:
                report()
        for job_id, reason in buried:
            w.on_buried_at_pickup(queue, job_id, reason)
        out = []
        budget = ahead / 1000 if count else 0.0  # as fetch.lua sums it, from before the call
        for job_id, token, envelope, attempt, vt_ms, limit_ms in leased:
            budget += (int(limit_ms) + LIMIT_GRACE_MS) / 1000
            lease = Lease(queue=queue, id=job_id.decode(), token=token.decode(), envelope=envelope,
                          attempt=int(attempt), vt_ms=int(vt_ms), limit_ms=int(limit_ms), slot=self,
                          hard_at=sent_at + budget)
            w.hold(lease)
            out.append(lease)
        return out, len(buried)

    def _wait_for_work(self) -> None:
        w = self.worker
        self.db_checked = False  # connections age while we wait
        try:
            popped = w.client.blpop([q.keys.wake for q in w.queues], timeout=w.block_timeout)
            self.backoff.reset()
        except REDIS_DOWN as exc:
            w.wait_redis(self.backoff, exc)
            return
        if popped and w.stopping.is_set():
            # The token was meant for a worker that takes jobs: pass it on.
            try:
                w.client.lpush(popped[0], b"1")
                w.client.ltrim(popped[0], 0, 0)
            except REDIS_DOWN:
                pass

    def _add_ack(self, lease: Lease, payload: Any, duration: float) -> None:
        with self._acks_lock:
            self.acks[lease.queue.name].append((lease, payload, duration))
            first = self.ack_since is None
            if first:
                self.ack_since = time.monotonic()
        if first:
            self.worker.wake_acker()  # it sends these if the next job runs long

    def _take_acks(self, name: str) -> list[tuple[Lease, Any, float]]:
        """Remove and return the acks waiting for queue ``name``: the caller sends them."""
        with self._acks_lock:
            acks = self.acks.pop(name, [])
            if not any(self.acks.values()):
                self.ack_since = None
            return acks

    def _return_acks(self, name: str, acks: list[tuple[Lease, Any, float]]) -> None:
        """Put back acks that could not be sent (their queue's script was refused)."""
        if acks:
            with self._acks_lock:
                self.acks[name][:0] = acks
                if self.ack_since is None:
                    self.ack_since = time.monotonic()

    def acks_overdue(self, now: float) -> bool:
        """Finished jobs have waited longer than ``ack_delay`` for their ack."""
        since = self.ack_since
        return since is not None and now - since > self.worker.ack_delay

    def _flush_acks_if_due(self) -> None:
        """Send waiting acks now unless a fetch is about to carry them anyway."""
        if self.buffer and self.acks_overdue(time.monotonic()):
            self._flush_acks()

    def _flush_acks(self, report_later: bool = False) -> None:
        """Send every waiting ack (called by this slot, or by the acker while it is busy)."""
        with self._acks_lock:
            names = list(self.acks)
        for name in names:
            acks = self._take_acks(name)
            if not acks:
                continue
            try:
                self._call_fetch(acks[0][0].queue, acks, 0, report_later=report_later)
            except redis.ResponseError:
                self._return_acks(name, acks)
                raise

    def _hand_back(self) -> None:
        """At exit: flush acks, return unstarted jobs uncharged."""
        w = self.worker
        if any(self.acks.values()) and not w.force.is_set():
            self._flush_acks()
        unstarted = [lease for lease in self.buffer if not lease.lost]
        self.buffer.clear()
        if unstarted and not w.force.is_set():
            w.release(unstarted)

    # Running one job ----------------------------------------------------------------

    def _run(self, lease: Lease) -> None:
        w = self.worker
        self.current = lease
        try:
            if not w.claim(lease):
                w.job_not_started()
                return  # handed back by the heartbeat while it waited in the buffer
            started = time.monotonic()
            lease.limit_at = started + lease.limit_ms / 1000  # the time limit counts from the start
            try:
                job = jobmod.decode(lease.envelope, lease.id, lease.queue.name)
            except InvalidEnvelope as exc:
                w.bury(lease, f"invalid envelope: {exc}", None)
                return
            job.attempts = lease.attempt
            job.state = "inflight"
            try:
                task = get_task(job.task)
            except TaskNotFound as exc:
                w.fail(lease, job, exc, unknown_task=True)
                return
            signals.send(signals.job_started, sender=Worker, queue=job.queue, job=job, worker=w.name)
            if not self.db_checked:
                close_old_connections()
            self.db_checked = False
            if lease.timed_out or lease.lost:
                return  # settled while the receivers ran: the task must not run unprotected
            try:
                result = task.func(*job.args, **job.kwargs)
            except BaseException as exc:  # noqa: BLE001 - a task's failure of any kind is recorded
                w.exit_if_forked()
                close_old_connections()
                self.db_checked = True
                if self.abandoned or lease.timed_out:
                    return
                w.fail(lease, job, exc)
                return
            duration = time.monotonic() - started
            w.exit_if_forked()
            close_old_connections()
            self.db_checked = True
            with w._lock:  # the heartbeat's time-out check takes the same lock
                late = self.abandoned or lease.timed_out
                if not late:
                    lease.settling = True
            if late:
                logger.warning("job %s finished after its time limit; its result is discarded", lease.id)
                return
            lease.limit_at = float("inf")  # finished: only its ack is left, no time limit applies
            self._add_ack(lease, (job, result), duration)
        finally:
            self.current = None
            w.job_done(lease)


class Worker:
    """Consumes queues until stopped. Used by ``manage.py runworker``.

    ``queues``: names in priority order (all configured queues by default).
    ``prefetch``: jobs leased per slot per round trip (each with its own lease
    and attempt charge; unstarted ones are handed back uncharged at a clean
    stop). ``burst``: exit when the queues are empty. ``max_jobs``: exit after
    that many jobs. ``shutdown_timeout``: seconds running jobs get to finish
    after the first stop signal.
    """

    def __init__(
        self,
        queues: Sequence[str] | None = None,
        concurrency: int = 1,
        prefetch: int = 1,
        burst: bool = False,
        max_jobs: int | None = None,
        shutdown_timeout: float = 30.0,
        name: str | None = None,
        ack_delay: float = 0.2,
        extend_leases: bool = True,
    ) -> None:
        settings = get_settings()
        names = list(queues) if queues else list(settings.queues)
        self.queues = [get_queue(n) for n in names]
        if concurrency < 1 or prefetch < 1:
            raise ValueError("concurrency and prefetch must be at least 1")
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.burst = burst
        self.max_jobs = max_jobs
        self.shutdown_timeout = shutdown_timeout
        self.name = (name or default_worker_name()).replace("|", "_")
        self.ack_delay = ack_delay
        # Off only to test what happens without a heartbeat (redelivery per timeout).
        self.extend_leases = extend_leases
        self.client = get_client()
        self.block_timeout = self._safe_block_timeout(settings.block_timeout)
        self.stopping = threading.Event()
        self.force = threading.Event()
        self._heartbeat_wake = threading.Event()
        self._acker_wake = threading.Event()
        # Work the heartbeat and the acker hand to the reporter thread: anything that sends
        # signals (user receivers may be slow), so those two never wait for it.
        self._chores: queue_module.SimpleQueue[Callable[[], None] | None] = queue_module.SimpleQueue()
        self.heartbeat_interval = max(0.05, min(q.config.visibility_timeout for q in self.queues) / 4)
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], Lease] = {}
        self._started_jobs = 0
        self._running = 0
        self.processed = 0
        self.failed = 0
        self.errors = 0
        self.pid = os.getpid()
        self._slots: list[Slot] = []
        self._slot_numbers = itertools.count(1)
        self._last_promote = 0.0

    def _safe_block_timeout(self, wanted: float) -> float:
        """A blocking read must end before the socket times out, or idling looks like an outage."""
        sock = socket_timeout_of(self.client)
        if sock is not None and wanted > sock - 1:
            corrected = max(0.1, min(sock / 2, sock - 1))
            logger.warning(
                "BLOCK_TIMEOUT %.1fs is not shorter than the Redis socket timeout %.1fs; using %.1fs "
                "instead. Set RELIABLE_QUEUE['BLOCK_TIMEOUT'] below SOCKET_TIMEOUT to silence this.",
                wanted, sock, corrected,
            )
            return corrected
        return wanted

    # Lifecycle ---------------------------------------------------------------------

    def run(self, install_signals: bool = True) -> None:
        """Run until stopped (signal, ``--burst`` with empty queues, or ``--max-jobs``)."""
        if install_signals and threading.current_thread() is threading.main_thread():
            self._install_signal_handlers()
        names = [q.name for q in self.queues]
        logger.info("worker %s started: queues=%s concurrency=%d prefetch=%d", self.name, ",".join(names),
                    self.concurrency, self.prefetch)
        signals.send(signals.worker_started, sender=Worker, worker=self.name, queues=names, queue=None, job=None)
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="reliable-queue-heartbeat", daemon=True)
        heartbeat.start()
        acker = threading.Thread(target=self._acker_loop, name="reliable-queue-acker", daemon=True)
        acker.start()
        reporter = threading.Thread(target=self._reporter_loop, name="reliable-queue-reporter", daemon=True)
        reporter.start()
        for _ in range(self.concurrency):
            self._start_slot()
        try:
            while not self.stopping.is_set():
                self._replace_abandoned_slots()
                if not any(s.is_alive() for s in self._slots):
                    break
                self.stopping.wait(0.2)
        finally:
            self.stopping.set()
            signals.send(signals.worker_stopping, sender=Worker, worker=self.name, queues=names, queue=None,
                         job=None)
            self._shutdown()
            self._heartbeat_stop = True
            self._heartbeat_wake.set()
            self._acker_wake.set()
            self._chores.put(None)  # the reporter stops after what is queued
            if not self.force.is_set():
                acker.join(self.block_timeout)  # it may be sending a busy slot's acks
                reporter.join(self.shutdown_timeout)  # outcomes and signals still to report
            self._deregister()
        logger.info("worker %s stopped: succeeded=%d failed=%d", self.name, self.processed, self.failed)

    def _deregister(self) -> None:
        """A clean stop takes this worker off the queues' lists of live workers."""
        if self.force.is_set():
            return
        try:
            for queue in self.queues:
                self.client.zrem(queue.keys.workers, self.name)
        except REDIS_DOWN:
            pass  # it ages out of the list instead

    def stop(self, force: bool = False) -> None:
        """Ask the worker to stop (as the first signal would); ``force`` as the second."""
        if force:
            self.force.set()
        self.stopping.set()

    def _install_signal_handlers(self) -> None:
        received = itertools.count(1)

        def handle(signum: int, frame: Any) -> None:
            # Count and set the flags before anything else: a second signal can
            # interrupt this handler (even inside its logging call).
            n = next(received)
            self.stopping.set()
            if n >= 2:
                self.force.set()
                logger.warning("second signal: exiting now; the janitor will recover running jobs")
            else:
                logger.info("signal %s: finishing running jobs (up to %.0fs), taking no new ones",
                            signal.Signals(signum).name, self.shutdown_timeout)

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def _start_slot(self) -> None:
        slot = Slot(self, next(self._slot_numbers))
        self._slots.append(slot)
        slot.start()

    def _replace_abandoned_slots(self) -> None:
        for slot in list(self._slots):
            if slot.abandoned:
                self._slots.remove(slot)
                logger.warning("slot %s is stuck in a job past its time limit; starting a new slot", slot.name)
                self._start_slot()

    def _shutdown(self) -> None:
        deadline = time.monotonic() + self.shutdown_timeout
        for slot in self._slots:
            # An abandoned slot is stuck in a job that was already failed at its time
            # limit: there is nothing to wait for.
            while slot.is_alive() and not slot.abandoned and not self.force.is_set() and time.monotonic() < deadline:
                slot.join(0.1)
        if self.force.is_set():
            return
        # Jobs that finished while their slot went on to a job still running now: send
        # their acks (a finished job is never handed back to run again).
        for slot in self._slots:
            try:
                slot._flush_acks()
            except redis.ResponseError as exc:
                logger.error("could not send the acks of slot %s at shutdown: %s", slot.name, exc)
        # Whatever else is still held goes back now: charged if it started, refunded if not.
        # (A settling lease is being acked, failed or handed back by its own call.)
        with self._lock:
            left = [lease for lease in self._held.values()
                    if not lease.lost and not lease.timed_out and not lease.settling]
        if left:
            logger.warning("shutdown timeout: handing back %d job(s) still held", len(left))
            for slot in self._slots:
                slot.abandoned = True
            self.release(left)

    # Bookkeeping shared by slots -----------------------------------------------------

    def fetch_size(self) -> int:
        if self.max_jobs is None:
            return self.prefetch
        with self._lock:
            return max(0, min(self.prefetch, self.max_jobs - self._started_jobs - self._buffered()))

    def _buffered(self) -> int:
        return sum(1 for lease in self._held.values() if not lease.started)

    def take_job_slot(self) -> bool:
        with self._lock:
            if self.max_jobs is not None and self._started_jobs >= self.max_jobs:
                return False
            self._started_jobs += 1
            self._running += 1
            return True

    def job_not_started(self) -> None:
        """A job counted by take_job_slot that was handed back instead (no --max-jobs charge)."""
        with self._lock:
            self._started_jobs -= 1

    def job_done(self, lease: Lease) -> None:
        """A started job is over for this worker (finished, or given up at its time limit
        while its thread may still be stuck in it): counted once."""
        with self._lock:
            if lease.done_counted:
                return
            lease.done_counted = True
            self._running -= 1
            if self.max_jobs is not None and self._started_jobs >= self.max_jobs and self._running == 0:
                self.stopping.set()

    def hold(self, lease: Lease) -> None:
        with self._lock:
            self._held[(lease.queue.name, lease.id)] = lease
        self._heartbeat_wake.set()

    def wake_acker(self) -> None:
        """A slot has acks waiting: the acker sends them if the slot stays busy."""
        self._acker_wake.set()

    def claim(self, lease: Lease) -> bool:
        """Mark a buffered lease as started; False when it was settled meanwhile (the
        heartbeat handed it back). Under the lock, so exactly one of the two wins."""
        with self._lock:
            if lease.settling or lease.lost:
                return False
            lease.started = True
            return True

    def _hand_back_unstarted(self, lease: Lease) -> None:
        """The heartbeat's hand-back of a buffered lease that can no longer be extended,
        unless its slot started it meanwhile (see :meth:`claim`)."""
        with self._lock:
            if lease.started or lease.settling:
                return
            lease.settling = True
        self.release([lease])

    def forget(self, lease: Lease) -> None:
        with self._lock:
            if self._held.get((lease.queue.name, lease.id)) is lease:
                del self._held[(lease.queue.name, lease.id)]

    def lease_still_held(self, lease: Lease) -> bool:
        """Before starting a prefetched job: is its lease still ours, for the whole run?

        Normally the heartbeat keeps it fresh and its pickup's hard limit leaves room
        for its whole time limit, and this costs nothing. If this process was paused
        (SIGSTOP, a long GC, a suspended VM) for most of the visibility timeout, or the
        jobs before it took longer than their limits allowed (slow signal receivers),
        the lease may have expired and the job gone to another worker: ask Redis, and
        set its hard limit for a run that starts now, rather than run it a second time.
        """
        now = time.monotonic()
        hard_in = lease.limit_ms + LIMIT_GRACE_MS
        # Room for its whole limit, and half the grace for its ack, if it starts now.
        room = now + (lease.limit_ms + LIMIT_GRACE_MS / 2) / 1000 <= lease.hard_at
        if not self.extend_leases or (now - lease.extended_at < lease.vt_ms / 2000 and room):
            return True
        result = self._with_retry(lambda: lease.queue._extend(self.name, [(lease.id, lease.token, lease.vt_ms, hard_in)]))
        if not result or result[0] == 0:
            self.on_lease_lost(lease, "start")
            return False
        if result[0] < 0:  # cannot happen with hard_in > 0; never run a job unprotected
            self.release([lease])
            return False
        lease.extended_at = now
        lease.hard_at = now + hard_in / 1000
        return True

    def exit_if_forked(self) -> None:
        """A task that forked and returned (or raised) in the child: the child must not
        go on as a second, unsupervised worker with this one's leases."""
        if os.getpid() != self.pid:
            os._exit(0)

    def wait_redis(self, backoff: Backoff, exc: BaseException) -> bool:
        """Sleep before retrying a Redis call; False when the worker must give up (forced stop)."""
        if self.force.is_set():
            return False
        delay = backoff.next_delay()
        logger.warning("Redis unavailable (%s); retrying in %.1fs", exc, delay)
        self.force.wait(delay)
        return not self.force.is_set()

    def _with_retry(self, call: Callable[[], Any]) -> Any:
        backoff = Backoff()
        while True:
            try:
                return call()
            except REDIS_DOWN as exc:
                if not self.wait_redis(backoff, exc):
                    return None

    def promote_due(self) -> int:
        """Move due scheduled jobs to pending (the janitor does it too; both are safe).

        At most once per ``block_timeout``; returns how many jobs became pending.
        """
        now = time.monotonic()
        if now - self._last_promote < self.block_timeout:
            return 0
        self._last_promote = now
        promoted = 0
        for queue in self.queues:
            try:
                promoted += len(queue._promote())
            except REDIS_DOWN:
                break
        return promoted

    # Outcomes --------------------------------------------------------------------------

    def on_succeeded(self, lease: Lease, payload: Any, duration: float) -> None:
        job, result = payload
        self.processed += 1
        if job_logger.isEnabledFor(logging.INFO):
            job_logger.info("done %s %s attempt=%d %.3fs", job.id, job.task, job.attempts, duration)
        signals.send(signals.job_succeeded, sender=Worker, queue=job.queue, job=job, worker=self.name,
                     result=result, duration=duration)

    def on_lease_lost(self, lease: Lease, operation: str) -> None:
        if self._mark_lost(lease):
            self._say_lost(lease, operation)

    def _mark_lost(self, lease: Lease) -> bool:
        """Note that the lease is lost; False when that was known already."""
        with self._lock:
            if lease.lost:
                return False
            lease.lost = True
        self.forget(lease)
        return True

    def _say_lost(self, lease: Lease, operation: str) -> None:
        logger.warning("lease lost on job %s (queue %s) during %s: another delivery owns it now; "
                       "this worker's outcome is discarded", lease.id, lease.queue.name, operation)
        job = self._job_of(lease)
        signals.send(signals.lease_lost, sender=Worker, queue=lease.queue.name, job=job, worker=self.name,
                     operation=operation)

    def on_buried_at_pickup(self, queue: Queue, job_id: bytes, reason: bytes) -> None:
        jid, why = job_id.decode("utf-8", "replace"), reason.decode("utf-8", "replace")
        logger.error("dead-lettered malformed job %s in queue %s: %s", jid, queue.name, why)
        if signals.job_dead_lettered.receivers:
            job = queue.get(jid) or Job(id=jid, task="", queue=queue.name)
            signals.send(signals.job_dead_lettered, sender=Worker, queue=queue.name, job=job, reason=why,
                         worker=self.name, exception=None)

    def _job_of(self, lease: Lease) -> Job:
        try:
            job = jobmod.decode(lease.envelope, lease.id, lease.queue.name)
        except InvalidEnvelope:
            job = Job(id=lease.id, task="", queue=lease.queue.name)
        job.attempts = lease.attempt
        return job

    def bury(self, lease: Lease, reason: str, exc: BaseException | None) -> None:
        lease.settling = True
        record = _error_record(lease.attempt, exc) if exc else ""
        outcome = self._with_retry(lambda: lease.queue._bury(lease.id, lease.token, reason, record))
        self.forget(lease)
        if outcome == 1:
            self.failed += 1
            logger.error("dead-lettered job %s (queue %s): %s", lease.id, lease.queue.name, reason)
            signals.send(signals.job_dead_lettered, sender=Worker, queue=lease.queue.name, job=self._job_of(lease),
                         reason=reason, worker=self.name, exception=exc)
        elif outcome == 0:
            self.on_lease_lost(lease, "dead-letter")

    def fail(self, lease: Lease, job: Job, exc: BaseException, unknown_task: bool = False,
             timed_out: bool = False) -> None:
        lease.settling = True
        config = lease.queue.config
        max_attempts = job.max_attempts or config.max_attempts
        delay = retry_delay(lease.attempt, config.retry_backoff, config.retry_backoff_max)
        if unknown_task:
            reason = f"unknown task {job.task!r}: no worker registered it (after {lease.attempt} attempt(s))"
        elif timed_out:
            reason = f"timed out: still running at its time limit (attempt {lease.attempt})"
        else:
            reason = f"failed {lease.attempt} time(s); last error {type(exc).__name__}: {describe(exc)}"[:2000]
        record = _error_record(lease.attempt, exc)
        reply = self._with_retry(lambda: lease.queue._fail(lease.id, lease.token, record, int(delay * 1000), reason))
        self.forget(lease)
        if reply is None:
            return
        outcome = reply[0].decode()
        if outcome in ("lost", "gone"):
            self.on_lease_lost(lease, "fail")
            return
        self.failed += 1
        job.attempts = lease.attempt
        signals.send(signals.job_failed, sender=Worker, queue=job.queue, job=job, worker=self.name, exception=exc)
        if outcome == "retry":
            job.state = "scheduled"
            logger.warning("failed %s %s attempt=%d/%d: %s: %s; retrying in %.1fs", job.id, job.task,
                           lease.attempt, max_attempts, type(exc).__name__, describe(exc), delay)
            signals.send(signals.job_retrying, sender=Worker, queue=job.queue, job=job, worker=self.name,
                         exception=exc, delay=delay)
        else:
            job.state = "dead"
            logger.error("dead-lettered %s %s after attempt %d: %s", job.id, job.task, lease.attempt, reason)
            signals.send(signals.job_dead_lettered, sender=Worker, queue=job.queue, job=job, worker=self.name,
                         exception=exc, reason=reason)

    def release(self, leases: Sequence[Lease]) -> None:
        """Hand leases back to the head of pending at once (no visibility timeout to wait
        out). A job that never started gets the attempt charged at its pickup back."""
        by_queue: dict[str, list[Lease]] = collections.defaultdict(list)
        for lease in leases:
            lease.settling = True
            by_queue[lease.queue.name].append(lease)
        for items in by_queue.values():
            queue = items[0].queue
            results = self._with_retry(lambda: queue._release([(x.id, x.token, not x.started) for x in items]))
            for lease in items:
                self.forget(lease)
            if results is None:
                continue
            released = [x for x, r in zip(items, results) if r == 1]
            unstarted = sum(1 for x in released if not x.started)
            logger.info("handed back %d job(s) to queue %s (%d unstarted, not charged)", len(released), queue.name,
                        unstarted)

    # Heartbeat ------------------------------------------------------------------------

    _heartbeat_stop = False
    _last_ping = 0.0

    def _heartbeat_loop(self) -> None:
        backoff = Backoff()
        while not self._heartbeat_stop and not self.force.is_set():
            try:
                self._heartbeat()
                backoff.reset()
                # A new lease (hold) wakes us early: its timeout may be the shortest.
                self._heartbeat_wake.wait(self._next_heartbeat_in())
                self._heartbeat_wake.clear()
            except REDIS_DOWN as exc:
                if not self.wait_redis(backoff, exc):
                    return
            except Exception:  # pragma: no cover - keep the heartbeat alive whatever happens
                logger.exception("heartbeat error")
                time.sleep(self.heartbeat_interval)

    def _due_at(self, lease: Lease) -> float:
        """When this lease next needs Redis: a third into its visibility timeout, or its time limit."""
        return min(lease.extended_at + lease.vt_ms / 3000, lease.limit_at)

    def _next_heartbeat_in(self) -> float:
        """Seconds to sleep: until the next lease is due (each job's own timeout), at most the ping interval."""
        now = time.monotonic()
        wake = self._last_ping + self.heartbeat_interval
        if self.extend_leases:
            with self._lock:
                for lease in self._held.values():
                    if not lease.lost and not lease.timed_out:
                        wake = min(wake, self._due_at(lease))
        return min(self.heartbeat_interval, max(0.02, wake - now))

    def _heartbeat(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [lease for lease in self._held.values()
                   if self.extend_leases and not lease.lost and not lease.timed_out and self._due_at(lease) <= now]
        # A running job at its time limit (the worker's clock, from its start) is failed
        # as timed out and its slot replaced; Redis keeps its lease only LIMIT_GRACE_MS more.
        with self._lock:  # against the slot settling the same job (see Slot._run)
            over = [lease for lease in due if lease.started and not lease.settling and now >= lease.limit_at]
            for lease in over:
                lease.timed_out = True
        for lease in over:
            self.defer(lambda lease=lease: self._time_limit_reached(lease))
        due = [lease for lease in due if not lease.timed_out]
        for slot in list(self._slots):
            lease = slot.current
            if lease is not None and lease.lost and not slot.abandoned and now >= lease.limit_at:
                # Its lease went to another worker and the job still runs past its limit:
                # nothing to fail, but the slot must not stay stuck in it.
                slot.abandoned = True
                self.defer(slot.surrender)
                self.job_done(lease)
        by_queue: dict[str, list[Lease]] = collections.defaultdict(list)
        for lease in due:
            by_queue[lease.queue.name].append(lease)
        if not by_queue:
            if now - self._last_ping >= self.heartbeat_interval:
                # Still tell the queues this worker is alive.
                for queue in self.queues:
                    queue._extend(self.name, [])
                self._last_ping = now
            return
        for items in by_queue.values():
            results = items[0].queue._extend(self.name, [(x.id, x.token, x.vt_ms, x.hard_in_ms(now))
                                                              for x in items])
            for lease, result in zip(items, results):
                if result > 0:
                    lease.extended_at = now
                elif lease.settling:
                    # Acked, failed or handed back meanwhile (that call reports the outcome),
                    # or finished at its limit with the ack on the way: nothing to extend or
                    # stop; look again only a third of a timeout later, not at once.
                    lease.extended_at = now
                elif result == 0:
                    if self._mark_lost(lease):  # a buffered one is skipped by its slot
                        self.defer(lambda lease=lease: self._say_lost(lease, "extend"))
                elif not lease.started:
                    self._hand_back_unstarted(lease)  # waited too long in a buffer
                else:
                    lease.timed_out = True  # past its hard limit in Redis
                    self.defer(lambda lease=lease: self._time_limit_reached(lease))

    # Acker and reporter ---------------------------------------------------------------

    def defer(self, chore: Callable[[], None]) -> None:
        """Have the reporter thread do ``chore``: work that sends signals (user receivers
        may be slow) for the heartbeat and the acker, which must never wait for it."""
        self._chores.put(chore)

    def _reporter_loop(self) -> None:
        """Do the deferred chores in order: failing jobs at their time limit, reporting
        lost leases and the acker's outcomes, with their signals."""
        while True:
            chore = self._chores.get()
            if chore is None:
                return
            try:
                chore()
            except Exception:
                logger.exception("error while reporting a job's outcome")

    def _acker_loop(self) -> None:
        """Send the waiting acks of slots that are busy in a job once they are ``ack_delay``
        old: the slot itself could only send them when that job ends, which may be long
        after their leases ran out. A slot that is not busy sends its own. The outcomes'
        signals go to the reporter thread, so a slow receiver never delays an ack."""
        while not self._heartbeat_stop and not self.force.is_set():
            waiting = [s for s in list(self._slots) if s.ack_since is not None]
            if not waiting:
                self._acker_wake.wait(1.0)
                self._acker_wake.clear()
                continue
            now = time.monotonic()
            due = min((s.ack_since or now) for s in waiting) + self.ack_delay
            if due > now:
                self._acker_wake.wait(due - now)
                self._acker_wake.clear()
                continue
            for slot in waiting:
                if slot.current is not None and slot.acks_overdue(now):
                    try:
                        slot._flush_acks(report_later=True)
                    except Exception:  # a refused queue: the acks went back to the slot
                        logger.exception("could not send the acks of slot %s; trying again", slot.name)
            self.force.wait(self.ack_delay)  # overdue acks of a slot that is not busy: it sends them

    def _time_limit_reached(self, lease: Lease) -> None:
        lease.timed_out = True
        job = self._job_of(lease)
        exc = TimeoutError(f"job {lease.id} still running at its time limit")
        logger.error("job %s (%s) reached its time limit; failing it and freeing its slot", lease.id, job.task)
        slot = lease.slot
        self.fail(lease, job, exc, timed_out=True)
        if lease.started and slot is not None and slot.current is lease:
            slot.surrender()
            self.job_done(lease)  # its thread may never come back: --max-jobs must not wait


def describe(exc: BaseException) -> str:
    """``str(exc)``, even for an exception whose ``__str__`` itself raises."""
    try:
        return str(exc)
    except Exception as inner:  # noqa: BLE001 - a task's own broken exception class
        return f"<{type(exc).__name__}: str() raised {type(inner).__name__}>"


def _error_record(attempt: int, exc: BaseException | None) -> str:
    if exc is None:
        return ""
    try:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:  # noqa: BLE001 - the traceback of a broken exception class
        tb = "".join(traceback.format_tb(exc.__traceback__)) + describe(exc)
    if len(tb) > MAX_TRACEBACK:
        tb = tb[:2000] + "\n...\n" + tb[-(MAX_TRACEBACK - 2010):]
    return json.dumps({
        "attempt": attempt,
        "at": round(time.time() * 1000),
        "type": type(exc).__name__,
        "message": describe(exc)[:4000],
        "traceback": tb,
    })
