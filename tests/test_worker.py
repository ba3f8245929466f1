"""The worker in this process: outcomes, signals, heartbeat, time limits, stop."""

from __future__ import annotations

import json
import logging
import threading
import time

from reliable_queue import get_queue, signals, task
from reliable_queue.connection import get_client
from reliable_queue.queue import LIMIT_GRACE_MS
from reliable_queue.worker import Slot, Worker
from tests.helpers import RunningJanitor, RunningWorker, drained, wait_until
from tests.testapp import tasks


def records(kind=None):
    return [r for r in tasks.recorded() if kind is None or r[0] == kind]


def test_worker_runs_jobs_and_acks_them():
    jobs = tasks.add.enqueue_many([(i, 1) for i in range(20)])
    Worker(burst=True, concurrency=3, prefetch=4).run(install_signals=False)
    assert sorted(r[1] for r in records("add")) == list(range(1, 21))
    q = get_queue()
    assert all(q.get(j.id) is None for j in jobs)
    assert q.stats()["done"] == 20


def test_burst_runs_delayed_jobs_that_are_due_before_it_exits():
    due = [tasks.add.enqueue_in(0.2, i, 0) for i in range(3)]
    later = tasks.add.enqueue_in(3600, 100, 0)
    q = get_queue()
    assert q.stats()["scheduled"] == 4
    time.sleep(0.3)  # the first three are due now, on the server's clock
    Worker(burst=True).run(install_signals=False)
    assert sorted(r[1] for r in records("add")) == [0, 1, 2]
    assert all(q.get(j.id) is None for j in due)
    stats = q.stats()
    assert (stats["pending"], stats["scheduled"]) == (0, 1)
    assert q.get(later.id).state == "scheduled"


def test_a_raising_receiver_is_logged_and_the_job_still_acked(caplog):
    def boom(**kwargs):
        raise RuntimeError("receiver bug")

    seen = []

    def collect(signal, **kwargs):
        seen.append((signal, kwargs["queue"], kwargs["job"].id))

    for s in (signals.job_started, signals.job_succeeded):
        s.connect(boom)
        s.connect(collect)
    try:
        job = tasks.add.enqueue(1, 2)
        with caplog.at_level(logging.ERROR, logger="reliable_queue.signals"):
            Worker(burst=True).run(install_signals=False)
    finally:
        for s in (signals.job_started, signals.job_succeeded):
            s.disconnect(boom)
            s.disconnect(collect)
    assert get_queue().get(job.id) is None
    assert [(s, q, i) for s, q, i in seen] == [(signals.job_started, "default", job.id),
                                               (signals.job_succeeded, "default", job.id)]
    assert "receiver bug" in caplog.text


def test_failures_retry_with_backoff_then_succeed():
    retrying = []
    signals.job_retrying.connect(lambda **kw: retrying.append(kw["delay"]), weak=False, dispatch_uid="t1")
    try:
        job = tasks.fails_then_succeeds.enqueue("k1", 2)
        with RunningWorker():
            wait_until(lambda: get_queue().get(job.id) is None)
    finally:
        signals.job_retrying.disconnect(dispatch_uid="t1")
    assert [r[1] for r in records("attempt")] == [["k1", 1], ["k1", 2], ["k1", 3]]
    assert len(retrying) == 2 and all(0 < d <= 0.2 for d in retrying)


def test_a_task_that_always_fails_ends_dead_with_its_traceback():
    dead = []
    signals.job_dead_lettered.connect(lambda **kw: dead.append(kw), weak=False, dispatch_uid="t2")
    try:
        job = tasks.always_fails.enqueue("kaput")
        with RunningWorker():
            wait_until(lambda: get_queue().get(job.id).state == "dead")
    finally:
        signals.job_dead_lettered.disconnect(dispatch_uid="t2")
    stored = get_queue().get(job.id)
    assert stored.attempts == 2
    assert stored.dead_reason == "failed 2 time(s); last error ValueError: kaput"
    assert [e["type"] for e in stored.errors] == ["ValueError", "ValueError"]
    assert "raise ValueError(message)" in stored.errors[-1]["traceback"]
    assert dead and dead[0]["reason"] == stored.dead_reason and isinstance(dead[0]["exception"], ValueError)


