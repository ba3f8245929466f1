"""Jobs and data that try to break the worker or the janitor: they must not."""

from __future__ import annotations

import logging
import os
import time

from reliable_queue import get_queue, signals, task
from reliable_queue.janitor import Janitor
from reliable_queue.worker import Worker
from tests.helpers import RunningWorker, wait_until
from tests.testapp import tasks


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no __str__ for you")


@task(max_attempts=2)
def raises_keyboard_interrupt() -> None:
    raise KeyboardInterrupt("from a task")


@task(max_attempts=2)
def raises_unprintable() -> None:
    raise UnprintableError()


@task(time_limit=1.0)
def takes_most_of_its_limit(tag: str) -> None:
    tasks._record("start", tag)
    time.sleep(0.6)
    tasks._record("end", tag)


@task
def forks_and_returns_in_the_child() -> None:
    pid = os.fork()
    if pid == 0:
        return  # the child "finishes" the task: it must not become a second worker
    _, status = os.waitpid(pid, 0)
    tasks._record("child-exit", os.waitstatus_to_exitcode(status))


def dead(q, job):
    stored = q.get(job.id)
    return stored is not None and stored.state == "dead"


def test_a_task_raising_keyboard_interrupt_is_a_failure_not_a_dead_worker():
    q = get_queue()
    bad = raises_keyboard_interrupt.enqueue()
    good = tasks.add.enqueue(2, 3)
    with RunningWorker(concurrency=1) as w:
        wait_until(lambda: dead(q, bad) and q.get(good.id) is None)
        assert w.errors == 0
    assert q.get(bad.id).dead_reason == "failed 2 time(s); last error KeyboardInterrupt: from a task"


def test_an_exception_whose_str_raises_is_recorded_and_the_worker_goes_on():
    q = get_queue()
    bad = raises_unprintable.enqueue()
    good = tasks.add.enqueue(1, 1)
    with RunningWorker() as w:
        wait_until(lambda: dead(q, bad) and q.get(good.id) is None)
        assert w.errors == 0
    stored = q.get(bad.id)
    assert "UnprintableError: <UnprintableError: str() raised RuntimeError>" in stored.dead_reason
    assert stored.errors[-1]["type"] == "UnprintableError"


def test_a_receiver_raising_system_exit_is_logged_and_the_job_still_acked(caplog):
    def leave(**kwargs):
        raise SystemExit(3)

    signals.job_started.connect(leave, dispatch_uid="sysexit")
    try:
        job = tasks.add.enqueue(4, 4)
        with caplog.at_level(logging.ERROR, logger="reliable_queue.signals"):
            Worker(burst=True).run(install_signals=False)
    finally:
        signals.job_started.disconnect(dispatch_uid="sysexit")
    assert get_queue().get(job.id) is None
    assert "job_started receiver raised SystemExit(3)" in caplog.text


def test_prefetched_jobs_get_their_whole_time_limit_from_their_own_start():
    """Four jobs of 0.6 s with a 1 s limit, leased together: none may time out."""
    q = get_queue()
    jobs = takes_most_of_its_limit.enqueue_many([(f"j{i}",) for i in range(4)])
    with RunningWorker(queues=["default"], prefetch=4):
        wait_until(lambda: all(q.get(j.id) is None for j in jobs), timeout=20)
    assert sorted(r[1] for r in tasks.recorded() if r[0] == "end") == ["j0", "j1", "j2", "j3"]
    assert q.stats()["dead"] == 0 and q.stats()["failed"] == 0


def test_a_wrong_type_key_in_one_queue_stops_neither_the_other_queue_nor_the_janitor(client, caplog):
    broken = get_queue("other")
    client.set(broken.keys.inflight, "not a sorted set")
    q = get_queue()
    job = tasks.add.enqueue(5, 6)
    with caplog.at_level(logging.ERROR, logger="reliable_queue"):
        with RunningWorker(queues=["other", "default"]) as w:
            wait_until(lambda: q.get(job.id) is None)
            assert w.errors == 0
        results = Janitor(queues=["other", "default"]).run_once()
    assert "queue other is unusable and is skipped for now" in caplog.text
    assert "holds a string, not a zset" in caplog.text
    assert not results["other"] and "default" in results


def test_a_script_refuses_a_wrong_type_key_before_writing_anything(client):
    q = get_queue()
    job = tasks.add.enqueue(1, 2)
    client.set(q.keys.inflight, "oops")
    try:
        q._fetch("w", [], 1)
    except Exception as exc:
        assert "WRONGTYPE reliable_queue" in str(exc)
    else:
        raise AssertionError("fetch ran on a wrong-type key")
    # Nothing moved: the job is still pending, not popped into nowhere.
    assert client.lrange(q.keys.pending, 0, -1) == [job.id.encode()]
    client.delete(q.keys.inflight)
    assert q.get(job.id).state == "pending"


def test_a_task_that_forks_does_not_leave_a_second_worker_behind():
    q = get_queue()
    job = forks_and_returns_in_the_child.enqueue()
    later = tasks.add.enqueue(7, 7)
    with RunningWorker():
        wait_until(lambda: q.get(job.id) is None and q.get(later.id) is None)
    records = tasks.recorded()
    assert [r[1] for r in records if r[0] == "child-exit"] == [0]
    assert [r[1] for r in records if r[0] == "add"] == [14]  # run once, by the worker itself
    assert q.stats()["failed"] == 0


def test_a_job_whose_attempts_are_spent_is_dead_lettered_at_pickup_not_run():
    q = get_queue()
    job = tasks.always_fails.enqueue("x")  # max_attempts=2
    with RunningWorker():
        wait_until(lambda: dead(q, job))
    assert q.requeue(job.id, reset_attempts=False) == "dead"
    results, leased, buried = q._fetch("w", [], 1)
    assert leased == [] and buried[0][1].decode().startswith("attempts exhausted")
    stored = q.get(job.id)
    assert stored.state == "dead" and stored.attempts == 2
    assert len([r for r in tasks.recorded() if r[0] == "fail"]) == 2
