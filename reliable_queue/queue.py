"""``Queue``: enqueue, browse, stats and explicit actions on one queue.

Every change of a job's state is one Lua script from ``scripts/`` (see
``scripts.py``); this module turns Python calls into script calls and script
replies into :class:`~reliable_queue.job.Job` objects. Reads are bounded: counts
come from LLEN/ZCARD and pages from range reads, never from a whole list.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import redis
from django.db import DEFAULT_DB_ALIAS, transaction

from . import job as jobmod
from . import signals
from .conf import QueueConfig, Settings, get_settings
from .connection import get_client
from .exceptions import JobNotFound
from .job import Job
from .keys import QueueKeys
from .scripts import Scripts, scripts_for
from .tasks import Call, Task, get_task

logger = logging.getLogger("reliable_queue.queue")

#: Most jobs one script call handles; callers loop for more (bounded work per call).
BATCH = 1000

#: How long past its time limit a job's lease may live in Redis. The worker stops a
#: job at its limit by its own clock, from the job's start; the lease outlives that
#: by this much so that the ack of a job that finished just in time (sent within the
#: worker's ack delay) is never beaten by the janitor.
LIMIT_GRACE_MS = 2000


def _text(value: bytes | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.decode("utf-8", "replace")


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


class Queue:
    """One configured queue. Get it with :func:`get_queue`."""

    def __init__(self, config: QueueConfig, settings: Settings, client: redis.Redis | None = None) -> None:
        self.name = config.name
        self.config = config
        self.settings = settings
        self.keys = QueueKeys.build(settings.prefix, config.name)
        self._key_list = self.keys.all()
        self._client = client
        # Defaults the scripts use for envelopes that leave a limit out, and the
        # bound above which an envelope's own limit is not used either.
        self._defaults = [
            int(config.visibility_timeout * 1000),
            int(config.time_limit * 1000),
            int(config.max_attempts),
            int(settings.max_payload_bytes),
            jobmod.MAX_LIMIT_SECONDS * 1000,
            LIMIT_GRACE_MS,
        ]

    def __repr__(self) -> str:
        return f"<Queue {self.name}>"

    @property
    def client(self) -> redis.Redis:
        return self._client if self._client is not None else get_client()

    @property
    def scripts(self) -> Scripts:
        return scripts_for(self.client)

    # ------------------------------------------------------------------ enqueue

    def _build(self, task: Task[Any, Any], args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[Job, str]:
        opts = task.options
        cfg = self.config
        job = Job(
            id=jobmod.new_job_id(),
            task=task.name,
            queue=self.name,
            args=list(args),
            kwargs=dict(kwargs),
            enqueued_at=datetime.now(timezone.utc),
            max_attempts=opts.max_attempts if opts.max_attempts not in (None, cfg.max_attempts) else None,
            visibility_timeout=(opts.visibility_timeout
                                if opts.visibility_timeout not in (None, cfg.visibility_timeout) else None),
            time_limit=opts.time_limit if opts.time_limit not in (None, cfg.time_limit) else None,
            state="pending",
        )
        return job, jobmod.encode(job, self.settings.max_payload_bytes)

    def enqueue(self, task_name: str, *args: Any, **kwargs: Any) -> Job:
        """Enqueue a run of a task by name (it must be registered in this process)."""
        return self.enqueue_task(get_task(task_name), args, kwargs)

    def enqueue_task(self, task: Task[Any, Any], args: Sequence[Any], kwargs: dict[str, Any],
                     delay: float | None = None) -> Job:
        if delay is not None and not math.isfinite(delay):
            raise ValueError(f"Cannot enqueue {task.name} with a delay of {delay!r} seconds: the delay must be a "
                             "finite number (<= 0 means now).")
        job, text = self._build(task, args, kwargs)
        delay_ms = int(delay * 1000) if delay and delay > 0 else 0
        if delay_ms:
            job.state = "scheduled"
        self._submit(task, [(job, text, delay_ms)])
        return job

    def enqueue_task_many(self, task: Task[Any, Any], calls: Sequence[Call]) -> list[Job]:
        built = [self._build(task, c.args, c.kwargs) for c in calls]
        self._submit(task, [(job, text, 0) for job, text in built])
        return [job for job, _ in built]

    def _submit(self, task: Task[Any, Any], entries: list[tuple[Job, str, int]]) -> None:
        """Write now, or when the surrounding transaction commits (``on_commit``)."""
        on_commit = task.options.on_commit
        using = task.options.using or DEFAULT_DB_ALIAS
        if on_commit is None:
            try:
                on_commit = transaction.get_connection(using).in_atomic_block
            except Exception:  # no database configured: nothing to wait for
                on_commit = False
        if on_commit:
            for job, _, _ in entries:
                job.deferred = True
            transaction.on_commit(lambda: self._write(entries), using=using)
        else:
            self._write(entries)

    def _write(self, entries: list[tuple[Job, str, int]]) -> None:
        refused: list[bytes] = []
        if len(entries) <= BATCH:
            refused = self.scripts.enqueue(self._key_list, self._enqueue_args(entries))
        else:
            pipe = self.client.pipeline(transaction=False)
            for start in range(0, len(entries), BATCH):
                self.scripts.enqueue(self._key_list, self._enqueue_args(entries[start:start + BATCH]), client=pipe)
            for reply in pipe.execute():
                refused.extend(reply)
        if refused:  # only possible if an id was reused by hand: never silently
            raise ValueError(f"Job id(s) already in use in queue {self.name!r}: {[_text(r) for r in refused]}")
        if signals.job_enqueued.receivers:
            for job, _, _ in entries:
                job.deferred = False
                signals.send(signals.job_enqueued, sender=Queue, queue=self.name, job=job)
        else:
            for job, _, _ in entries:
                job.deferred = False

    @staticmethod
    def _enqueue_args(entries: list[tuple[Job, str, int]]) -> list[Any]:
        args: list[Any] = [len(entries)]
        for job, text, delay_ms in entries:
            args += [job.id, text, delay_ms]
        return args

    # ------------------------------------------------------------------ reading

    def stats(self) -> dict[str, Any]:
        """Counts and ages, read at one instant with the server's clock.

        ``oldest_pending_age``: seconds since the job at the head of pending was
        first enqueued. ``oldest_inflight_age``: seconds since the in-flight job
        whose lease expires first was picked up (the one the janitor will look at
        first). ``expired_leases``: in-flight jobs whose lease has run out and
        that no janitor has recovered yet. ``workers``/``janitors``: name ->
        seconds since last seen. ``done_last_minute`` … ``failed_last_hour``: jobs
        acked, and attempts failed, in about the last minute and hour (10-second
        buckets on the server's clock).
        """
        r = self.scripts.stats(self._key_list, [])
        now = int(r[0])
        counters = {_text(r[8][i]): _int(r[8][i + 1]) for i in range(0, len(r[8]), 2)}

        def ages(flat: list[Any]) -> dict[str, float]:
            return {_text(flat[i]) or "": max(0.0, (now - float(flat[i + 1])) / 1000) for i in range(0, len(flat), 2)}

        return {
            "pending": int(r[1]),
            "inflight": int(r[2]),
            "scheduled": int(r[3]),
            "dead": int(r[4]),
            "expired_leases": int(r[5]),
            "oldest_pending_age": max(0.0, (now - int(r[6])) / 1000) if r[6] else None,
            "oldest_inflight_age": max(0.0, (now - int(r[7])) / 1000) if r[7] else None,
            "done": counters.get("done", 0),
            "failed": counters.get("failed", 0),
            "retried": counters.get("retried", 0),
            "dead_lettered": counters.get("dead", 0),
            "recovered": counters.get("recovered", 0),
            "workers": ages(r[9]),
            "janitors": ages(r[10]),
            "done_last_minute": int(r[11]),
            "failed_last_minute": int(r[12]),
            "done_last_hour": int(r[13]),
            "failed_last_hour": int(r[14]),
        }

    def _job(self, job_id: bytes | str, envelope: bytes | None, state: str) -> Job:
        jid = _text(job_id) or ""
        if envelope is None:
            return Job(id=jid, task="", queue=self.name, state=state, raw=None)
        try:
            job = jobmod.decode(envelope, jid, self.name)
        except Exception as exc:  # shown to operators, never run
            job = Job(id=jid, task="", queue=self.name, raw=_text(envelope))
            job.errors = [{"type": "InvalidEnvelope", "message": str(exc)}]
        job.state = state
        return job

    def _page_ids(self, state: str, offset: int, limit: int, newest_first: bool) -> list[tuple[bytes, float | None]]:
        offset, limit = max(0, int(offset)), max(0, min(int(limit), BATCH))
        if limit == 0:
            return []
        if state == "pending":
            if newest_first:
                ids = self.client.lrange(self.keys.pending, -(offset + limit), -(offset + 1))[::-1]
            else:
                ids = self.client.lrange(self.keys.pending, offset, offset + limit - 1)
            return [(i, None) for i in ids]
        key = getattr(self.keys, state)
        read = self.client.zrevrange if newest_first else self.client.zrange
        return [(m, s) for m, s in read(key, offset, offset + limit - 1, withscores=True)]

    def _page(self, state: str, offset: int, limit: int, newest_first: bool) -> list[Job]:
        entries = self._page_ids(state, offset, limit, newest_first)
        if not entries:
            return []
        ids = [i for i, _ in entries]
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(self.keys.jobs, ids)
        pipe.hmget(self.keys.attempts, ids)
        pipe.hmget(self.keys.leases if state == "inflight" else self.keys.reasons, ids)
        pipe.hmget(self.keys.errors, ids)
        envelopes, attempts, extra, errors = pipe.execute()
        jobs = []
        for n, (job_id, score) in enumerate(entries):
            job = self._job(job_id, envelopes[n], state)
            job.attempts = _int(attempts[n])
            if errors[n]:
                job.errors = jobmod.decode_errors(errors[n])
            self._annotate(job, score, extra[n])
            jobs.append(job)
        return jobs

    @staticmethod
    def _annotate(job: Job, score: float | None, extra: bytes | None) -> None:
        if job.state == "inflight":
            job.lease_deadline = jobmod.from_ms(score)
            if extra:
                parts = _text(extra).split("|")
                if len(parts) == 5:
                    job.worker = parts[1]
                    job.started_at = jobmod.from_ms(_int(parts[2]) or None)
        elif job.state == "scheduled":
            job.scheduled_for = jobmod.from_ms(score)
        elif job.state == "dead":
            job.dead_at = jobmod.from_ms(score)
            job.dead_reason = _text(extra)

    def pending(self, offset: int = 0, limit: int = 50, newest_first: bool = False) -> list[Job]:
        """A page of pending jobs, oldest (next to run) first by default."""
        return self._page("pending", offset, limit, newest_first)

    def inflight(self, offset: int = 0, limit: int = 50, newest_first: bool = False) -> list[Job]:
        """A page of in-flight jobs, ordered by lease deadline (soonest first by default)."""
        return self._page("inflight", offset, limit, newest_first)

    def scheduled(self, offset: int = 0, limit: int = 50, newest_first: bool = False) -> list[Job]:
        """A page of scheduled jobs (delayed or waiting for a retry), soonest due first."""
        return self._page("scheduled", offset, limit, newest_first)

    def dead(self, offset: int = 0, limit: int = 50, newest_first: bool = True) -> list[Job]:
        """A page of dead-lettered jobs, most recent first by default."""
        return self._page("dead", offset, limit, newest_first)

    def get(self, job_id: str) -> Job | None:
        """The job with this id in any state, or None when it is not stored (done or deleted)."""
        k = self.keys
        pipe = self.client.pipeline(transaction=True)
        pipe.hget(k.jobs, job_id)
        pipe.hget(k.attempts, job_id)
        pipe.hget(k.errors, job_id)
        pipe.hget(k.reasons, job_id)
        pipe.hget(k.leases, job_id)
        pipe.zscore(k.inflight, job_id)
        pipe.zscore(k.scheduled, job_id)
        pipe.zscore(k.dead, job_id)
        envelope, attempts, errors, reason, lease, inflight, scheduled, dead = pipe.execute()
        if inflight is not None:
            state, score, extra = "inflight", inflight, lease
        elif scheduled is not None:
            state, score, extra = "scheduled", scheduled, None
        elif dead is not None:
            state, score, extra = "dead", dead, reason
        elif envelope is not None:
            state, score, extra = "pending", None, None
        else:
            return None
        job = self._job(job_id, envelope, state)
        job.attempts = _int(attempts)
        if errors:
            job.errors = jobmod.decode_errors(errors)
        self._annotate(job, score, extra)
        return job

    # ------------------------------------------------------------------ actions

    def requeue(self, job_id: str, reset_attempts: bool = True, source: str = "admin", user: Any = None) -> str:
        """Put one job back to pending; returns the state it came from.

        A dead job gets a fresh attempt budget (``reset_attempts``) and keeps its id
        and error history; a scheduled job runs now; an in-flight job is taken from
        its worker (whose later ack is refused as lease lost), so use that only
        for a job you know is stuck. A job already pending is left where it is.
        Raises :class:`JobNotFound` when no such job is stored.
        """
        return self.requeue_many([job_id], reset_attempts, source, user)[0]

    def requeue_many(self, job_ids: Sequence[str], reset_attempts: bool = True, source: str = "admin",
                     user: Any = None, only_from: str | None = None) -> list[str]:
        """Requeue several jobs; per id the state it came from (see :meth:`requeue`).

        ``only_from`` ("dead", "inflight" or "scheduled") leaves alone, as
        "skipped", every job found in another state: for callers that chose the
        jobs from a list that may be out of date by now.
        """
        if only_from not in (None, "dead", "inflight", "scheduled"):
            raise ValueError(f"only_from must be 'dead', 'inflight', 'scheduled' or None, not {only_from!r}")
        job_ids = _id_list("requeue_many", job_ids)
        results: list[str] = []
        for start in range(0, len(job_ids), BATCH):
            chunk = list(job_ids[start:start + BATCH])
            reply = self.scripts.requeue(self._key_list, ["1" if reset_attempts else "0", only_from or "", *chunk])
            results.extend(_text(r) or "" for r in reply)
        if len(job_ids) == 1 and results[0] == "missing":
            raise JobNotFound(f"No job {job_ids[0]!r} is stored in queue {self.name!r} (done, deleted or never enqueued).")
        self._requeued_signals(job_ids, results, source, user)
        return results

    def _requeued_signals(self, job_ids: Sequence[str], results: list[str], source: str, user: Any) -> None:
        moved = [(jid, r) for jid, r in zip(job_ids, results) if r in ("dead", "inflight", "scheduled")]
        logger.info("requeued %d job(s) in queue %s (source=%s)", len(moved), self.name, source)
        if not signals.job_requeued.receivers:
            return
        for jid, r in moved:
            job = self.get(jid) or Job(id=jid, task="", queue=self.name)
            signals.send(signals.job_requeued, sender=Queue, queue=self.name, job=job,
                         source=source, user=user, previous_state=r)

    def requeue_dead(self, all: bool = True, ids: Sequence[str] | None = None, reset_attempts: bool = True,
                     source: str = "admin", user: Any = None) -> int:
        """Requeue dead-lettered jobs: the given ``ids``, or every one (``all=True``).

        Works in batches of at most 1,000 jobs per script call; jobs dead-lettered
        while it runs may or may not be included. Returns how many were requeued.
        """
        if ids is not None:
            ids = _id_list("requeue_dead", ids)
            results = self.requeue_many(list(ids), reset_attempts, source, user, only_from="dead") if ids else []
            return sum(1 for r in results if r == "dead")
        if not all:
            return 0
        total = 0
        budget = self.client.zcard(self.keys.dead)
        while budget > 0:
            chunk = [_text(m) or "" for m in self.client.zrange(self.keys.dead, 0, min(BATCH, budget) - 1)]
            if not chunk:
                break
            results = self.requeue_many(chunk, reset_attempts, source, user, only_from="dead")
            total += sum(1 for r in results if r == "dead")
            budget -= len(chunk)
        return total

    def move_dead(self, target: str, ids: Sequence[str] | None = None, reset_attempts: bool = True,
                  source: str = "admin", user: Any = None) -> int:
        """Requeue dead-lettered jobs into the pending list of queue ``target``.

        ``ids``: those jobs (ones no longer dead are left alone), or None for every
        dead job. Each job keeps its id and error history; its envelope's ``queue``
        is rewritten. Returns how many were moved. One script per batch moves the
        jobs atomically between the two queues' keys, which needs both queues on
        one Redis: on Redis Cluster their hash tags differ and Redis refuses the
        call (CROSSSLOT). ``job_requeued`` is sent with the target queue's name.
        """
        if ids is not None:
            ids = _id_list("move_dead", ids)
        dest = get_queue(target)
        if dest.name == self.name:
            return self.requeue_dead(all=ids is None, ids=ids, reset_attempts=reset_attempts, source=source, user=user)
        total, moved_ids = 0, []
        if ids is None:
            budget = self.client.zcard(self.keys.dead)
            batches: Any = None
        else:
            budget, batches = 0, [list(ids)[i:i + BATCH] for i in range(0, len(ids), BATCH)]
        while True:
            if batches is None:
                if budget <= 0:
                    break
                chunk = [_text(m) or "" for m in self.client.zrange(self.keys.dead, 0, min(BATCH, budget) - 1)]
                budget -= len(chunk)
            else:
                if not batches:
                    break
                chunk = batches.pop(0)
            if not chunk:
                break
            envelopes = self.client.hmget(self.keys.jobs, chunk)
            args: list[Any] = ["1" if reset_attempts else "0"]
            for jid, envelope in zip(chunk, envelopes):
                args += [jid, _retarget(envelope, dest.name)]
            reply = self.scripts.move(self._key_list + dest._key_list, args)
            for jid, result in zip(chunk, reply):
                if _text(result) == "moved":
                    total += 1
                    moved_ids.append(jid)
        logger.info("moved %d dead job(s) from queue %s to %s (source=%s)", total, self.name, dest.name, source)
        if signals.job_requeued.receivers:
            for jid in moved_ids:
                job = dest.get(jid) or Job(id=jid, task="", queue=dest.name)
                signals.send(signals.job_requeued, sender=Queue, queue=dest.name, job=job, source=source,
                             user=user, previous_state="dead", from_queue=self.name)
        return total

    def delete(self, job_id: str) -> bool:
        """Delete one job from whatever state it is in; False when there was none."""
        reply = self.scripts.delete(self._key_list, [job_id])
        deleted = _text(reply[0]) != "missing"
        if deleted:
            logger.info("deleted job %s from queue %s (%s)", job_id, self.name, _text(reply[0]))
        return deleted

    def purge(self, state: str) -> int:
        """Delete every job in ``state`` ("pending", "scheduled" or "dead"); returns the count.

        In-flight jobs cannot be purged in bulk: requeue or delete them one by one.
        """
        if state not in ("pending", "scheduled", "dead"):
            raise ValueError(f"purge() takes 'pending', 'scheduled' or 'dead', not {state!r}; in-flight jobs "
                             "are running and must be requeued or deleted one by one.")
        total = 0
        while True:
            removed, deleted = self.scripts.purge(self._key_list, [state, BATCH])
            total += int(deleted)
            if int(removed) < BATCH:
                break
        logger.warning("purged %d %s job(s) from queue %s", total, state, self.name)
        return total

    # ------------------------------------------------- engine (worker, janitor)

    def _fetch(self, worker: str, acks: Sequence[tuple[str, str]], count: int, client: Any = None,
               ahead_ms: int = 0) -> tuple[list[int], list[list[Any]], list[list[Any]]]:
        """Ack ``acks`` and lease up to ``count`` jobs (see fetch.lua); ``ahead_ms``: the time
        limits of jobs the caller runs before these, which their hard limits allow for."""
        args: list[Any] = [worker, len(acks)]
        for job_id, token in acks:
            args += [job_id, token]
        args += [count, *self._defaults, ahead_ms]
        reply = self.scripts.fetch(self._key_list, args, client=client)
        return [int(a) for a in reply[0]], reply[1], reply[2]

    def _fail(self, job_id: str, token: str, record: str, delay_ms: int, reason: str) -> list[Any]:
        return self.scripts.fail(self._key_list, [job_id, token, record, delay_ms, reason])

    def _bury(self, job_id: str, token: str, reason: str, record: str = "") -> int:
        return int(self.scripts.bury(self._key_list, [job_id, token, reason, record]))

    def _release(self, items: Sequence[tuple[str, str, bool]]) -> list[int]:
        args: list[Any] = [len(items)]
        for job_id, token, refund in items:
            args += [job_id, token, "1" if refund else "0"]
        return [int(r) for r in self.scripts.release(self._key_list, args)]

    def _extend(self, worker: str, items: Sequence[tuple[str, str, int, int]]) -> list[int]:
        """items: (id, token, visibility_ms, hard_in_ms): the hard limit from now of a started
        job (the rest of its time limit plus LIMIT_GRACE_MS), -1 for one not started yet."""
        args: list[Any] = [worker, len(items)]
        for job_id, token, vt_ms, hard_in_ms in items:
            args += [job_id, token, vt_ms, hard_in_ms]
        return [int(r) for r in self.scripts.extend(self._key_list, args)]

    def _recover(self, name: str, limit: int = BATCH) -> list[list[Any]]:
        return self.scripts.recover(self._key_list, [name, limit, self.config.max_attempts])

    def _promote(self, limit: int = BATCH) -> list[bytes]:
        return self.scripts.promote(self._key_list, [limit])

    def _expire_dead(self, limit: int = BATCH) -> int:
        return int(self.scripts.expire_dead(self._key_list, [int(self.config.dead_retention * 1000), limit]))


def _check_id(job_id: Any) -> None:
    if not isinstance(job_id, str):
        raise TypeError(f"A job id must be a str (as in job.id), got {type(job_id).__name__} {job_id!r:.80}.")


def _id_list(caller: str, job_ids: Any) -> list[str]:
    """The ids as a list; a str is refused, as its characters would be taken for ids."""
    if isinstance(job_ids, (str, bytes, bytearray)):
        raise TypeError(f"{caller}() takes a list of ids, not one {type(job_ids).__name__}: "
                        f"write [{job_ids!r:.80}].")
    job_ids = list(job_ids)
    for job_id in job_ids:
        _check_id(job_id)
    return job_ids


def _retarget(envelope: bytes | None, queue: str) -> str:
    """The envelope for another queue: envelopes name no queue (where they are stored
    says it), so only an older one that carries a ``queue`` field is rewritten."""
    text = _text(envelope) or ""
    if '"queue"' not in text:
        return text
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return text
    if not isinstance(data, dict) or "queue" not in data:
        return text
    data["queue"] = queue
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


_lock = threading.Lock()
_queues: dict[str, Queue] = {}
_queues_settings: Settings | None = None


def get_queue(name: str = "default") -> Queue:
    """The configured queue ``name``; raises :class:`~reliable_queue.exceptions.QueueNotFound`."""
    global _queues_settings
    settings = get_settings()
    queue = _queues.get(name)
    if queue is not None and _queues_settings is settings:
        return queue
    with _lock:
        if _queues_settings is not settings:
            _queues.clear()
            _queues_settings = settings
        queue = _queues.get(name)
        if queue is None:
            queue = _queues[name] = Queue(settings.queue(name), settings)
        return queue


def all_queues() -> list[Queue]:
    """Every configured queue, in settings order."""
    return [get_queue(name) for name in get_settings().queues]


def server_time() -> float:
    """The Redis server's clock, in seconds (for display; deadlines use it inside Lua)."""
    seconds, micros = get_client().time()
    return seconds + micros / 1e6


__all__ = ["Queue", "get_queue", "all_queues", "server_time"]