def _raw_enqueue(queue, job_id, envelope):
    queue.scripts.enqueue(queue._key_list, [1, job_id, envelope, 0])


def test_unknown_task_is_retried_then_dead_lettered_and_the_worker_goes_on():
    q = get_queue()
    _raw_enqueue(q, "unknown1", json.dumps({"id": "unknown1", "task": "gone.away", "queue": "default",
                                            "args": []}))
    good = tasks.add.enqueue(2, 2)
    with RunningWorker():
        wait_until(lambda: (j := q.get("unknown1")) is not None and j.state == "dead")
        wait_until(lambda: q.get(good.id) is None)
    stored = q.get("unknown1")
    assert stored.attempts == 3
    assert stored.dead_reason.startswith("unknown task 'gone.away'")
    assert [r[1] for r in records("add")] == [4]


def test_invalid_envelopes_are_dead_lettered_with_a_reason():
    q = get_queue()
    bad = {
        "notjson": "{not json",
        "notobject": "[1, 2]",
        "noTask": json.dumps({"id": "noTask", "queue": "default", "args": []}),
        "argsDict": json.dumps({"id": "argsDict", "task": "tests.testapp.tasks.add", "queue": "default",
                                "args": {"a": 1}}),
        "idMismatch": json.dumps({"id": "other", "task": "tests.testapp.tasks.add", "queue": "default",
                                  "args": [1, 2]}),
    }
    for job_id, envelope in bad.items():
        _raw_enqueue(q, job_id, envelope)
    good = tasks.add.enqueue(3, 3)
    Worker(burst=True).run(install_signals=False)
    reasons = {job_id: q.get(job_id).dead_reason for job_id in bad}
    assert reasons["notjson"].startswith("envelope is not a JSON object")
    assert reasons["notobject"].startswith("invalid envelope: envelope is JSON list")
    assert "field 'task'" in reasons["noTask"]
    assert "field 'args'" in reasons["argsDict"]
    assert "does not match" in reasons["idMismatch"]
    assert q.get(good.id) is None and q.stats()["dead"] == 5


def test_a_long_healthy_job_runs_once_while_janitors_run():
    """2.5 x its visibility timeout: the heartbeat keeps the lease alive."""
    job = tasks.long_job.configure(queue="short").enqueue(2.5, "long")
    with RunningJanitor(queues=["short"], interval=0.1), RunningWorker(queues=["short"]):
        wait_until(lambda: get_queue("short").get(job.id) is None, timeout=15)
    assert [r[1] for r in records("start")] == ["long"]
    assert get_queue("short").stats()["recovered"] == 0


def test_without_extension_each_timeout_redelivers_once_and_is_counted():
    q = get_queue("short")
    job = tasks.long_job.configure(queue="short", max_attempts=10).enqueue(2.5, "noext")
    started = time.monotonic()
    with RunningJanitor(queues=["short"], interval=0.1), \
            RunningWorker(queues=["short"], concurrency=4, extend_leases=False):
        wait_until(lambda: q.get(job.id) is None or q.get(job.id).attempts >= 3, timeout=15)
        elapsed = time.monotonic() - started
        starts = len(records("start"))
        recovered = q.stats()["recovered"]
    # Redelivery needs an expired 1 s lease: at most one per second, each one charged.
    assert 2 <= starts <= elapsed / 1.0 + 1
    assert starts - 1 <= recovered <= starts


def test_a_hung_job_is_failed_at_its_time_limit_and_its_slot_is_freed():
    q = get_queue()
    hung = tasks.hangs.enqueue(4)  # time_limit=1, max_attempts=2
    with RunningWorker(concurrency=1):
        wait_until(lambda: records("hang"))
        later = tasks.add.enqueue(5, 5)
        # The only slot is stuck in the hung job; a replacement slot runs the next job.
        wait_until(lambda: q.get(later.id) is None, timeout=10)
        wait_until(lambda: (j := q.get(hung.id)) is not None and j.state == "dead", timeout=15)
    stored = q.get(hung.id)
    assert stored.dead_reason.startswith("timed out")
    assert stored.attempts == 2


