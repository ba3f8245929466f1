"""Jobs and data that try to break the worker or the janitor: they must not."""

from __future__ import annotations

import logging
import os
import re
import time

import pytest
import redis

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


# ----------------------------------------------- wrong-type keys in scripts

#: Keys the _common.lua helpers touch, so a script calling one touches them too.
HELPER_KEYS = {
    "bury(": {"K_DEAD", "K_REASONS", "K_COUNTERS"},
    "append_error(": {"K_ERRORS"},
    "forget(": {"K_JOBS", "K_ATTEMPTS", "K_ERRORS", "K_REASONS", "K_LEASES"},
    "wake()": {"K_WAKE"},
}


def test_every_script_type_checks_every_key_it_touches():
    """A key a script touches but does not check fails in the middle of the script,
    after earlier writes that Redis does not undo (a popped id lost in no state)."""
    from importlib import resources

    from reliable_queue.scripts import NAMES

    folder = resources.files("reliable_queue") / "scripts"
    for name in NAMES:
        if name == "stats":  # read-only: a wrong type fails before any write
            continue
        body = "\n".join(line.split("--")[0] for line in (folder / f"{name}.lua").read_text().splitlines())
        used = set(re.findall(r"\b[KT]_[A-Z]+\b", body))
        for call, keys in HELPER_KEYS.items():
            if call in body:
                used |= keys
        checked = re.search(r"check_types\(([^)]*)\)", body)
        assert checked, f"{name}.lua has no check_types(...)"
        missing = used - set(re.findall(r"\b[KT]_[A-Z]+\b", checked.group(1)))
        assert not missing, f"{name}.lua touches {sorted(missing)} without checking their type"


def test_fetch_refuses_a_wrong_type_scheduled_key_before_popping_anything(client):
    q = get_queue()
    job = tasks.add.enqueue(1, 2)
    client.set(q.keys.scheduled, "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE reliable_queue"):
        q._fetch("w", [], 1)
    assert client.lrange(q.keys.pending, 0, -1) == [job.id.encode()]
    client.delete(q.keys.scheduled)
    assert q.get(job.id).state == "pending"


def make_dead_job(q, job_id: str | None = None) -> str:
    """A job dead-lettered the way a worker does it (leased, then buried)."""
    job = tasks.add.configure(queue=q.name).enqueue(1, 1)
    _, [(jid, token, *_)], _ = q._fetch("w", [], 1)
    assert q._bury(jid.decode(), token.decode(), "test reason") == 1
    return job.id


@pytest.mark.parametrize("queue, key", [("other", "pending"), ("other", "jobs"), ("other", "wake"),
                                        ("default", "errors"), ("default", "reasons"), ("default", "leases")])
def test_move_dead_writes_nothing_when_a_key_of_either_queue_has_the_wrong_type(client, queue, key):
    src, dst = get_queue("default"), get_queue("other")
    job_id = make_dead_job(src)
    broken = getattr(get_queue(queue).keys, key)
    client.set(broken, "not ours")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE reliable_queue"):
        src.move_dead("other", [job_id])
    client.delete(broken)
    assert src.get(job_id).state == "dead"
    assert not client.hexists(dst.keys.jobs, job_id) and client.llen(dst.keys.pending) == 0
    assert src.move_dead("other", [job_id]) == 1 and dst.get(job_id).state == "pending"


# -------------------------------------------------- unusable numbers in Redis

ADD = "tests.testapp.tasks.add"


def push_raw(client, q, job_id: str, envelope: str, front: bool = False) -> None:
    client.hset(q.keys.jobs, job_id, envelope)
    (client.lpush if front else client.rpush)(q.keys.pending, job_id)


def superuser_client():
    from django.contrib.auth.models import User
    from django.test import Client

    c = Client()
    c.force_login(User.objects.create_superuser("root", "root@example.com", None))
    return c


ADMIN = "/admin/reliable_queue/dashboard/"


@pytest.mark.django_db
@pytest.mark.parametrize("stamp", ["1e20", "NaN", "-1e18", "Infinity"])
def test_stats_and_admin_pages_survive_an_unusable_enqueued_at(client, stamp):
    q = get_queue()
    tasks.add.configure(on_commit=False).enqueue(1, 1)  # the test's transaction never commits
    push_raw(client, q, "weird-stamp", f'{{"task":"{ADD}","args":[1,2],"enqueued_at":{stamp}}}', front=True)
    stats = q.stats()
    assert stats["pending"] == 2 and stats["oldest_pending_age"] is None
    web = superuser_client()
    for page in (ADMIN, f"{ADMIN}default/pending/", f"{ADMIN}default/job/weird-stamp/"):
        assert web.get(page).status_code == 200, page


