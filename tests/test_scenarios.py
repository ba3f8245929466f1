"""The failure scenarios that must each have a test (the torture issue's list).

* 1,000 in-flight jobs with expired leases: one janitor pass recovers them all,
  with the count; ``stats()`` shows the oldest in-flight age.
* The connection drops in the middle of an ack (applied by Redis, reply lost):
  retrying it is safe, and the janitor never requeues the job afterwards.
* An in-flight (or pending) id whose envelope is missing is dealt with once.
* Socket timeout 4 s with a blocking read of 8 s is refused (system check) or
  corrected (worker); an empty queue is idle, not an error; a worker survives a
  Redis stop/start and resumes.
* A table of malformed entries pushed straight into Redis, and bad calls at
  enqueue: each is contained with a clear reason; the jobs around them run.

Connection faults go through the torture suite's TCP proxy (``tests/torture/proxy.py``)
in front of the test Redis; the restart uses a private redis-server.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from reliable_queue import SerializationError, TaskNotFound, get_queue, signals
from reliable_queue.conf import get_settings
from reliable_queue.embedded import RedisServer
from reliable_queue.exceptions import QueueNotFound
from reliable_queue.janitor import Janitor
from reliable_queue.job import Job, encode
from reliable_queue.queue import Queue
from reliable_queue.worker import Lease, Slot, Worker
from tests.helpers import RunningWorker, wait_until
from tests.testapp import tasks
from tests.torture.proxy import Proxy


def add_results() -> list[int]:
    return sorted(r[1] for r in tasks.recorded() if r[0] == "add")


def states(q: Queue) -> tuple[int, int, int, int]:
    s = q.stats()
    return s["pending"], s["inflight"], s["scheduled"], s["dead"]


def server_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return seconds * 1000 + micros // 1000


def expire_leases(client: redis.Redis, q: Queue) -> None:
    """Move every lease deadline into the past (the test clock; no waiting)."""
    past = server_ms(client) - 1
    ids = client.zrange(q.keys.inflight, 0, -1)
    if ids:
        client.zadd(q.keys.inflight, {i: past for i in ids}, xx=True)


@pytest.fixture
def proxy(settings, rq_prefix):
    """A proxy in front of the test Redis; settings pointed at it are restored afterwards."""
    original = settings.RELIABLE_QUEUE
    url = urlsplit(get_settings().redis_url)
    with Proxy(url.hostname or "127.0.0.1", url.port or 6379) as p:
        yield p
        settings.RELIABLE_QUEUE = original


def via_proxy(settings, proxy: Proxy) -> None:
    """Make this test's queues, workers and janitors reach Redis through the proxy."""
    settings.RELIABLE_QUEUE = {**settings.RELIABLE_QUEUE, "REDIS_URL": proxy.url}


# ------------------------------------------------------------ expired leases at scale


def test_one_janitor_pass_recovers_1000_expired_leases_and_stats_show_their_age(client):
    q = get_queue("short")  # visibility timeout 1 s
    assert q.stats()["oldest_inflight_age"] is None
    jobs = tasks.add.configure(queue="short").enqueue_many([(i, 0) for i in range(1000)])
    _, leased, _ = q._fetch("w-crashed", [], 1000)
    assert len(leased) == 1000
    time.sleep(1.1)  # every lease runs out (server clock)

    s = q.stats()
    assert (s["inflight"], s["expired_leases"]) == (1000, 1000)
    assert s["oldest_inflight_age"] >= 1.0

    result = Janitor(queues=["short"]).run_once()["short"]
    assert (result.requeued, result.dead) == (1000, 0)
    s = q.stats()
    assert (s["pending"], s["inflight"], s["expired_leases"], s["recovered"]) == (1000, 0, 0, 1000)
    assert s["oldest_inflight_age"] is None
    assert sorted(client.lrange(q.keys.pending, 0, -1)) == sorted(j.id.encode() for j in jobs)
    assert Janitor(queues=["short"]).run_once()["short"].requeued == 0
    # The attempt charged at pickup stays, with a "worker lost" entry in the history.
    job = q.get(jobs[0].id)
    assert job.attempts == 1 and job.errors[-1]["type"] == "WorkerLost"