def test_stop_hands_back_unstarted_prefetched_jobs_uncharged():
    q = get_queue()
    tasks.sleep_for.enqueue(0.5, "first")
    rest = tasks.add.enqueue_many([(i, i) for i in range(5)])
    with RunningWorker(prefetch=6) as worker:
        wait_until(lambda: records("start"))
        worker.stop()
    assert [r[1] for r in records("end")] == ["first"]  # the running job finished
    s = q.stats()
    assert (s["pending"], s["inflight"], s["done"]) == (5, 0, 1)
    assert all(q.get(j.id).attempts == 0 for j in rest)


def test_max_jobs_stops_the_worker():
    tasks.add.enqueue_many([(i, 0) for i in range(5)])
    w = Worker(max_jobs=2, prefetch=3)
    w.run(install_signals=False)
    assert len(records("add")) == 2
    s = get_queue().stats()
    assert (s["pending"], s["inflight"]) == (3, 0)
    assert all(j.attempts == 0 for j in get_queue().pending(0, 10))


def test_block_timeout_is_corrected_below_the_socket_timeout(settings, rq_prefix, caplog):
    settings.RELIABLE_QUEUE = {**settings.RELIABLE_QUEUE, "PREFIX": rq_prefix,
                               "REDIS_OPTIONS": {"socket_timeout": 2}, "SOCKET_TIMEOUT": 20, "BLOCK_TIMEOUT": 8}
    with caplog.at_level(logging.WARNING, logger="reliable_queue"):
        w = Worker()
        assert w.block_timeout <= 1
        assert "BLOCK_TIMEOUT 8.0s is not shorter than the Redis socket timeout 2.0s" in caplog.text
        caplog.clear()
        # Idle on an empty queue through several blocking reads: not an error.
        with RunningWorker() as idle:
            wait_until(lambda: idle.name in get_queue().stats()["workers"])
            time.sleep(idle.block_timeout * 2.5)
    assert "Redis unavailable" not in caplog.text and "Error" not in caplog.text
    assert drained(get_queue())


def test_a_prefetched_job_whose_lease_expired_meanwhile_is_not_started():
    """As after a SIGSTOP past the lease: the job went to worker B; A must not run it too."""
    from reliable_queue.janitor import Janitor
    from reliable_queue.worker import Slot
    from tests.test_engine import short_lease

    q = get_queue()
    job = short_lease.enqueue(1)  # 0.3 s lease
    a = Worker(burst=True)
    slot = Slot(a, 1)
    leased, _ = slot._call_fetch(q, [], 1)
    slot.buffer.extend(leased)
    time.sleep(0.35)  # "paused" past the lease
    assert Janitor().pass_over(q).requeued == 1
    _, [(_, token_b, _, _, _, _)], _ = q._fetch("B", [], 1)
    lost = []
    signals.lease_lost.connect(lambda **kw: lost.append(kw["operation"]), weak=False, dispatch_uid="pf")
    try:
        slot.run()  # A resumes with the job still in its buffer
    finally:
        signals.lease_lost.disconnect(dispatch_uid="pf")
    assert lost == ["start"]
    assert a.processed == 0
    stored = q.get(job.id)
    assert stored.state == "inflight" and stored.worker == "B"
    assert q._fetch("B", [(job.id, token_b.decode())], 0)[0] == [1]


@task(visibility_timeout=0.5)
def short_vt_on_slow_queue(seconds: float) -> None:
    tasks._record("start", "short-vt")
    time.sleep(seconds)


@task(time_limit=0.5, max_attempts=1)
def short_limit_on_slow_queue(seconds: float) -> None:
    tasks._record("start", "short-limit")
    time.sleep(seconds)
    tasks._record("end", "short-limit")


