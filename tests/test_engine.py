"""The invariants of the design, one or more tests each, at the script level.

These drive the transitions directly (``Queue._fetch`` etc.) to play two
workers and a janitor against each other with exact control of who holds what.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
import zoneinfo

import pytest
from django.db import transaction
from django.utils import timezone

from reliable_queue import SerializationError, TaskNotFound, get_queue, task
from reliable_queue.exceptions import JobNotFound, QueueNotFound
from reliable_queue.janitor import Janitor
from tests.testapp import tasks


@task(visibility_timeout=0.3, max_attempts=3)
def short_lease(n: int) -> int:
    return n


@task(visibility_timeout=0.3, time_limit=0.6, max_attempts=2)
def short_limit(n: int) -> int:
    return n


def keys_of(client, prefix):
    return sorted(k.decode() for k in client.scan_iter(match=f"{prefix}:*"))


def fetch(queue, worker="w", acks=(), count=1):
    """Lease up to ``count`` jobs as ``worker``; returns (ack results, [(id, token, attempt)])."""
    results, leased, buried = queue._fetch(worker, list(acks), count)
    return results, [(i.decode(), t.decode(), int(a)) for i, t, _e, a, *_ in leased]


# --------------------------------------------------------------------------- enqueue


def test_enqueue_puts_id_in_pending_and_envelope_in_jobs(client):
    job = tasks.add.enqueue(1, 2)
    q = get_queue()
    assert client.lrange(q.keys.pending, 0, -1) == [job.id.encode()]
    envelope = json.loads(client.hget(q.keys.jobs, job.id))
    assert envelope["task"] == "tests.testapp.tasks.add"
    assert envelope["args"] == [1, 2]
    assert "id" not in envelope  # the hash field is the id; storing it twice costs memory
    assert q.get(job.id).state == "pending" and q.get(job.id).id == job.id


def test_identical_payloads_are_two_jobs_and_removing_one_keeps_the_other():
    q = get_queue()
    a, b = tasks.add.enqueue(1, 1), tasks.add.enqueue(1, 1)
    assert a.id != b.id
    assert q.stats()["pending"] == 2
    _, leased = fetch(q)
    assert leased[0][0] == a.id
    results, _ = fetch(q, acks=[(a.id, leased[0][1])], count=0)
    assert results == [1]
    assert q.get(a.id) is None
    assert q.get(b.id).state == "pending"
    assert q.delete(b.id) is True
    assert q.stats()["pending"] == 0


def test_unserialisable_arguments_raise_and_write_nothing(client, rq_prefix):
    with pytest.raises(SerializationError, match="not JSON serialisable"):
        tasks.echo.enqueue(object())
    with pytest.raises(SerializationError, match="not JSON serialisable"):
        tasks.echo.enqueue(float("nan"))
    with pytest.raises(SerializationError, match="over the limit"):
        tasks.echo.enqueue("x" * (2 * 1024 * 1024))
    assert keys_of(client, rq_prefix) == []


def test_unknown_queue_and_unknown_task_raise_and_write_nothing(client, rq_prefix):
    with pytest.raises(QueueNotFound, match="Unknown queue 'nope'"):
        tasks.add.configure(queue="nope").enqueue(1, 2)
    with pytest.raises(TaskNotFound, match="No task named 'no.such.task'"):
        get_queue().enqueue("no.such.task", 1)
    assert keys_of(client, rq_prefix) == []


def test_django_types_are_encoded_as_json_strings():
    import decimal
    import uuid

    u = uuid.uuid4()
    job = tasks.echo.enqueue(datetime.date(2026, 1, 2), decimal.Decimal("1.50"), u, key=(1, 2))
    stored = get_queue().get(job.id)
    assert stored.args == ["2026-01-02", "1.50", str(u)]
    assert stored.kwargs == {"key": [1, 2]}


def test_enqueue_in_schedules_and_promote_moves_when_due():
    q = get_queue()
    job = tasks.add.enqueue_in(0.2, 1, 2)
    assert q.get(job.id).state == "scheduled"
    assert q._promote() == []
    time.sleep(0.25)
    assert [i.decode() for i in q._promote()] == [job.id]
    assert q.get(job.id).state == "pending"


def test_enqueue_at_reads_a_naive_datetime_in_the_current_time_zone():
    q = get_queue()
    zone = zoneinfo.ZoneInfo("Asia/Tokyo")  # UTC+9, no daylight saving
    when = datetime.datetime.now(zone).replace(tzinfo=None, microsecond=0) + datetime.timedelta(hours=1)
    with timezone.override(zone):
        job = tasks.add.enqueue_at(when, 1, 2)
    due = q.get(job.id).scheduled_for
    expected = when.replace(tzinfo=zone)
    assert abs((due - expected).total_seconds()) < 5, (due, expected)
    aware = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=2)
    due = q.get(tasks.add.enqueue_at(aware, 1, 2).id).scheduled_for
    assert abs((due - aware).total_seconds()) < 5


def test_enqueue_many_keeps_order(client):
    jobs = tasks.add.enqueue_many([(i, i) for i in range(2500)])
    q = get_queue()
    assert q.stats()["pending"] == 2500
    assert [j.id for j in q.pending(0, 5)] == [j.id for j in jobs[:5]]


def test_on_commit_waits_for_the_transaction(transactional_db):
    q = get_queue()
    with transaction.atomic():
        job = tasks.add.enqueue(1, 2)
        assert job.deferred
        assert q.stats()["pending"] == 0
    assert q.get(job.id).state == "pending"
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            rolled_back = tasks.add.enqueue(3, 4)
            raise RuntimeError("rollback")
    assert q.get(rolled_back.id) is None
    with transaction.atomic():
        now = tasks.add.configure(on_commit=False).enqueue(5, 6)
        assert q.get(now.id).state == "pending"


# --------------------------------------------------------------------------- pickup, ack


def test_pickup_moves_to_inflight_with_a_lease_from_the_server_clock(client):
    q = get_queue()
    job = tasks.add.enqueue(1, 2)
    before = client.time()
    _, leased = fetch(q, worker="w1")
    (job_id, token, attempt), = leased
    assert job_id == job.id and attempt == 1
    deadline = client.zscore(q.keys.inflight, job.id)
    server_now_ms = before[0] * 1000 + before[1] // 1000
    # visibility_timeout is 5 s in the test settings; the deadline is server time + 5 s.
    assert server_now_ms + 4000 <= deadline <= server_now_ms + 6000
    stored = q.get(job.id)
    assert stored.state == "inflight" and stored.worker == "w1" and stored.attempts == 1
    assert client.llen(q.keys.pending) == 0


def test_ack_with_a_wrong_token_changes_nothing():
    q = get_queue()
    job = tasks.add.enqueue(1, 2)
    _, [(job_id, token, _)] = fetch(q)
    results, _ = fetch(q, acks=[(job_id, token + "0")], count=0)
    assert results == [0]
    assert q.get(job.id).state == "inflight"
    results, _ = fetch(q, acks=[(job_id, token)], count=0)
    assert results == [1]
    # Retrying an ack whose reply was lost is safe and says "already gone".
    results, _ = fetch(q, acks=[(job_id, token)], count=0)
    assert results == [2]


def test_stalled_worker_cannot_ack_fail_or_extend_after_requeue():
    """Worker A stalls past its lease, the janitor requeues, B takes the job."""
    q = get_queue()
    job = short_lease.enqueue(7)
    _, [(_, token_a, attempt_a)] = fetch(q, worker="A")
    time.sleep(0.4)
    assert Janitor().pass_over(q).requeued == 1
    _, [(_, token_b, attempt_b)] = fetch(q, worker="B")
    assert (attempt_a, attempt_b) == (1, 2) and token_a != token_b
    # A wakes up: every operation reports the lost lease and changes nothing.
    assert fetch(q, worker="A", acks=[(job.id, token_a)], count=0)[0] == [0]
    assert q._fail(job.id, token_a, "{}", 10, "x")[0] == b"lost"
    assert q._bury(job.id, token_a, "x") == 0
    assert q._extend("A", [(job.id, token_a, 5000, -1)]) == [0]
    assert q._release([(job.id, token_a, True)]) == [0]
    stored = q.get(job.id)
    assert stored.state == "inflight" and stored.worker == "B" and stored.attempts == 2
    assert fetch(q, worker="B", acks=[(job.id, token_b)], count=0)[0] == [1]
    assert q.get(job.id) is None


def test_extend_is_capped_by_the_time_limit(client):
    q = get_queue()
    job = short_limit.enqueue(1)
    _, [(_, token, _)] = fetch(q)
    # The job started: the worker sets its hard limit (the rest of its limit + grace).
    first = q._extend("w", [(job.id, token, 300, 400)])[0]
    assert first > 0
    time.sleep(0.45)
    assert q._extend("w", [(job.id, token, 300, -1)]) == [-1]  # never past the hard limit
    # The janitor then fails it as timed out, counted as an attempt.
    result = Janitor().pass_over(q)
    assert result.requeued == 1
    stored = q.get(job.id)
    assert stored.errors[-1]["type"] == "TimeLimitExceeded"
    assert "timed out" in stored.errors[-1]["message"]


# --------------------------------------------------------------------------- failure, dead letters


def test_failure_retries_then_dead_letters_with_history():
    q = get_queue()
    job = tasks.always_fails.enqueue("nope")  # max_attempts=2
    first_enqueued = q.get(job.id).enqueued_at
    _, [(_, token, attempt)] = fetch(q)
    reply = q._fail(job.id, token, json.dumps({"attempt": attempt, "type": "ValueError", "message": "nope"}),
                    50, "failed 1 time")
    assert reply[0] == b"retry"
    assert q.get(job.id).state == "scheduled"
    time.sleep(0.06)
    q._promote()
    _, [(_, token, attempt)] = fetch(q)
    assert attempt == 2
    reply = q._fail(job.id, token, json.dumps({"attempt": attempt, "type": "ValueError", "message": "nope"}),
                    50, "failed 2 times; last error ValueError: nope")
    assert reply[0] == b"dead"
    dead = q.get(job.id)
    assert dead.state == "dead"
    assert dead.dead_reason == "failed 2 times; last error ValueError: nope"
    assert [e["attempt"] for e in dead.errors] == [1, 2]
    assert dead.enqueued_at == first_enqueued and dead.attempts == 2
    # Requeue from dead keeps id and history, gives a fresh attempt budget.
    assert q.requeue(job.id) == "dead"
    again = q.get(job.id)
    assert again.state == "pending" and again.attempts == 0 and len(again.errors) == 2
    assert q.requeue(job.id) == "pending"  # already pending: not pushed twice
    assert q.stats()["pending"] == 1
    with pytest.raises(JobNotFound):
        q.requeue("no-such-id")


def test_dead_letters_expire_after_retention(settings, rq_prefix):
    settings.RELIABLE_QUEUE = {**settings.RELIABLE_QUEUE, "PREFIX": rq_prefix,
                               "QUEUES": {"default": {"dead_retention": 0.2}}}
    q = get_queue()
    job = tasks.add.enqueue(1, 2)
    _, [(_, token, _)] = fetch(q)
    q._bury(job.id, token, "test")
    assert Janitor().pass_over(q).expired == 0
    time.sleep(0.25)
    assert Janitor().pass_over(q).expired == 1
    assert q.get(job.id) is None


# --------------------------------------------------------------------------- janitor


def test_janitors_in_numbers_requeue_once_per_expiry(client):
    q = get_queue()
    jobs = short_lease.enqueue_many([(i,) for i in range(300)])
    fetch(q, count=300)
    time.sleep(0.4)
    totals = []

    def run():
        totals.append(Janitor(name=f"j{threading.get_ident()}").pass_over(q).requeued)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(totals) == 300
    assert client.llen(q.keys.pending) == 300
    assert len(set(client.lrange(q.keys.pending, 0, -1))) == 300
    assert {j.id for j in jobs} == {i.decode() for i in client.lrange(q.keys.pending, 0, -1)}


def test_janitor_leaves_live_leases_and_pending_alone(client):
    q = get_queue()
    tasks.add.enqueue_many([(i, i) for i in range(50)])
    fetch(q, count=10)
    result = Janitor().pass_over(q)
    assert not result
    s = q.stats()
    assert (s["pending"], s["inflight"]) == (40, 10)


def test_attempts_counted_at_pickup_end_in_dead_as_worker_lost():
    q = get_queue()
    job = short_lease.enqueue(1)  # max_attempts=3, lease 0.3 s
    for expected in (1, 2, 3):
        _, [(_, _, attempt)] = fetch(q)  # the "worker" dies each time: never acks
        assert attempt == expected
        time.sleep(0.35)
        Janitor().pass_over(q)
    dead = q.get(job.id)
    assert dead.state == "dead"
    assert dead.dead_reason.startswith("worker lost")
    assert [e["type"] for e in dead.errors] == ["WorkerLost"] * 3


def test_release_hands_unstarted_jobs_back_uncharged(client):
    q = get_queue()
    a, b = tasks.add.enqueue(1, 1), tasks.add.enqueue(2, 2)
    _, leased = fetch(q, count=2)
    q._release([(leased[0][0], leased[0][1], False), (leased[1][0], leased[1][1], True)])
    assert [i.decode() for i in client.lrange(q.keys.pending, 0, -1)] == [b.id, a.id]
    assert q.get(a.id).attempts == 1  # it ran: charged
    assert q.get(b.id).attempts == 0  # never started: refunded


# --------------------------------------------------------------------------- keys, stats


def test_every_key_of_a_queue_shares_its_hash_tag(client, rq_prefix):
    q = get_queue("other")
    job = tasks.add.configure(queue="other").enqueue(1, 2)
    _, [(_, token, _)] = fetch(q)
    q._fail(job.id, token, "{}", 10, "x")
    Janitor(queues=["other"]).pass_over(q)
    keys = keys_of(client, rq_prefix)
    assert keys and all("{other}" in k for k in keys)
    assert all("{other}" in k for k in q.keys.all())


def test_stats_reports_counts_and_ages(client):
    q = get_queue()
    tasks.add.enqueue_many([(i, i) for i in range(5)])
    time.sleep(0.05)
    fetch(q, worker="w9", count=2)
    s = q.stats()
    assert (s["pending"], s["inflight"], s["scheduled"], s["dead"]) == (3, 2, 0, 0)
    assert s["oldest_pending_age"] >= 0.04
    assert s["oldest_inflight_age"] is not None and s["oldest_inflight_age"] >= 0
    assert "w9" in s["workers"]
    assert s["expired_leases"] == 0


def test_stats_count_recent_acks_and_failures_by_the_server_clock(client):
    q = get_queue()
    tasks.add.enqueue_many([(i, i) for i in range(4)])
    _, leased = fetch(q, count=4)
    fetch(q, acks=[(i, t) for i, t, _ in leased[:3]], count=0)
    i, t, _ = leased[3]
    assert q._fail(i, t, "{}", 60_000, "test")[0] == b"retry"
    s = q.stats()
    assert (s["done_last_minute"], s["failed_last_minute"]) == (3, 1)
    assert (s["done_last_hour"], s["failed_last_hour"]) == (3, 1)
    assert (s["done"], s["failed"]) == (3, 1)

    # Buckets 10 s each, in a ring of 360 fields: 20 s old counts in the minute,
    # 100 s old only in the hour, 4000 s old (a stale ring field) in neither.
    seconds, micros = client.time()
    bucket = (seconds * 1000 + micros // 1000) // 10_000
    client.hset(q.keys.rates, mapping={
        str((bucket - 2) % 360): f"{bucket - 2} 10 20",
        str((bucket - 10) % 360): f"{bucket - 10} 100 200",
        str((bucket - 400) % 360): f"{bucket - 400} 1000 2000",
    })
    s = q.stats()
    assert (s["done_last_minute"], s["failed_last_minute"]) == (13, 21)
    assert (s["done_last_hour"], s["failed_last_hour"]) == (113, 221)


def test_requeue_only_from_leaves_a_job_that_moved_on_alone():
    """An operator picked a dead job, but it was requeued and picked up meanwhile."""
    q = get_queue()
    job = tasks.add.enqueue(1, 2)
    _, [(_, token, _)] = fetch(q)
    q._bury(job.id, token, "test")
    assert q.requeue(job.id) == "dead"
    _, [(_, token2, _)] = fetch(q, worker="busy")  # now running elsewhere
    assert q.requeue_many([job.id], only_from="dead") == ["skipped"]
    stored = q.get(job.id)
    assert stored.state == "inflight" and stored.worker == "busy"
    assert fetch(q, worker="busy", acks=[(job.id, token2)], count=0)[0] == [1]
    with pytest.raises(ValueError, match="only_from"):
        q.requeue_many([job.id], only_from="pending")


def test_the_envelope_names_no_queue_the_key_that_holds_it_does(client):
    q = get_queue("other")
    job = tasks.add.configure(queue="other").enqueue(1, 2)
    assert "queue" not in json.loads(client.hget(q.keys.jobs, job.id))
    assert q.get(job.id).queue == "other"
    # An envelope that still names a queue (older, or written by hand) is read as stored.
    q.scripts.enqueue(q._key_list, [1, "legacy1", json.dumps(
        {"id": "legacy1", "task": "tests.testapp.tasks.add", "queue": "default", "args": [1, 1]}), 0])
    assert q.get("legacy1").queue == "other" and q.get("legacy1").id == "legacy1"