def test_four_janitors_at_once_requeue_each_of_1000_expired_jobs_exactly_once(client):
    q = get_queue()
    tasks.add.enqueue_many([(i, 0) for i in range(1000)])
    q._fetch("w-crashed", [], 1000)
    expire_leases(client, q)
    janitors = [Janitor(queues=["default"], name=f"j{n}") for n in range(4)]
    results: list[int] = []
    barrier = threading.Barrier(4)

    def one(j: Janitor) -> None:
        barrier.wait()
        results.append(j.run_once()["default"].requeued)

    threads = [threading.Thread(target=one, args=(j,)) for j in janitors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(results) == 1000
    pending = client.lrange(q.keys.pending, 0, -1)
    assert len(pending) == len(set(pending)) == 1000
    assert q.stats()["recovered"] == 1000


# ------------------------------------------------------------ ack lost on the wire


def test_an_ack_whose_reply_is_lost_is_retried_safely_and_never_requeued(proxy, client):
    q = get_queue("short")
    wire = Queue(q.config, q.settings, client=redis.Redis.from_url(proxy.url, socket_timeout=5))
    job = tasks.add.configure(queue="short").enqueue(1, 2)
    _, leased, _ = wire._fetch("w1", [], 1)
    job_id, token = leased[0][0].decode(), leased[0][1].decode()
    assert job_id == job.id

    proxy.drop_reply_after(job_id.encode())
    with pytest.raises(redis.ConnectionError):
        wire._fetch("w1", [(job_id, token)], 0)
    # Redis applied the ack; only its reply was lost.
    assert q.get(job_id) is None and q.stats()["done"] == 1

    results, leased, _ = wire._fetch("w1", [(job_id, token)], 0)  # the retry
    assert results == [2] and leased == []  # "already gone": nothing changed
    assert q.stats()["done"] == 1

    time.sleep(1.1)  # past the lease the ack ended
    assert Janitor(queues=["short"]).run_once()["short"].requeued == 0
    assert q.get(job_id) is None
    assert states(q) == (0, 0, 0, 0)


def test_a_worker_retries_an_ack_lost_on_the_wire_and_runs_the_job_once(settings, proxy, caplog):
    via_proxy(settings, proxy)
    q = get_queue()
    lost = []
    signals.lease_lost.connect(lambda **kw: lost.append(kw["job"].id), weak=False, dispatch_uid="scn-ack")
    try:
        job = tasks.add.enqueue(20, 22)
        proxy.drop_reply_after(job.id.encode())  # the next request naming the job is its ack
        with caplog.at_level(logging.INFO, logger="reliable_queue"), RunningWorker():
            wait_until(lambda: "already acknowledged" in caplog.text)
            after = tasks.add.enqueue(1, 1)  # and the worker goes on
            wait_until(lambda: q.get(after.id) is None)
    finally:
        signals.lease_lost.disconnect(dispatch_uid="scn-ack")
    assert add_results() == [2, 42]
    assert q.get(job.id) is None and lost == []
    assert Janitor().run_once()["default"].requeued == 0
    assert states(q) == (0, 0, 0, 0) and q.stats()["done"] == 2


# ------------------------------------------------------------ envelope missing


def test_an_inflight_id_whose_envelope_is_missing_is_dead_lettered_once(client):
    q = get_queue()
    job = tasks.add.enqueue(1, 1)
    _, leased, _ = q._fetch("w1", [], 1)
    token = leased[0][1].decode()
    client.hdel(q.keys.jobs, job.id)
    # And a crash artefact: an id in in-flight with neither lease nor envelope.
    client.zadd(q.keys.inflight, {"orphan-1": 0})
    expire_leases(client, q)

    result = Janitor().run_once()["default"]
    assert (result.requeued, result.dead) == (0, 2)
    for job_id in (job.id, "orphan-1"):
        dead = q.get(job_id)
        assert dead.state == "dead" and dead.dead_reason.startswith("envelope missing")
    # Nobody spins on it: further passes, and the old holder's late ack, change nothing.
    assert not Janitor().run_once()["default"]
    results, _, _ = q._fetch("w1", [(job.id, token)], 0)
    assert results == [2]
    assert states(q) == (0, 0, 0, 2) and q.stats()["dead_lettered"] == 2


def test_a_pending_id_whose_envelope_is_missing_is_dead_lettered_once_by_the_worker(client):
    q = get_queue()
    before = tasks.add.enqueue(1, 0)
    client.rpush(q.keys.pending, "no-such-job")
    after = tasks.add.enqueue(2, 0)
    with RunningWorker():
        wait_until(lambda: q.get(after.id) is None and states(q) == (0, 0, 0, 1))
        time.sleep(0.2)  # the worker goes on idling; nothing comes back
    assert add_results() == [1, 2]
    assert q.get(before.id) is None
    dead = q.get("no-such-job")
    assert dead.state == "dead" and dead.dead_reason.startswith("envelope missing")
    assert not Janitor().run_once()["default"]
    assert states(q) == (0, 0, 0, 1) and q.stats()["dead_lettered"] == 1


def test_an_envelope_deleted_while_its_job_runs_is_acked_and_leaves_nothing(client):
    q = get_queue()
    job = tasks.add.enqueue(1, 1)
    _, leased, _ = q._fetch("w1", [], 1)
    client.hdel(q.keys.jobs, job.id)
    results, _, _ = q._fetch("w1", [(job.id, leased[0][1].decode())], 0)
    assert results == [1]
    assert q.get(job.id) is None and states(q) == (0, 0, 0, 0)


# ------------------------------------------------------------ timeouts, idling, restarts


def test_block_timeout_8s_with_socket_timeout_4s_is_refused_by_the_system_check(settings):
    original = settings.RELIABLE_QUEUE
    settings.RELIABLE_QUEUE = {**original, "SOCKET_TIMEOUT": 4, "BLOCK_TIMEOUT": 8}
    try:
        errors = [e for e in checks.run_checks() if e.id == "reliable_queue.E010"]
        assert len(errors) == 1
        assert "BLOCK_TIMEOUT" in errors[0].msg and "(8s)" in errors[0].msg and "(4s)" in errors[0].msg
        assert "Set BLOCK_TIMEOUT to 2" in errors[0].hint
        with pytest.raises(ImproperlyConfigured, match="E010"):
            Worker()
    finally:
        settings.RELIABLE_QUEUE = original


def test_a_worker_on_a_client_with_socket_timeout_4s_corrects_block_timeout_8s(settings, caplog):
    # The setting passes validation, but REDIS_OPTIONS gives the client a 4 s socket timeout.
    settings.RELIABLE_QUEUE = {**settings.RELIABLE_QUEUE, "SOCKET_TIMEOUT": 10, "BLOCK_TIMEOUT": 8,
                               "REDIS_OPTIONS": {"socket_timeout": 4}}
    with caplog.at_level(logging.WARNING, logger="reliable_queue.worker"):
        worker = Worker()
    assert worker.block_timeout == 2.0
    assert "BLOCK_TIMEOUT 8.0s is not shorter than the Redis socket timeout 4.0s; using 2.0s" in caplog.text


def test_an_idle_worker_on_an_empty_queue_is_not_an_error(caplog):
    q = get_queue()
    with caplog.at_level(logging.WARNING, logger="reliable_queue"), RunningWorker(concurrency=2) as worker:
        wait_until(lambda: worker.name in q.stats()["workers"])
        time.sleep(worker.block_timeout * 3)  # several blocking reads that end empty
        assert all(s.is_alive() for s in worker._slots)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert worker.processed == 0 and worker.failed == 0 and states(q) == (0, 0, 0, 0)


def test_a_worker_reconnects_after_redis_stops_and_starts_and_resumes(settings, rq_prefix, caplog):
    original = settings.RELIABLE_QUEUE
    server = RedisServer(appendonly=True, appendfsync="always").start()
    try:
        settings.RELIABLE_QUEUE = {**original, "REDIS_URL": server.url}
        q = get_queue()
        first = tasks.add.enqueue(1, 1)
        with caplog.at_level(logging.WARNING, logger="reliable_queue"), RunningWorker():
            wait_until(lambda: q.get(first.id) is None)
            during = tasks.sleep_for.enqueue(1.0, "during")
            wait_until(lambda: ["start", "during"] in [r[:2] for r in tasks.recorded()])
            server.stop()  # while a job runs; its ack waits for Redis to come back
            wait_until(lambda: "Redis unavailable" in caplog.text)
            server.start()
            after = tasks.add.enqueue(2, 2)
            # Bounded: the reconnect backoff is capped at 5 s.
            wait_until(lambda: q.get(after.id) is None and q.get(during.id) is None, timeout=30)
        assert add_results() == [2, 4]
        assert [r[:2] for r in tasks.recorded() if r[0] in ("start", "end")] == [["start", "during"],
                                                                                    ["end", "during"]]
        assert states(q) == (0, 0, 0, 0) and q.stats()["done"] == 3
    finally:
        settings.RELIABLE_QUEUE = original
        server.cleanup()


# ------------------------------------------------------------ malformed input

TEN_MB = 10 * 1024 * 1024


def _envelope(job_id: str, **fields: Any) -> str:
    data = {"id": job_id, "task": "tests.testapp.tasks.add", "queue": "default", "args": [1, 1],
            "enqueued_at": time.time()}
    data.update(fields)
    return json.dumps({k: v for k, v in data.items() if v is not ...})


#: (kind, stored envelope or None for a raw pending entry, raw pending entry, reason must contain)
def malformed_cases() -> list[tuple[str, Any, bytes, str]]:
    cases: list[tuple[str, Any, bytes, str]] = []

    def raw(kind: str, entry: bytes, reason: str) -> None:
        cases.append((kind, None, entry, reason))

    def env(kind: str, envelope: bytes | str, reason: str) -> None:
        job_id = f"mal-{len(cases):02d}"
        cases.append((kind, envelope if not callable(envelope) else envelope(job_id), job_id.encode(), reason))

    raw("empty pending entry", b"", "malformed entry in the pending list")
    raw("pending entry that is not an id", b"hello world", "malformed entry in the pending list")
    raw("JSON pushed as a pending entry", b'{"task": "tests.testapp.tasks.add"}', "malformed entry")
    raw("non-UTF-8 pending entry", b"\xff\xfe\x00\x80", "malformed entry in the pending list")
    raw("10 MB pending entry", b"x" * TEN_MB, "malformed entry in the pending list")
    raw("id longer than 64 characters", b"a" * 65, "malformed entry in the pending list")
    raw("id with no envelope", b"ghost-id", "envelope missing")
    env("empty envelope", "", "envelope missing")
    env("not JSON", "this is not json", "not a JSON object")
    env("truncated JSON", '{"id": "x", "task": ', "not a JSON object")
    env("JSON array", "[1, 2, 3]", "not an object")
    env("JSON string", '"a string"', "not a JSON object")
    env("JSON number", "42", "not a JSON object")
    env("JSON null", "null", "not a JSON object")
    env("id that is not a string", lambda i: _envelope(i, id=12345), "not a valid job id")
    env("id that does not match its key", lambda i: _envelope("someone-else"), "does not match")
    env("missing task", lambda i: _envelope(i, task=...), "field 'task' is missing")
    env("task not a string", lambda i: _envelope(i, task=123), "field 'task' is missing or not a string")
    env("unknown task", lambda i: _envelope(i, task="no.such.task"), "unknown task 'no.such.task'")
    env("args not a list", lambda i: _envelope(i, args={"a": 1}), "field 'args' must be a JSON array")
    env("kwargs not an object", lambda i: _envelope(i, kwargs=[1]), "field 'kwargs' must be a JSON object")
    env("queue not a string", lambda i: _envelope(i, queue=["default"]), "field 'queue' must be a string")
    env("enqueued_at not a number", lambda i: _envelope(i, enqueued_at="yesterday"), "'enqueued_at' must be")
    env("max_attempts zero", lambda i: _envelope(i, max_attempts=0), "'max_attempts' must be an integer >= 1")
    env("max_attempts a string", lambda i: _envelope(i, max_attempts="5"), "'max_attempts' must be an integer >= 1")
    env("visibility_timeout negative", lambda i: _envelope(i, visibility_timeout=-1), "'visibility_timeout'")
    env("non-UTF-8 envelope", lambda i: _envelope(i).encode()[:-1] + b', "x": "\xff\xfe"}', "not UTF-8")
    env("10 MB envelope", lambda i: _envelope(i, args=["x" * TEN_MB]), "envelope too large")
    env("nested depth 10,000", lambda i: _envelope(i, args=[]).replace('"args": []', '"args": '
                                                                         + "[" * 10_000 + "]" * 10_000),
        "not a JSON object")
    env("args that do not fit the function", lambda i: _envelope(i, args=[1, 2, 3]), "TypeError")
    env("kwargs the function does not take", lambda i: _envelope(i, kwargs={"c": 1}), "TypeError")
    return cases


def test_malformed_entries_are_dead_lettered_with_a_reason_and_the_jobs_around_them_run(client):
    q = get_queue()
    cases = malformed_cases()
    assert len(cases) >= 20
    good = []
    for n, (_kind, envelope, entry, _reason) in enumerate(cases):
        good.append(tasks.add.enqueue(n, 1000))
        if envelope is not None:
            client.hset(q.keys.jobs, entry, envelope)
        client.rpush(q.keys.pending, entry)
    good.append(tasks.add.enqueue(len(cases), 1000))

    with RunningWorker(concurrency=2):
        wait_until(lambda: states(q)[:3] == (0, 0, 0) and len(add_results()) >= len(good), timeout=60)
    assert add_results() == [1000 + n for n in range(len(good))]  # every good job ran, once

    dead = {j.id: j for j in q.dead(0, 100)}
    assert len(dead) == len(cases)
    # Entries that are not ids are kept under a fresh id, the raw entry stored for inspection.
    kept = sorted(client.hget(q.keys.jobs, j.id) for j in dead.values() if j.dead_reason.startswith("malformed entry"))
    assert kept == sorted(e for _k, env, e, _r in cases if env is None and e != b"ghost-id")
    for kind, envelope, entry, reason in cases:
        if envelope is None and entry != b"ghost-id":
            assert reason in "malformed entry in the pending list", kind
            continue
        found = dead[entry.decode()]
        assert reason in found.dead_reason, (kind, found.dead_reason)
    s = q.stats()
    assert s["dead_lettered"] == len(cases) and s["done"] == len(good)


def test_a_stray_copy_of_a_leased_scheduled_or_dead_id_is_dropped_not_leased(client):
    q = get_queue()
    live, later, doomed = tasks.add.enqueue(5, 5), tasks.add.enqueue_in(3600, 6, 6), tasks.add.enqueue(7, 7)
    client.rpush(q.keys.pending, live.id)  # a second copy while the first is still pending
    _, leased, _ = q._fetch("w1", [], 3)  # live, its copy, doomed
    assert [row[0].decode() for row in leased] == [live.id, doomed.id]
    token = leased[0][1].decode()
    q._bury(doomed.id, leased[1][1].decode(), "test: dead")
    for stray in (live.id, later.id, doomed.id):  # in flight, scheduled, dead
        client.rpush(q.keys.pending, stray)
    _, leased, buried = q._fetch("w2", [], 3)
    assert leased == [] and buried == []
    assert states(q) == (0, 1, 1, 1)
    results, _, _ = q._fetch("w1", [(live.id, token)], 0)  # the first lease still holds
    assert results == [1]
    assert q.get(later.id).state == "scheduled" and q.get(doomed.id).dead_reason == "test: dead"


def test_a_stray_copy_of_a_live_jobs_id_does_not_run_it_twice(client):
    q = get_queue()
    job = tasks.add.enqueue(5, 5)
    client.rpush(q.keys.pending, job.id)  # the same id, a second time
    after = tasks.add.enqueue(6, 6)
    with RunningWorker(concurrency=2):
        wait_until(lambda: q.get(after.id) is None and states(q)[:3] == (0, 0, 0))
    assert add_results() == [10, 12]
    assert q.stats()["done"] == 2
    # If the job was done before the copy was reached, the copy names no job:
    # it is dead-lettered with that reason; otherwise it was dropped.
    left = q.get(job.id)
    assert left is None or left.dead_reason.startswith("envelope missing")


# ------------------------------------------------------------ bad calls at enqueue


class Unserialisable:
    pass


def test_bad_calls_at_enqueue_raise_a_clear_error_and_write_nothing(client, rq_prefix):
    q = get_queue()
    big = "x" * (get_settings().max_payload_bytes + 1)
    calls = [
        (lambda: tasks.echo.enqueue(Unserialisable()), SerializationError, "not JSON serialisable"),
        (lambda: tasks.echo.enqueue({1, 2}), SerializationError, "not JSON serialisable"),
        (lambda: tasks.echo.enqueue(b"bytes"), SerializationError, "not JSON serialisable"),
        (lambda: tasks.echo.enqueue(float("nan")), SerializationError, "not JSON serialisable"),
        (lambda: tasks.echo.enqueue({(1, 2): "tuple key"}), SerializationError, "not JSON serialisable"),
        (lambda: tasks.echo.enqueue(big), SerializationError, "over the limit"),
        (lambda: tasks.echo.enqueue_many([(1,), (Unserialisable(),)]), SerializationError, "not JSON serialisable"),
        (lambda: tasks.echo.configure(queue="nope").enqueue(1), QueueNotFound, "Unknown queue 'nope'"),
        (lambda: get_queue("nope"), QueueNotFound, "Configured queues"),
        (lambda: q.enqueue("no.such.task", 1), TaskNotFound, "No task named 'no.such.task'"),
        (lambda: tasks.echo.configure(retries=3), TypeError, "Unknown task option"),
    ]
    for call, error, message in calls:
        with pytest.raises(error, match=message):
            call()
    assert list(client.scan_iter(match=f"{rq_prefix}:*")) == []
    # Values JSON has no type for become strings, as documented; they are not errors.
    job = tasks.echo.enqueue(date(2024, 1, 2), Decimal("1.5"), uuid.UUID(int=1))
    assert q.get(job.id).args == ["2024-01-02", "1.5", "00000000-0000-0000-0000-000000000001"]


def test_an_id_that_collides_with_a_live_job_is_refused_and_changes_nothing(client):
    q = get_queue()
    live = tasks.add.enqueue(1, 2)
    twin = Job(id=live.id, task="tests.testapp.tasks.echo", queue="default", args=["other"])
    with pytest.raises(ValueError, match="already in use"):
        q._write([(twin, encode(twin, 1 << 20), 0)])
    assert json.loads(client.hget(q.keys.jobs, live.id))["task"] == "tests.testapp.tasks.add"
    assert client.lrange(q.keys.pending, 0, -1) == [live.id.encode()]


def test_an_enqueue_repeated_after_a_lost_reply_places_the_job_once(client):
    """A client that retries an enqueue whose reply was lost sends the same id and
    envelope again: that is the job it already has, not a clash, and not a second copy."""
    q = get_queue()
    job = Job(id="retry-me", task="tests.testapp.tasks.add", queue="default", args=[1, 2])
    text = encode(job, 1 << 20)
    q._write([(job, text, 0)])
    q._write([(job, text, 0)])  # no error: the same job
    assert client.lrange(q.keys.pending, 0, -1) == [b"retry-me"]
    assert q.stats()["pending"] == 1


# ------------------------------------------------------------ found by the torture run


def test_a_heartbeat_racing_a_successful_ack_does_not_report_the_lease_lost():
    """The heartbeat picked a finished job to extend; its ack landed first. The
    extend then finds no lease: that is not a lost lease (the ack succeeded)."""
    q = get_queue()
    lost = []
    signals.lease_lost.connect(lambda **kw: lost.append(kw["operation"]), weak=False, dispatch_uid="scn-hb")
    try:
        tasks.add.enqueue(3, 4)
        worker = Worker()
        slot = Slot(worker, 1)
        _, leased, _ = q._fetch(worker.name, [], 1)
        job_id, token, envelope, attempt, _, _ = leased[0]
        lease = Lease(queue=q, id=job_id.decode(), token=token.decode(), envelope=envelope,
                      attempt=int(attempt), vt_ms=5000, slot=slot)
        worker.hold(lease)
        run = threading.Thread(target=slot._run, args=(lease,))  # as in the slot's own thread
        run.start()
        run.join(10)  # the job ran; its ack waits in the slot
        assert add_results() == [7]
        lease.extended_at = 0  # due for extension
        results, _, _ = q._fetch(worker.name, [(lease.id, lease.token)], 0)  # the ack lands...
        assert results == [1]
        worker._heartbeat()  # ...before the slot thread has taken the lease off the held set
    finally:
        signals.lease_lost.disconnect(dispatch_uid="scn-hb")
    assert lost == [] and not lease.lost