def test_a_task_with_its_own_short_visibility_timeout_is_kept_alive():
    """The queue's timeout is 5 s; the task's own 0.5 s must set the heartbeat's pace."""
    q = get_queue()
    job = short_vt_on_slow_queue.enqueue(1.6)
    with RunningJanitor(interval=0.1), RunningWorker(queues=["default"]):
        wait_until(lambda: q.get(job.id) is None, timeout=15)
    assert [r[1] for r in records("start")] == ["short-vt"]
    assert q.stats()["recovered"] == 0


def test_a_task_with_its_own_short_time_limit_is_failed_at_that_limit():
    q = get_queue()
    job = short_limit_on_slow_queue.enqueue(2)
    with RunningWorker(queues=["default"]):
        wait_until(lambda: (j := q.get(job.id)) is not None and j.state == "dead", timeout=15)
        assert records("end") == []  # failed while still running, not after
    assert q.get(job.id).dead_reason.startswith("timed out")


def test_a_clean_stop_takes_the_worker_off_the_live_list():
    with RunningWorker(name="leaving") as w:
        wait_until(lambda: "leaving" in get_queue().stats()["workers"])
    assert not w.force.is_set()
    assert "leaving" not in get_queue().stats()["workers"]


def test_a_clean_stop_takes_the_janitor_off_the_live_list():
    with RunningJanitor(name="sweeper", interval=0.05):
        wait_until(lambda: "sweeper" in get_queue().stats()["janitors"])
    assert "sweeper" not in get_queue().stats()["janitors"]


def test_a_shutdown_timeout_charges_the_running_job_and_refunds_the_prefetched_ones():
    jobs = [tasks.sleep_for.enqueue(1.5, f"t{i}") for i in range(6)]
    q = get_queue()
    with RunningWorker(concurrency=2, prefetch=3, shutdown_timeout=0.3):
        wait_until(lambda: len(records("start")) == 2)
    started = {r[1] for r in records("start")}
    attempts = {int(j.args[1][1:]): q.get(j.id).attempts for j in jobs}
    states = {q.get(j.id).state for j in jobs}
    assert states == {"pending"}  # all handed back at once, none left to its lease
    assert len(started) == 2
    assert sorted(attempts.values()) == [0, 0, 0, 0, 1, 1]
    assert all(attempts[int(tag[1:])] == 1 for tag in started)


def test_a_finished_job_is_acked_while_its_slot_runs_a_long_next_job():
    """Acks ride on the slot's next fetch, but a long job in between must not hold
    them back until the finished job's lease runs out at its time limit."""
    q = get_queue()
    quick = tasks.add.configure(time_limit=1, visibility_timeout=1, max_attempts=1).enqueue(1, 2)
    tasks.sleep_for.enqueue(2.5, "long")
    with RunningJanitor(interval=0.1), RunningWorker(prefetch=2):
        wait_until(lambda: records("end"))
    assert q.get(quick.id) is None  # acked: not dead as "timed out", not run again
    assert [r[1] for r in records("add")] == [3]
    assert q.stats()["dead"] == 0


def test_a_prefetched_job_gets_its_time_limit_from_its_start_in_redis_too():
    """The 10th job of a batch may live 10 limits (each with the ack grace) from its
    pickup in Redis, as it waits for the nine before it; once it starts, the heartbeat
    sets its hard limit to start + limit + grace, so a hung job is stopped at its own
    limit, not the batch's."""
    q = get_queue()
    for _ in range(9):
        tasks.noop.enqueue()
    hung = tasks.hangs.enqueue(30)

    def hard_limit_after_start():
        if not any(r[0] == "hang" for r in records()):
            return None
        held = get_client().hget(q.keys.leases, hung.id)
        if held is None or get_client().hget(q.keys.attempts, hung.id) != b"1":
            return None  # not running, or a later delivery (picked up alone)
        _, _, picked_up, hard, _ = held.decode().split("|")
        return int(hard) - int(picked_up)

    with RunningWorker(prefetch=10):
        # Pulled in from 10 x (1 s + 2 s) after its pickup to about 1 s + 2 s after its start
        # (without this, the wait times out).
        wait_until(lambda: (h := hard_limit_after_start()) is not None and h < 1000 + LIMIT_GRACE_MS + 1000)
        wait_until(lambda: q.get(hung.id).errors)
    assert q.get(hung.id).errors[0]["type"] == "TimeoutError"