@pytest.mark.parametrize("field, value", [
    ("enqueued_at", "-1e18"), ("enqueued_at", "NaN"), ("enqueued_at", "1e20"), ("enqueued_at", "Infinity"),
    ("max_attempts", "Infinity"), ("max_attempts", "1e400"), ("max_attempts", "NaN"),
    ("max_attempts", "10000000000000000000000"),
    ("visibility_timeout", "Infinity"), ("visibility_timeout", "1e400"), ("visibility_timeout", "NaN"),
    ("visibility_timeout", "1e12"),
    ("time_limit", "-Infinity"), ("time_limit", "1e400"), ("time_limit", "NaN"), ("time_limit", "1e12"),
])
def test_decode_rejects_numbers_it_cannot_use_as_an_invalid_envelope(field, value):
    from reliable_queue.exceptions import InvalidEnvelope
    from reliable_queue.job import decode

    with pytest.raises(InvalidEnvelope, match=field):
        decode(f'{{"task":"{ADD}","args":[1,2],"{field}":{value}}}', "some-id", "default")


@pytest.mark.parametrize("value", ["1e400", "NaN", "1e12", "-1e400"])
def test_an_unusable_limit_never_makes_an_endless_lease_and_the_job_is_dead_lettered_at_once(client, value):
    q = get_queue()
    envelope = f'{{"task":"{ADD}","args":[1,2],"visibility_timeout":{value},"time_limit":{value}}}'
    push_raw(client, q, "endless", envelope)
    _, [(*_, vt, limit)], _ = q._fetch("w", [], 1)
    assert (vt, limit) == (q._defaults[0], q._defaults[1])  # the queue's defaults
    deadline = client.zscore(q.keys.inflight, "endless")
    assert deadline <= int(client.time()[0]) * 1000 + q._defaults[0] + 1000
    client.delete(q.keys.inflight, q.keys.leases, q.keys.attempts)
    client.rpush(q.keys.pending, "endless")
    Worker(burst=True).run(install_signals=False)
    stored = q.get("endless")
    assert stored.state == "dead" and stored.attempts == 1
    assert "visibility_timeout" in stored.dead_reason


def test_a_job_with_an_unusable_enqueued_at_is_dead_lettered_at_the_first_delivery(client):
    q = get_queue()
    push_raw(client, q, "far-future", f'{{"task":"{ADD}","args":[1,2],"enqueued_at":1e20}}')
    Worker(burst=True).run(install_signals=False)
    stored = q.get("far-future")
    assert stored.state == "dead" and stored.attempts == 1 and "enqueued_at" in stored.dead_reason
    assert tasks.recorded() == []


# ------------------------------------------------------ any id in the admin

ODD_IDS = ["a\nb", "x/y", "with space", " lead", "ünïcødé", "..", ".", "a?b#c", "~tilde", "%41", "a//b/", "e\r\n"]


@pytest.mark.django_db
def test_the_admin_links_and_acts_on_jobs_whatever_their_id(client):
    import html

    q = get_queue()
    push_raw(client, q, "a\nb", f'{{"task":"{ADD}","args":[1,2]}}')
    Worker(burst=True).run(install_signals=False)  # not an id of ours: dead-lettered under it
    assert q.get("a\nb").state == "dead"
    now = int(client.time()[0]) * 1000
    for job_id in ODD_IDS[1:]:
        client.hset(q.keys.jobs, job_id, f'{{"task":"{ADD}","args":[1,2]}}')
        client.zadd(q.keys.dead, {job_id: now})
        client.hset(q.keys.reasons, job_id, "put here by the test")
    web = superuser_client()
    page = web.get(f"{ADMIN}default/dead/")
    assert page.status_code == 200
    urls = {row["id"]: row["url"] for row in page.context["rows"]}
    assert sorted(urls) == sorted(ODD_IDS)
    for job_id, url in urls.items():
        detail = web.get(url)
        assert detail.status_code == 200 and detail.context["job"].id == job_id, repr(job_id)
        posted = re.search(r'name="ids" value="([^"]*)"><input type="hidden" name="next"', detail.content.decode())
        r = web.post(f"{ADMIN}default/dead/requeue/", {"ids": [html.unescape(posted.group(1))], "next": "job"})
        assert r.status_code == 302 and r["Location"] == url, repr(job_id)
        assert q.get(job_id).state == "pending", repr(job_id)
        assert web.get(r["Location"]).status_code == 200


# ---------------------------------------------------- bad input at enqueue

@pytest.mark.parametrize("options", [
    {"max_attempts": 0}, {"max_attempts": "x"}, {"max_attempts": True}, {"max_attempts": 2.5},
    {"max_attempts": 10**7}, {"time_limit": -5}, {"time_limit": float("inf")},
    {"visibility_timeout": float("nan")}, {"visibility_timeout": 10**12}, {"time_limit": "10"},
    {"time_limit": 0.0001}, {"visibility_timeout": 0.05},
])
def test_configure_and_task_refuse_the_same_bad_options_and_write_nothing(options):
    [name] = options
    with pytest.raises(ValueError, match=rf"configure\({name}="):
        tasks.add.configure(**options).enqueue(1, 2)
    with pytest.raises(ValueError, match=rf"@task\({name}="):
        task(**options)(tasks.add.func)
    assert get_queue().stats()["pending"] == 0


