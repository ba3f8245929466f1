"""Model-based test: random sequences of queue operations against a plain Python model.

A hypothesis ``RuleBasedStateMachine`` drives the real scripts (enqueue, pickup,
ack, fail with or without retry, extend, dead-letter, hand back, expire a lease
by moving its deadline into the past, janitor pass, make a scheduled job due,
requeue one job or every dead job, delete) on a queue of its own, and keeps a
model of where each job must be: pending, in flight (with its live lease token),
scheduled, dead, or gone. Stale lease tokens are kept too, and used: an ack,
fail or extend with a voided token must be refused and change nothing.

After every step the invariants are checked against Redis: each job is in exactly
one state, the state sets, the stored envelopes, leases and attempt counts match
the model, the pending list has no duplicate, a gone job leaves no trace, and
``stats()`` reports the same counts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from unittest import mock

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from reliable_queue import job as jobmod
from reliable_queue.conf import QueueConfig, get_settings
from reliable_queue.exceptions import JobNotFound
from reliable_queue.queue import Queue
from reliable_queue.tasks import Call
from tests.testapp import tasks

MAX_ATTEMPTS = 2
HOUR_MS = 3_600_000


@dataclass
class ModelJob:
    state: str  # pending | inflight | scheduled | dead | gone
    attempts: int = 0
    token: str | None = None  # the live lease while in flight
    expired: bool = False  # in flight with its deadline in the past
    due: bool = False  # scheduled with its due time in the past


def _text(values) -> list[str]:
    return [v.decode() for v in values]


class QueueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        base = get_settings()
        config = QueueConfig(name="model", visibility_timeout=3600, max_attempts=MAX_ATTEMPTS, time_limit=7200,
                             retry_backoff=1, retry_backoff_max=1, dead_retention=14 * 86400)
        self.q = Queue(config, replace(base, prefix=f"{base.prefix}-m{uuid.uuid4().hex[:8]}"))
        self.client = self.q.client
        self.jobs: dict[str, ModelJob] = {}
        self.stale: list[tuple[str, str]] = []  # (id, token) of leases voided since
        # Deterministic ids and past times, so a replayed example takes the same path.
        self.made = 0
        self._ids = mock.patch.object(jobmod, "new_job_id", self.new_id)
        self._ids.start()
        self.ticks = 0
        self.epoch = self.server_ms() - 10**9

    def teardown(self) -> None:
        self._ids.stop()
        self.client.delete(*self.q.keys.all())

    def new_id(self) -> str:
        self.made += 1
        return f"job-{self.made:05d}"

    def past(self) -> int:
        """A time in the past, later than every earlier one (a logical clock)."""
        self.ticks += 1
        return self.epoch + self.ticks

    # -- helpers -----------------------------------------------------------

    def ids(self, state: str) -> list[str]:
        return sorted(i for i, j in self.jobs.items() if j.state == state)

    def pick(self, state: str, n: int) -> str:
        ids = self.ids(state)
        return ids[n % len(ids)]

    def void(self, job_id: str) -> None:
        job = self.jobs[job_id]
        if job.token is not None:
            self.stale.append((job_id, job.token))
        job.token, job.expired = None, False

    def server_ms(self) -> int:
        seconds, micros = self.client.time()
        return seconds * 1000 + micros // 1000

    # -- rules -------------------------------------------------------------

    @rule(n=st.integers(1, 3), delayed=st.booleans())
    def enqueue(self, n: int, delayed: bool) -> None:
        if delayed:
            job = self.q.enqueue_task(tasks.noop, (), {}, delay=3600)
            self.jobs[job.id] = ModelJob("scheduled")
        else:
            for job in self.q.enqueue_task_many(tasks.noop, [Call()] * n):
                self.jobs[job.id] = ModelJob("pending")

    @rule(k=st.integers(1, 4))
    def pickup(self, k: int) -> None:
        pending = set(self.ids("pending"))
        _, leased, buried = self.q._fetch("model-worker", [], k)
        assert len(leased) + len(buried) == min(k, len(pending))
        # A job whose budget is already spent (handed back charged after its last
        # attempt) is dead-lettered at pickup instead of being run once more.
        for job_id, reason in buried:
            job_id = job_id.decode()
            assert job_id in pending and reason.decode().startswith("attempts exhausted")
            assert self.jobs[job_id].attempts >= MAX_ATTEMPTS
            pending.discard(job_id)
            self.jobs[job_id].state = "dead"
        for job_id, token, _envelope, attempt, _visibility_ms, _limit_ms in leased:
            job_id = job_id.decode()
            assert job_id in pending
            pending.discard(job_id)
            job = self.jobs[job_id]
            job.attempts += 1
            assert int(attempt) == job.attempts
            job.state, job.token, job.expired = "inflight", token.decode(), False

    @precondition(lambda self: self.ids("inflight"))
    @rule(n=st.integers(0, 99))
    def ack(self, n: int) -> None:
        job_id = self.pick("inflight", n)
        results, _, _ = self.q._fetch("model-worker", [(job_id, self.jobs[job_id].token)], 0)
        assert results == [1]
        self.jobs[job_id] = ModelJob("gone")

    @precondition(lambda self: self.stale)
    @rule(n=st.integers(0, 99), op=st.sampled_from(["ack", "fail", "extend", "bury", "release"]))
    def use_a_voided_lease(self, n: int, op: str) -> None:
        job_id, token = self.stale[n % len(self.stale)]
        exists = self.jobs[job_id].state != "gone"
        if op == "ack":
            results, _, _ = self.q._fetch("old-worker", [(job_id, token)], 0)
            assert results == [0 if exists else 2]
        elif op == "fail":
            reply = self.q._fail(job_id, token, '{"type":"Late"}', 0, "late failure")
            assert reply[0].decode() == ("lost" if exists else "gone")
        elif op == "extend":
            assert self.q._extend("old-worker", [(job_id, token, 1000, -1)]) == [0]
        elif op == "bury":
            assert self.q._bury(job_id, token, "late bury") == (0 if exists else 2)
        else:
            assert self.q._release([(job_id, token, True)]) == [0 if exists else 2]

    @precondition(lambda self: self.ids("inflight"))
    @rule(n=st.integers(0, 99), retry=st.booleans())
    def fail(self, n: int, retry: bool) -> None:
        job_id = self.pick("inflight", n)
        job = self.jobs[job_id]
        reply = self.q._fail(job_id, job.token, '{"type":"Boom"}', HOUR_MS if retry else -1, "failed for good")
        self.void(job_id)
        if retry and job.attempts < MAX_ATTEMPTS:
            assert reply[0] == b"retry"
            job.state, job.due = "scheduled", False
        else:
            assert reply[0] == b"dead"
            job.state = "dead"

    @precondition(lambda self: self.ids("inflight"))
    @rule(n=st.integers(0, 99))
    def extend(self, n: int) -> None:
        job_id = self.pick("inflight", n)
        job = self.jobs[job_id]
        (deadline,) = self.q._extend("model-worker", [(job_id, job.token, HOUR_MS, -1)])
        assert deadline > self.server_ms()
        job.expired = False

    @precondition(lambda self: self.ids("inflight"))
    @rule(n=st.integers(0, 99))
    def bury(self, n: int) -> None:
        job_id = self.pick("inflight", n)
        assert self.q._bury(job_id, self.jobs[job_id].token, "invalid envelope: test") == 1
        self.void(job_id)
        self.jobs[job_id].state = "dead"

    @precondition(lambda self: self.ids("inflight"))
    @rule(n=st.integers(0, 99), refund=st.booleans())
    def release(self, n: int, refund: bool) -> None:
        job_id = self.pick("inflight", n)
        job = self.jobs[job_id]
        assert self.q._release([(job_id, job.token, refund)]) == [1]
        self.void(job_id)
        job.state = "pending"
        if refund:
            job.attempts = max(0, job.attempts - 1)

    @precondition(lambda self: self.ids("inflight"))
    @rule(n=st.integers(0, 99))
    def expire(self, n: int) -> None:
        """Advance the clock for one lease: its deadline moves into the past."""
        job_id = self.pick("inflight", n)
        self.client.zadd(self.q.keys.inflight, {job_id: self.past()}, xx=True)
        self.jobs[job_id].expired = True

    @precondition(lambda self: self.ids("inflight"))
    @rule()
    def worker_crash(self) -> None:
        """Every lease held runs out at once (its worker died)."""
        for job_id in self.ids("inflight"):
            self.client.zadd(self.q.keys.inflight, {job_id: self.past()}, xx=True)
            self.jobs[job_id].expired = True

    @precondition(lambda self: self.ids("scheduled"))
    @rule(n=st.integers(0, 99))
    def make_due(self, n: int) -> None:
        job_id = self.pick("scheduled", n)
        self.client.zadd(self.q.keys.scheduled, {job_id: self.past()}, xx=True)
        self.jobs[job_id].due = True

    @rule()
    def janitor_pass(self) -> None:
        rows = self.q._recover("model-janitor", 1000)
        expired = {i for i, j in self.jobs.items() if j.state == "inflight" and j.expired}
        assert {r[0].decode() for r in rows} == expired
        for job_id, action, attempt, _reason in rows:
            job_id = job_id.decode()
            job = self.jobs[job_id]
            assert int(attempt) == job.attempts
            self.void(job_id)
            if job.attempts >= MAX_ATTEMPTS:
                assert action == b"dead"
                job.state = "dead"
            else:
                assert action == b"requeued"
                job.state = "pending"
        moved = set(_text(self.q._promote(1000)))
        assert moved == {i for i, j in self.jobs.items() if j.state == "scheduled" and j.due}
        for job_id in moved:
            self.jobs[job_id].state, self.jobs[job_id].due = "pending", False

    @precondition(lambda self: self.jobs)
    @rule(n=st.integers(0, 999))
    def requeue(self, n: int) -> None:
        job_id = sorted(self.jobs)[n % len(self.jobs)]
        job = self.jobs[job_id]
        if job.state == "gone":
            with pytest.raises(JobNotFound):
                self.q.requeue(job_id)
            return
        assert self.q.requeue(job_id) == job.state
        if job.state in ("inflight", "scheduled", "dead"):
            self.void(job_id)
            job.state, job.attempts, job.due = "pending", 0, False

    @rule()
    def requeue_every_dead_job(self) -> None:
        dead = self.ids("dead")
        assert self.q.requeue_dead() == len(dead)
        for job_id in dead:
            self.jobs[job_id].state, self.jobs[job_id].attempts = "pending", 0

    @precondition(lambda self: self.jobs)
    @rule(n=st.integers(0, 999))
    def delete(self, n: int) -> None:
        job_id = sorted(self.jobs)[n % len(self.jobs)]
        job = self.jobs[job_id]
        assert self.q.delete(job_id) is (job.state != "gone")
        self.void(job_id)
        self.jobs[job_id] = ModelJob("gone")

    # -- invariants ----------------------------------------------------------

    @invariant()
    def redis_matches_the_model(self) -> None:
        k = self.q.keys
        pipe = self.client.pipeline(transaction=True)
        pipe.lrange(k.pending, 0, -1)
        pipe.zrange(k.inflight, 0, -1)
        pipe.zrange(k.scheduled, 0, -1)
        pipe.zrange(k.dead, 0, -1)
        pipe.hkeys(k.jobs)
        pipe.hkeys(k.leases)
        pipe.hgetall(k.attempts)
        pipe.hkeys(k.errors)
        pipe.hkeys(k.reasons)
        pending, inflight, scheduled, dead, stored, leases, attempts, errors, reasons = pipe.execute()
        pending = _text(pending)
        assert len(pending) == len(set(pending)), "an id is twice in pending"
        real = {"pending": set(pending), "inflight": set(_text(inflight)),
                "scheduled": set(_text(scheduled)), "dead": set(_text(dead))}
        seen: dict[str, str] = {}
        for state, members in real.items():
            for job_id in members:
                assert job_id not in seen, f"{job_id} is both {seen[job_id]} and {state}"
                seen[job_id] = state
        for state in real:
            assert real[state] == set(self.ids(state)), state
        live = {i for i, j in self.jobs.items() if j.state != "gone"}
        assert set(_text(stored)) == live
        assert set(_text(leases)) == real["inflight"]
        counted = {key.decode(): int(v) for key, v in attempts.items()}
        for job_id, job in self.jobs.items():
            assert counted.get(job_id, 0) == job.attempts, job_id
        gone = {i for i, j in self.jobs.items() if j.state == "gone"}
        assert not gone & (set(counted) | set(_text(errors)) | set(_text(reasons)))
        assert set(_text(reasons)) == real["dead"]
        s = self.q.stats()
        assert (s["pending"], s["inflight"], s["scheduled"], s["dead"]) == tuple(
            len(self.ids(state)) for state in ("pending", "inflight", "scheduled", "dead"))
        assert s["expired_leases"] == sum(1 for j in self.jobs.values() if j.state == "inflight" and j.expired)


def test_the_queue_behaves_like_its_model():
    run_state_machine_as_test(QueueMachine, settings=settings(
        max_examples=60, stateful_step_count=40, deadline=None, derandomize=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    ))