def test_stopping_does_not_wait_for_a_slot_abandoned_in_a_timed_out_job():
    """A slot stuck in a job already failed at its time limit is abandoned; a stop
    that comes before the slot was replaced must not wait its shutdown timeout out."""
    worker = Worker(shutdown_timeout=60)
    stuck = threading.Event()
    slot = Slot(worker, 99)
    slot.run = stuck.wait  # stands for a task that never returns
    slot.abandoned = True
    slot.start()
    worker._slots.append(slot)
    stopper = threading.Thread(target=worker._shutdown, daemon=True)
    stopper.start()
    stopper.join(15)
    stuck.set()
    assert not stopper.is_alive()


def test_a_prefetched_job_after_one_with_a_longer_limit_keeps_its_whole_limit():
    """At pickup a job's hard limit allows for the limits of the jobs before it in the
    batch, whatever they are, not its own limit times its place."""
    q = get_queue()
    tasks.sleep_for.configure(time_limit=10).enqueue(1.6, "A")
    b = tasks.sleep_for.configure(time_limit=1, visibility_timeout=1).enqueue(0.8, "B")
    with RunningWorker(prefetch=2):
        wait_until(lambda: len(records("end")) == 2)
    assert sorted(r[1] for r in records("start")) == ["A", "B"]  # each ran once
    assert q.get(b.id) is None


def test_a_job_leased_from_a_second_queue_allows_for_the_first_queues_jobs():
    tasks.sleep_for.configure(time_limit=2).enqueue(1.8, "A")
    b = tasks.sleep_for.configure(queue="other", time_limit=2, visibility_timeout=1).enqueue(0.5, "B")
    with RunningWorker(queues=["default", "other"], prefetch=2):
        wait_until(lambda: len(records("end")) == 2)
    assert sorted(r[1] for r in records("start")) == ["A", "B"]
    assert get_queue("other").get(b.id) is None


def test_a_buffered_job_the_heartbeat_handed_back_is_not_run():
    q = get_queue()
    first = tasks.add.enqueue(1, 1)
    second = tasks.add.enqueue(2, 2)
    worker = Worker(prefetch=2)
    slot = Slot(worker, 1)
    slot._refill()
    assert [lease.id for lease in slot.buffer] == [first.id, second.id]
    worker._hand_back_unstarted(slot.buffer[1])  # its lease could not be extended
    steps = threading.Thread(target=lambda: (slot._step(), slot._step()))  # as in the slot's own thread
    steps.start()
    steps.join(10)
    assert [r[1] for r in records("add")] == [2]  # only the first ran
    stored = q.get(second.id)
    assert (stored.state, stored.attempts) == ("pending", 0)  # handed back, not charged


def test_a_clean_stop_acks_a_finished_job_whose_slot_went_on_to_a_long_job():
    q = get_queue()
    quick = tasks.sleep_for.enqueue(0.3, "Q")
    long = tasks.sleep_for.enqueue(3, "L")
    # ack_delay long: nothing but the stop itself sends the finished job's ack.
    with RunningWorker(prefetch=2, shutdown_timeout=0, ack_delay=60):
        wait_until(lambda: records("end"))
    assert q.get(quick.id) is None  # acked, not handed back to run again
    stored = q.get(long.id)
    assert (stored.state, stored.attempts) == ("pending", 1)  # it started: charged
    # ...and its history says why, should such hand-backs ever spend its budget.
    assert [e["type"] for e in stored.errors] == ["Interrupted"]
    assert "stopped" in stored.errors[0]["message"]