def test_configure_accepts_what_task_accepts():
    job = tasks.add.configure(max_attempts=7, time_limit=2.5, visibility_timeout=None).enqueue(1, 2)
    assert get_queue().get(job.id).max_attempts == 7


@pytest.mark.parametrize("delay", [float("nan"), float("inf"), float("-inf")])
def test_enqueue_in_refuses_a_delay_that_is_not_a_finite_number(delay):
    with pytest.raises(ValueError, match="finite"):
        tasks.add.enqueue_in(delay, 1, 2)
    assert get_queue().stats()["pending"] == 0 and get_queue().stats()["scheduled"] == 0


@pytest.mark.parametrize("item", ["ab", b"ab", {"a": 1}])
def test_enqueue_many_refuses_an_item_that_is_not_an_args_tuple(item):
    with pytest.raises(TypeError, match=r"task\.call"):
        tasks.echo.enqueue_many([(1,), item])
    assert get_queue().stats()["pending"] == 0


def test_id_arguments_must_be_ids_not_a_string_of_characters():
    q = get_queue()
    job_id = make_dead_job(q)
    for call in (lambda: q.requeue_dead(ids=job_id), lambda: q.requeue_many(job_id),
                 lambda: q.move_dead("other", ids=job_id), lambda: q.requeue_dead(ids=job_id.encode())):
        with pytest.raises(TypeError, match="list of ids"):
            call()
    for bad in (None, 5, b"x"):
        with pytest.raises(TypeError, match="job id must be a str"):
            q.requeue(bad)
    assert q.get(job_id).state == "dead"
    assert q.requeue_dead(ids=[job_id]) == 1


# ------------------------------------------------------------ settings

@pytest.mark.parametrize("change, check_id, words", [
    ({"DEFAULTS": {"visibility_timeout": float("nan")}}, "reliable_queue.E008", "visibility_timeout"),
    ({"QUEUES": {"q": {"time_limit": float("inf")}}}, "reliable_queue.E008", "time_limit"),
    ({"QUEUES": {"q": {"retry_backoff": float("nan")}}}, "reliable_queue.E008", "retry_backoff"),
    ({"QUEUES": {"q": {"visibility_timeout": 10**9}}}, "reliable_queue.E008", "at most"),
    ({"QUEUES": {"q": {"max_attempts": 10**9}}}, "reliable_queue.E008", "at most"),
    ({"DEFAULTS": {"time_limit": 0.05}}, "reliable_queue.E008", "at least 0.1"),
    ({"SOCKET_TIMEOUT": float("inf")}, "reliable_queue.E009", "SOCKET_TIMEOUT"),
    ({"JANITOR_INTERVAL": float("nan")}, "reliable_queue.E009", "JANITOR_INTERVAL"),
    ({"MAX_PAYLOAD_BYTES": float("inf")}, "reliable_queue.E009", "integer of at least 1024"),
    ({"MAX_PAYLOAD_BYTES": 0.5}, "reliable_queue.E009", "integer of at least 1024"),
    ({"MAX_PAYLOAD_BYTES": 4096.0}, "reliable_queue.E009", "integer of at least 1024"),
    ({"MAX_PAYLOAD_BYTES": 100}, "reliable_queue.E009", "integer of at least 1024"),
])
def test_settings_refuse_numbers_that_are_not_finite_or_not_usable(settings, change, check_id, words):
    from django.core.exceptions import ImproperlyConfigured

    from reliable_queue import conf

    raw = {"REDIS_URL": "redis://127.0.0.1:6379/0", "QUEUES": {"default": {}}, **change}
    problems = [p for p in conf.find_problems(raw) if p.id == check_id]
    assert problems and words in problems[0].msg and problems[0].hint
    settings.RELIABLE_QUEUE = raw
    with pytest.raises(ImproperlyConfigured, match=check_id):
        get_queue()


# --------------------------------------------------------------- purge

def test_purging_pending_only_forgets_ids_that_are_in_no_other_state(client):
    q = get_queue()
    leased = tasks.add.enqueue(1, 1)
    q._fetch("w", [], 1)
    scheduled = tasks.add.enqueue_in(3600, 2, 2)
    dead_id = make_dead_job(q)
    waiting = tasks.add.enqueue(3, 3)
    client.rpush(q.keys.pending, leased.id, scheduled.id, dead_id)  # stray copies
    assert q.purge("pending") == 1
    assert client.llen(q.keys.pending) == 0 and q.get(waiting.id) is None
    stored = q.get(leased.id)
    assert stored.state == "inflight" and stored.attempts == 1 and stored.worker == "w"
    assert q.get(scheduled.id).state == "scheduled"
    assert q.get(dead_id).state == "dead" and q.get(dead_id).dead_reason == "test reason"