def test_a_slow_job_succeeded_receiver_does_not_hold_up_the_leases_of_running_jobs():
    q = get_queue("short")  # visibility timeout 1 s

    def slow(job, **kwargs):
        if job.args[1] == "A":
            time.sleep(2.5)

    signals.job_succeeded.connect(slow, weak=False, dispatch_uid="slow-receiver")
    try:
        tasks.long_job.enqueue(0.05, "A")
        b = tasks.long_job.enqueue(3, "B")
        with RunningJanitor(interval=0.1), RunningWorker(queues=["short"], prefetch=2):
            wait_until(lambda: q.get(b.id) is None, timeout=30)
    finally:
        signals.job_succeeded.disconnect(dispatch_uid="slow-receiver")
    assert sorted(r[1] for r in records("start")) == ["A", "B"]  # B's lease never ran out


def test_a_job_that_finishes_just_within_its_limit_is_acked_not_timed_out():
    """The lease outlives the time limit long enough for the ack of a job that finished
    just in time (it waits up to ack_delay) to land before any janitor acts."""
    q = get_queue()
    jobs = [tasks.sleep_for.configure(time_limit=2).enqueue(1.9, f"J{i}") for i in range(2)]
    with RunningJanitor(interval=0.05), RunningWorker(prefetch=2):
        wait_until(lambda: all(q.get(j.id) is None for j in jobs), timeout=30)
    assert sorted(r[1] for r in records("start")) == ["J0", "J1"]  # each ran once
    assert q.stats()["dead"] == 0 and q.stats()["failed"] == 0


def test_a_job_whose_limit_ran_out_in_its_started_receivers_does_not_run():
    """The limit counts from the job's start, receivers included; a job settled while
    they ran (timed out here) must not then run its task without a lease."""
    q = get_queue()
    signals.job_started.connect(lambda **kw: time.sleep(2), weak=False, dispatch_uid="slow-start")
    try:
        job = tasks.sleep_for.configure(time_limit=1, max_attempts=1).enqueue(0, "never")
        with RunningWorker():
            wait_until(lambda: q.get(job.id).state == "dead", timeout=30)
            time.sleep(1.5)  # the receiver returns meanwhile
    finally:
        signals.job_started.disconnect(dispatch_uid="slow-start")
    assert records("start") == []
    assert q.get(job.id).dead_reason.startswith("timed out")


def test_a_slow_job_failed_receiver_does_not_hold_up_the_heartbeat():
    """A job at its time limit is failed (signals and all) off the heartbeat thread."""
    signals.job_failed.connect(lambda **kw: time.sleep(4), weak=False, dispatch_uid="slow-failed")
    try:
        tasks.hangs.enqueue(3)  # failed at its 1 s limit
        long = tasks.long_job.enqueue(5, "LONG")  # visibility timeout 1 s: needs the heartbeat
        with RunningJanitor(interval=0.1), RunningWorker(queues=["default", "short"], concurrency=2):
            wait_until(lambda: get_queue("short").get(long.id) is None, timeout=30)
    finally:
        signals.job_failed.disconnect(dispatch_uid="slow-failed")
    assert [r[1] for r in records("start")] == ["LONG"]  # its lease never ran out


def test_a_stopping_slot_leases_nothing_new():
    """A stop that comes while a fetch waits for Redis to come back: the retried fetch
    must not lease jobs that nobody will run or hand back."""
    q = get_queue()
    tasks.add.enqueue_many([(i, i) for i in range(3)])
    worker = Worker(prefetch=3)
    slot = Slot(worker, 1)
    worker.stop()
    assert slot._call_fetch(q, [], 3) == ([], 0)
    assert q.stats()["pending"] == 3 and q.stats()["inflight"] == 0


def test_a_slot_stuck_in_a_job_whose_lease_was_lost_is_replaced_at_its_limit():
    q = get_queue()
    hung = tasks.hangs.enqueue(30)  # time limit 1 s
    with RunningWorker() as worker:
        wait_until(lambda: records("hang"))
        stuck = worker._slots[0]
        assert q.requeue(hung.id) == "inflight"  # an operator forces it back: the lease is void
        wait_until(lambda: stuck.abandoned, timeout=15)
        wait_until(lambda: stuck not in worker._slots and len(worker._slots) == 1)


def test_a_job_handed_back_before_it_started_does_not_count_towards_max_jobs():
    tasks.add.enqueue(1, 1)
    worker = Worker(max_jobs=1)
    slot = Slot(worker, 1)
    slot._refill()
    lease = slot.buffer.popleft()
    assert worker.take_job_slot()
    worker._hand_back_unstarted(lease)  # the heartbeat wins the race for it
    runner = threading.Thread(target=slot._run, args=(lease,))  # as in the slot's own thread
    runner.start()
    runner.join(10)
    assert records("add") == []
    assert worker.fetch_size() == 1  # may still take its one job


def test_a_buffered_job_whose_lease_ran_out_behind_slow_receivers_is_not_run_twice():
    """The job ahead took far longer than its limit allowed (a slow job_failed receiver),
    so the waiting job's lease ran out and another worker ran it: the slot must ask
    Redis before starting it, not trust its buffer."""
    def slow(job, **kwargs):
        if job.task.endswith("always_fails"):
            time.sleep(7)

    signals.job_failed.connect(slow, weak=False, dispatch_uid="slow-failed-2")
    try:
        tasks.always_fails.configure(time_limit=1, visibility_timeout=30).enqueue("A")
        # A long visibility timeout: no heartbeat looks at B before its slot does.
        b = tasks.sleep_for.configure(time_limit=1, visibility_timeout=30).enqueue(0, "B")
        with RunningWorker(prefetch=2):
            wait_until(lambda: records("fail"))
            with RunningJanitor(interval=0.1), RunningWorker():
                wait_until(lambda: get_queue().get(b.id) is None, timeout=30)
                time.sleep(2)  # the first worker's receiver returns, its slot moves on
    finally:
        signals.job_failed.disconnect(dispatch_uid="slow-failed-2")
    assert [r[1] for r in records("start")] == ["B"]


def test_acks_do_not_wait_behind_slow_receivers_of_other_outcomes():
    """A's ack is sent while its slot runs C; a slow job_dead_lettered receiver (for H,
    failed at its limit in the other slot) must not hold it back past A's lease."""
    signals.job_dead_lettered.connect(lambda **kw: time.sleep(6), weak=False, dispatch_uid="slow-dead")
    q = get_queue()
    try:
        a = tasks.sleep_for.configure(time_limit=1).enqueue(0.8, "A")
        tasks.sleep_for.enqueue(5, "C")
        tasks.hangs.configure(time_limit=0.5, max_attempts=1).enqueue(3)
        with RunningJanitor(interval=0.1), RunningWorker(concurrency=2, prefetch=2, shutdown_timeout=0):
            wait_until(lambda: q.stats()["dead"] == 1 and len(records("end")) >= 1, timeout=30)
            time.sleep(3.5)  # past A's hard limit (start + 1 s + grace)
    finally:
        signals.job_dead_lettered.disconnect(dispatch_uid="slow-dead")
    assert q.get(a.id) is None
    assert [r[1] for r in records("start")].count("A") == 1


def test_max_jobs_exits_when_its_job_hangs_past_its_limit():
    tasks.hangs.configure(max_attempts=1).enqueue(30)
    worker = Worker(max_jobs=1)
    runner = threading.Thread(target=worker.run, kwargs={"install_signals": False}, daemon=True)
    runner.start()
    runner.join(20)
    stopped = not runner.is_alive()
    worker.stop(force=True)
    assert stopped
    assert get_queue().stats()["dead"] == 1


def test_starting_prefetched_jobs_costs_no_extra_round_trip(monkeypatch):
    """The hot path: a batch leased in one call starts without asking Redis again."""
    from reliable_queue.queue import Queue

    asked = []
    original = Queue._extend

    def spy(self, worker, items):
        asked.extend(item[0] for item in items)
        return original(self, worker, items)

    monkeypatch.setattr(Queue, "_extend", spy)
    tasks.add.enqueue_many([(i, 0) for i in range(20)])
    Worker(burst=True, prefetch=20).run(install_signals=False)
    assert len(records("add")) == 20
    assert asked == []
