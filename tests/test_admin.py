"""The admin dashboard, through Django's test client against the real Redis.

Jobs are put into each state with the engine's own scripts (enqueue, fetch,
bury) so the pages read exactly what a running system writes.
"""

from __future__ import annotations

import json
import logging
import re
from contextlib import contextmanager
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
import redis
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone

from reliable_queue import get_queue, signals
from reliable_queue.conf import get_settings
from reliable_queue.connection import get_client
from reliable_queue.embedded import RedisServer, find_free_port
from reliable_queue.janitor import Janitor
from reliable_queue.models import Dashboard
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

BASE = "/admin/reliable_queue/dashboard/"
XSS = "<script>alert('pwned')</script>"


# ----------------------------------------------------------------- helpers

def echo(queue: str = "default"):
    # on_commit=False: the test runs inside a transaction that never commits.
    return tasks.echo.configure(queue=queue, on_commit=False)


def make_pending(n: int = 1, queue: str = "default", *args) -> list[str]:
    """``n`` pending jobs. Make in-flight and dead jobs first: those take the head of pending."""
    return [echo(queue).enqueue(i, *args).id for i in range(n)]


def make_inflight(n: int = 1, queue: str = "default", worker: str = "worker-1", *args) -> list[tuple[str, str]]:
    """``n`` jobs leased by ``worker``: (id, lease token) each."""
    q = get_queue(queue)
    ids = make_pending(n, queue, *args)
    _, leased, _ = q._fetch(worker, [], n)
    got = [(j.decode(), t.decode()) for j, t, *_ in leased]
    assert [g[0] for g in got] == ids
    return got


def make_dead(n: int = 1, queue: str = "default", reason: str = "failed 3 times: ValueError: boom",
              message: str = "boom", *args) -> list[str]:
    """``n`` dead-lettered jobs, each with one recorded error (with a traceback)."""
    q = get_queue(queue)
    ids = []
    for job_id, token in make_inflight(n, queue, "worker-dead", *args):
        record = json.dumps({"attempt": 1, "at": 1_700_000_000_000, "type": "ValueError", "message": message,
                             "traceback": f'Traceback (most recent call last):\n  File "tasks.py", line 1\nValueError: {message}\n'})
        assert q._bury(job_id, token, reason, record) == 1
        ids.append(job_id)
    return ids


def make_scheduled(n: int = 1, queue: str = "default") -> list[str]:
    return [echo(queue).enqueue_in(3600, i).id for i in range(n)]


def user(username: str, *perms: str, staff: bool = True, superuser: bool = False) -> User:
    # No password (no slow hashing): the tests log in with force_login.
    if superuser:
        return User.objects.create_superuser(username, f"{username}@example.com", None)
    u = User.objects.create_user(username, f"{username}@example.com", None, is_staff=staff)
    for codename in perms:
        u.user_permissions.add(Permission.objects.get(content_type__app_label="reliable_queue", codename=codename))
    return User.objects.get(pk=u.pk)  # fresh: no stale permission cache


def web(u: User | None = None, **kwargs) -> Client:
    c = Client(**kwargs)
    if u is not None:
        c.force_login(u)
    return c


@pytest.fixture
def admin_user(db):
    return user("root", superuser=True)


@pytest.fixture
def admin(admin_user):
    return web(admin_user)


@contextmanager
def requeued_signals():
    seen: list[dict] = []

    def receiver(sender, **kwargs):
        seen.append(kwargs)

    signals.job_requeued.connect(receiver)
    try:
        yield seen
    finally:
        signals.job_requeued.disconnect(receiver)


def text_of(response) -> str:
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def follow_messages(c: Client, response) -> list[str]:
    assert response.status_code == 302, response.status_code
    page = c.get(response["Location"])
    return [str(m) for m in page.context["messages"]]


def url(queue: str = "default", state: str | None = None, action: str | None = None) -> str:
    out = f"{BASE}{queue}/"
    if state:
        out += f"{state}/"
    if action:
        out += f"{action}/"
    return out


def job_url(job_id: str, queue: str = "default") -> str:
    return f"{BASE}{queue}/job/{job_id}/"


# ------------------------------------------------------------- the model

def test_permissions_and_migration_exist():
    codenames = set(Permission.objects.filter(content_type__app_label="reliable_queue")
                    .values_list("codename", flat=True))
    assert codenames == {"view_queues", "requeue_jobs", "delete_jobs", "purge_jobs"}
    assert Dashboard._meta.managed is False
    # The shipped migration matches the model.
    call_command("makemigrations", "reliable_queue", "--check", "--dry-run", verbosity=0)


# ------------------------------------------------------------ access rules

PAGES = [BASE, url(state="pending"), url(state="inflight"), url(state="scheduled"), url(state="dead")]
ACTIONS = [url(state="dead", action="requeue"), url(state="dead", action="delete"), url(state="dead", action="purge")]


def test_anonymous_users_are_sent_to_login():
    job_id = make_dead()[0]
    for page in [*PAGES, job_url(job_id)]:
        r = web().get(page)
        assert r.status_code == 302 and r["Location"].startswith("/admin/login/"), page
    for action in ACTIONS:
        r = web().post(action, {"ids": [job_id], "confirmed": "yes"})
        assert r.status_code == 302 and r["Location"].startswith("/admin/login/"), action
    assert get_queue("default").get(job_id).state == "dead"


def test_staff_without_view_permission_gets_403_and_no_index_entry():
    c = web(user("staff"))
    job_id = make_dead()[0]
    for page in [*PAGES, job_url(job_id)]:
        assert c.get(page).status_code == 403, page
    for action in ACTIONS:
        assert c.post(action, {"ids": [job_id], "confirmed": "yes"}).status_code == 403, action
    assert "Queues" not in text_of(c.get("/admin/"))
    assert get_queue("default").get(job_id).state == "dead"


def test_index_links_to_the_dashboard_for_viewers():
    r = web(user("viewer", "view_queues")).get("/admin/")
    assert r.status_code == 200
    assert f'href="{BASE}"' in text_of(r)
    assert ">Queues<" in text_of(r)


def test_viewer_sees_no_action_buttons_and_forged_posts_get_403():
    dead = make_dead(2)
    pending = make_pending(1)
    c = web(user("viewer", "view_queues"))
    page = text_of(c.get(url(state="dead")))
    assert dead[0] in page
    for label in ("Requeue selected", "Requeue all", "Delete selected", "Purge all"):
        assert label not in page
    detail = text_of(c.get(job_url(dead[0])))
    assert 'value="Requeue"' not in detail and "Delete…" not in detail
    # Forged POSTs, with and without the confirmation step.
    for data in ({"ids": dead}, {"ids": dead, "confirmed": "yes"}, {"all": "1", "confirmed": "yes"}):
        assert c.post(url(state="dead", action="requeue"), data).status_code == 403
        assert c.post(url(state="dead", action="delete"), data).status_code == 403
        assert c.post(url(state="dead", action="purge"), data).status_code == 403
    assert c.post(url(state="pending", action="purge"), {"confirmed": "yes"}).status_code == 403
    q = get_queue("default")
    assert {q.get(i).state for i in dead} == {"dead"}
    assert q.get(pending[0]).state == "pending"


def test_each_action_checks_its_own_permission():
    dead = make_dead(2)
    c = web(user("requeuer", "view_queues", "requeue_jobs"))
    page = text_of(c.get(url(state="dead")))
    assert "Requeue selected" in page and "Delete selected" not in page and "Purge all" not in page
    assert c.post(url(state="dead", action="delete"), {"ids": dead, "confirmed": "yes"}).status_code == 403
    assert c.post(url(state="dead", action="purge"), {"confirmed": "yes"}).status_code == 403
    assert get_queue("default").stats()["dead"] == 2

    c = web(user("deleter", "view_queues", "delete_jobs"))
    page = text_of(c.get(url(state="dead")))
    assert "Delete selected" in page and "Requeue selected" not in page and "Purge all" not in page
    assert c.post(url(state="dead", action="requeue"), {"ids": dead[:1]}).status_code == 403
    assert c.post(url(state="dead", action="purge"), {"confirmed": "yes"}).status_code == 403
    assert get_queue("default").stats()["dead"] == 2

    c = web(user("purger", "view_queues", "purge_jobs"))
    assert "Purge all 2" in text_of(c.get(url(state="dead")))
    assert c.post(url(state="dead", action="requeue"), {"ids": dead[:1]}).status_code == 403
    assert c.post(url(state="dead", action="delete"), {"ids": dead, "confirmed": "yes"}).status_code == 403
    r = c.post(url(state="dead", action="purge"), {"confirmed": "yes"})
    assert r.status_code == 302
    assert get_queue("default").stats()["dead"] == 0


def test_actions_are_post_only(admin):
    job_id = make_dead()[0]
    for action in ("requeue", "delete", "purge"):
        assert admin.get(url(state="dead", action=action), {"ids": job_id, "confirmed": "yes"}).status_code == 405
    assert get_queue("default").get(job_id).state == "dead"


def test_missing_csrf_token_is_refused(admin_user):
    dead = make_dead(1)
    c = web(admin_user, enforce_csrf_checks=True)
    for action in ("requeue", "delete", "purge"):
        r = c.post(url(state="dead", action=action), {"ids": dead, "confirmed": "yes"})
        assert r.status_code == 403, action
    assert get_queue("default").get(dead[0]).state == "dead"
    # The same request with the page's token goes through: the 403 above was the CSRF check.
    page = c.get(url(state="dead"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text_of(page)).group(1)
    r = c.post(url(state="dead", action="requeue"), {"ids": dead, "csrfmiddlewaretoken": token})
    assert r.status_code == 302
    assert get_queue("default").get(dead[0]).state == "pending"


def test_unknown_queue_or_state_is_404(admin):
    assert admin.get(url("nope", "pending")).status_code == 404
    assert admin.get(url("default", "running")).status_code == 404
    assert admin.get(job_url("x", queue="nope")).status_code == 404
    assert admin.post(url("default", "pending", "requeue"), {"ids": ["x"]}).status_code == 404
    assert admin.post(url("default", "inflight", "purge"), {"confirmed": "yes"}).status_code == 404


# ------------------------------------------------------------------ pages

def test_dashboard_shows_counts_ages_and_liveness(admin):
    inflight = make_inflight(2, worker="w-alive")
    make_dead(1)
    make_pending(3)
    make_scheduled(4)
    q = get_queue("default")
    get_client().zadd(q.keys.inflight, {inflight[0][0]: 1000}, xx=True)  # this lease ran out long ago
    r = admin.get(BASE)
    assert r.status_code == 200
    rows = {row["name"]: row for row in r.context["rows"]}
    assert list(rows) == list(get_settings().queues)
    s = rows["default"]["stats"]
    assert (s["pending"], s["inflight"], s["scheduled"], s["dead"], s["expired_leases"]) == (3, 2, 4, 1, 1)
    assert rows["default"]["workers"] == ["w-alive", "worker-dead"]
    assert rows["default"]["janitors"] == []
    page = text_of(r)
    assert "1 expired" in page
    assert f'href="{url(state="dead")}"' in page
    assert rows["other"]["stats"]["pending"] == 0 and rows["other"]["workers"] == []
    Janitor(queues=["other"]).run_once()
    rows = {row["name"]: row for row in admin.get(BASE).context["rows"]}
    assert rows["other"]["janitors"] and not rows["default"]["janitors"]


def test_dashboard_shows_jobs_done_and_failed_in_the_last_minute_and_hour(admin):
    q = get_queue("default")
    seconds, micros = get_client().time()
    bucket = (seconds * 1000 + micros // 1000) // 10_000
    get_client().hset(q.keys.rates, mapping={
        str((bucket - 2) % 360): f"{bucket - 2} 7 0",
        str((bucket - 100) % 360): f"{bucket - 100} 40 3",
    })
    page = re.sub(r"<[^>]+>", "", text_of(admin.get(BASE)))
    assert "7 / 0" in page  # the last minute: done / failed
    assert "47 / 3" in page  # the last hour


def test_list_pages_use_fixed_size_pages_and_both_orders(admin):
    ids = make_pending(120)
    r = admin.get(url(state="pending"))
    listed = [row["job"].id for row in r.context["rows"]]
    assert listed == ids[:50]
    assert r.context["pages"] == 3 and "1–50 of 120" in text_of(r)
    r = admin.get(url(state="pending"), {"page": 3})
    assert [row["job"].id for row in r.context["rows"]] == ids[100:]
    r = admin.get(url(state="pending"), {"order": "newest"})
    assert [row["job"].id for row in r.context["rows"]] == ids[::-1][:50]
    r = admin.get(url(state="pending"), {"order": "newest", "page": 2})
    assert [row["job"].id for row in r.context["rows"]] == ids[::-1][50:100]
    assert "order=newest" in r.context["next_url"] and "page=3" in r.context["next_url"]
    # Out-of-range and nonsense page numbers land on a real page.
    assert admin.get(url(state="pending"), {"page": 999}).context["page"] == 3
    assert admin.get(url(state="pending"), {"page": "x"}).context["page"] == 1


def test_list_columns_per_state(admin):
    make_inflight(2, worker="worker-7")
    dead = make_dead(1, reason="failed 3 times: KeyError: 'x'")
    make_pending(1, "default", "long " * 40)
    preview = admin.get(url(state="pending")).context["rows"][0]["preview"]
    assert len(preview) == 80 and preview.endswith("…")

    q = get_queue("default")
    expired_id = q.inflight(0, 1)[0].id
    get_client().zadd(q.keys.inflight, {expired_id: 1000}, xx=True)
    r = admin.get(url(state="inflight"))
    page = text_of(r)
    assert "worker-7" in page and "Lease deadline" in page
    expired = {row["job"].id: row["expired"] for row in r.context["rows"]}
    assert expired[expired_id] is True and list(expired.values()).count(True) == 1
    assert page.count(" rq-expired\"") == 1

    make_scheduled(1)
    r = admin.get(url(state="scheduled"))
    assert r.context["rows"][0]["scheduled_for"] > timezone.now() + timedelta(minutes=59)

    r = admin.get(url(state="dead"))
    assert r.context["rows"][0]["job"].id == dead[0]
    assert "failed 3 times: KeyError: &#x27;x&#x27;" in text_of(r)
    assert r.context["rows"][0]["dead_at"] is not None


def test_search_by_exact_job_id(admin):
    dead = make_dead(1)
    ids = make_pending(3)
    r = admin.get(url(state="pending"), {"q": ids[1]})
    assert [row["job"].id for row in r.context["rows"]] == [ids[1]]
    r = admin.get(url(state="pending"), {"q": dead[0]})
    assert [row["job"].id for row in r.context["rows"]] == dead
    assert "it is <strong>dead</strong>" in text_of(r)
    r = admin.get(url(state="pending"), {"q": ids[1][:-1]})  # exact, not a prefix search
    assert r.context["rows"] == [] and "No job with id" in text_of(r)


def test_job_detail_shows_envelope_errors_and_local_times(admin):
    job_id = make_dead(1, "default", "failed: ValueError: boom", "boom", {"nested": [1, 2]})[0]
    with override_settings(TIME_ZONE="Asia/Tokyo"):
        r = admin.get(job_url(job_id))
    assert r.status_code == 200
    page = text_of(r)
    envelope = json.loads(r.context["envelope"])
    assert envelope["id"] == job_id and envelope["args"] == [0, {"nested": [1, 2]}]
    assert r.context["envelope"].startswith("{\n  ")  # pretty
    assert "Traceback (most recent call last)" in page and "ValueError: boom" in page
    # The error happened at 1_700_000_000 s = 2023-11-14 22:13:20 UTC = 07:13:20 the next day in Tokyo.
    assert "2023-11-15 07:13:20 JST" in page
    assert r.context["time_zone"] == "Asia/Tokyo"
    enqueued = r.context["row"]["enqueued_at"]
    assert enqueued.utcoffset() == timedelta(hours=9)


def test_job_detail_of_unknown_job_is_404(admin):
    r = admin.get(job_url("no-such-job"))
    assert r.status_code == 404 and "No job with id" in text_of(r)


def test_malformed_entries_are_shown_not_run(admin):
    q = get_queue("default")
    get_client().hset(q.keys.jobs, "bad-1", "{not json " + XSS)
    get_client().rpush(q.keys.pending, "bad-1")
    r = admin.get(url(state="pending"))
    assert "malformed" in text_of(r) and XSS not in text_of(r)
    r = admin.get(job_url("bad-1"))
    assert r.status_code == 200 and "not valid JSON" in text_of(r) and XSS not in text_of(r)


# ------------------------------------------------------------------ escaping

def test_payloads_errors_and_reasons_are_escaped(admin):
    dead = make_dead(2, "default", f"reason {XSS}", f"message {XSS}", XSS, {"k": XSS})
    pages = [admin.get(url(state="dead")), admin.get(job_url(dead[0])),
             admin.post(url(state="dead", action="requeue"), {"ids": dead}),  # confirmation page
             admin.post(url(state="dead", action="delete"), {"ids": dead}),
             admin.get(url(state="dead"), {"q": XSS})]
    for r in pages:
        page = text_of(r)
        assert r.status_code in (200,), r.status_code
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page


# ------------------------------------------------------------------ actions

def test_requeue_one_dead_job_keeps_id_and_history_and_resets_attempts(admin, admin_user):
    q = get_queue("default")
    job_id = make_dead(1)[0]
    assert q.get(job_id).attempts == 1
    with requeued_signals() as seen:
        r = admin.post(url(state="dead", action="requeue"), {"ids": [job_id], "next": "job"})
    assert r.status_code == 302 and r["Location"] == job_url(job_id)  # no confirmation for one job
    job = q.get(job_id)
    assert job.state == "pending" and job.attempts == 0 and job.errors[0]["message"] == "boom"
    assert q.pending(0, 10) and [j.id for j in q.pending(0, 10)] == [job_id]
    assert len(seen) == 1 and seen[0]["source"] == "admin" and seen[0]["user"] == admin_user
    assert seen[0]["job"].id == job_id and seen[0]["previous_state"] == "dead"
    assert "Requeued 1 dead job(s)." in follow_messages(admin, r)


def test_requeue_selected_asks_for_confirmation_then_logs(admin, caplog):
    q = get_queue("default")
    dead = make_dead(3)
    r = admin.post(url(state="dead", action="requeue"), {"ids": dead[:2]})
    assert r.status_code == 200 and r.context["title"] == "Are you sure?"
    page = text_of(r)
    assert dead[0] in page and dead[1] in page and dead[2] not in page
    assert q.stats()["dead"] == 3  # nothing happened yet
    with caplog.at_level(logging.INFO, logger="reliable_queue.admin"):
        r = admin.post(url(state="dead", action="requeue"), {"ids": dead[:2], "confirmed": "yes"})
    assert r.status_code == 302 and r["Location"] == url(state="dead")
    assert [j.id for j in q.pending(0, 10)] == dead[:2]
    assert q.get(dead[2]).state == "dead"
    logged = [rec.getMessage() for rec in caplog.records if rec.name == "reliable_queue.admin"]
    assert any("root requeued 2 dead job(s) of queue default" in m and dead[0] in m for m in logged)


def test_requeue_all_dead(admin):
    q = get_queue("default")
    dead = make_dead(3)
    r = admin.post(url(state="dead", action="requeue"), {"all": "1"})
    assert r.status_code == 200 and "all 3 dead job(s)" in text_of(r)
    with requeued_signals() as seen:
        r = admin.post(url(state="dead", action="requeue"), {"all": "1", "confirmed": "yes"})
    assert r.status_code == 302
    assert sorted(j.id for j in q.pending(0, 10)) == sorted(dead) and q.stats()["dead"] == 0
    assert {s["source"] for s in seen} == {"admin"} and len(seen) == 3


def test_requeue_into_another_queue(admin, admin_user):
    src, dst = get_queue("default"), get_queue("other")
    dead = make_dead(3)
    r = admin.post(url(state="dead", action="requeue"), {"ids": dead[:1], "target": "other"})
    assert r.status_code == 200 and "into queue “other”" in text_of(r)  # a move is always confirmed
    with requeued_signals() as seen:
        r = admin.post(url(state="dead", action="requeue"), {"ids": dead[:1], "target": "other", "confirmed": "yes"})
    assert r.status_code == 302
    moved = dst.get(dead[0])
    assert moved.state == "pending" and moved.queue == "other" and moved.attempts == 0
    assert moved.errors and moved.errors[0]["message"] == "boom" and moved.args == [0]
    assert src.get(dead[0]) is None
    assert seen[0]["queue"] == "other" and seen[0]["user"] == admin_user and seen[0]["from_queue"] == "default"
    r = admin.post(url(state="dead", action="requeue"), {"all": "1", "target": "other", "confirmed": "yes"})
    assert r.status_code == 302
    assert src.stats()["dead"] == 0 and sorted(j.id for j in dst.pending(0, 10)) == sorted(dead)
    # Only dead jobs move between queues, and only into configured ones.
    pending = make_pending(1)
    r = admin.post(url(state="dead", action="requeue"), {"ids": dead[:1], "target": "nope", "confirmed": "yes"})
    assert any("only be requeued into a configured queue" in m for m in follow_messages(admin, r))
    r = admin.post(url(state="scheduled", action="requeue"), {"ids": pending, "target": "other", "confirmed": "yes"})
    assert any("only dead ones into another queue" in m for m in follow_messages(admin, r))


def test_move_dead_leaves_jobs_that_are_not_dead_alone():
    src, dst = get_queue("default"), get_queue("other")
    dead = make_dead(1)[0]
    pending = make_pending(1)[0]
    get_client().hset(dst.keys.jobs, dead, "{}")  # an id clash in the target: refused, not overwritten
    assert src.move_dead("other", [pending, dead, "missing"]) == 0
    assert src.get(pending).state == "pending" and src.get(dead).state == "dead"
    get_client().hdel(dst.keys.jobs, dead)
    assert src.move_dead("other", [dead]) == 1 and dst.get(dead).state == "pending"


def test_requeue_never_duplicates_a_job_that_moved_on(admin):
    q = get_queue("default")
    dead = make_dead(2)
    confirm = admin.post(url(state="dead", action="requeue"), {"ids": dead})
    assert confirm.status_code == 200
    q.requeue(dead[0])  # somebody else requeued it meanwhile
    r = admin.post(url(state="dead", action="requeue"), {"ids": dead, "confirmed": "yes"})
    msgs = follow_messages(admin, r)
    assert "Requeued 1 dead job(s)." in msgs and any("Skipped 1 job(s)" in m for m in msgs)
    assert sorted(j.id for j in q.pending(0, 10)) == sorted(dead)  # each exactly once
    assert q.stats()["pending"] == 2


def test_force_requeue_inflight_warns_and_fences_the_old_worker(admin):
    q = get_queue("default")
    [(job_id, token)] = make_inflight(1, worker="stuck-worker")
    r = admin.post(url(state="inflight", action="requeue"), {"ids": [job_id], "next": "job"})
    assert r.status_code == 200 and "may still be running" in text_of(r)
    assert q.get(job_id).state == "inflight"
    r = admin.post(url(state="inflight", action="requeue"), {"ids": [job_id], "next": "job", "confirmed": "yes"})
    assert r.status_code == 302 and r["Location"] == job_url(job_id)
    assert q.get(job_id).state == "pending"
    results, _, _ = q._fetch("stuck-worker", [(job_id, token)], 0)
    assert results == [0]  # the old worker's ack is refused: lease lost
    assert q.get(job_id).state == "pending"


def test_run_scheduled_now(admin):
    q = get_queue("default")
    ids = make_scheduled(3)
    r = admin.post(url(state="scheduled", action="requeue"), {"ids": ids[:1]})
    assert r.status_code == 302  # one job: no confirmation
    assert q.get(ids[0]).state == "pending"
    r = admin.post(url(state="scheduled", action="requeue"), {"ids": ids[1:]})
    assert r.status_code == 200 and "Run 2 scheduled job(s) now?" in text_of(r)
    r = admin.post(url(state="scheduled", action="requeue"), {"ids": ids[1:], "confirmed": "yes"})
    assert "2 scheduled job(s) will run now" in follow_messages(admin, r)[0]
    assert [j.id for j in q.pending(0, 10)] == ids


def test_delete_is_confirmed_for_one_and_many(admin):
    q = get_queue("default")
    dead = make_dead(3)
    pending = make_pending(1)
    r = admin.post(url(state="dead", action="delete"), {"ids": dead[:1], "next": "job"})
    assert r.status_code == 200 and "Delete 1 dead job(s)" in text_of(r)
    assert q.get(dead[0]) is not None
    r = admin.post(url(state="dead", action="delete"), {"ids": dead[:1], "next": "job", "confirmed": "yes"})
    assert r.status_code == 302 and r["Location"] == url(state="dead")  # the job page is gone
    assert q.get(dead[0]) is None
    r = admin.post(url(state="dead", action="delete"), {"ids": dead[1:], "confirmed": "yes"})
    assert "Deleted 2 dead job(s)." in follow_messages(admin, r)
    assert q.stats()["dead"] == 0
    r = admin.post(url(state="pending", action="delete"), {"ids": pending, "confirmed": "yes"})
    assert r.status_code == 302 and q.get(pending[0]) is None


def test_purge_each_state(admin, caplog):
    q = get_queue("default")
    make_dead(3)
    make_pending(4)
    make_scheduled(2)
    for state, count in (("pending", 4), ("scheduled", 2), ("dead", 3)):
        r = admin.post(url(state=state, action="purge"))
        assert r.status_code == 200 and f"delete all {count}" in text_of(r)
        assert q.stats()[state] == count
        with caplog.at_level(logging.WARNING, logger="reliable_queue.admin"):
            r = admin.post(url(state=state, action="purge"), {"confirmed": "yes"})
        assert f"Purged {count}" in follow_messages(admin, r)[0]
        assert q.stats()[state] == 0
    assert sum("purged" in rec.getMessage() for rec in caplog.records if rec.name == "reliable_queue.admin") == 3


def test_nothing_selected(admin):
    r = admin.post(url(state="dead", action="requeue"), {})
    assert "No jobs were selected" in follow_messages(admin, r)[0]
    r = admin.post(url(state="dead", action="delete"), {})
    assert "No jobs were selected" in follow_messages(admin, r)[0]


# --------------------------------------------------- sites, Redis, secrets

def test_custom_admin_site(admin_user):
    job_id = make_dead(1)[0]
    c = web(admin_user)
    r = c.get("/ops/reliable_queue/dashboard/")
    assert r.status_code == 200 and r.context["site_header"] == "Operations"
    assert 'href="/ops/reliable_queue/dashboard/default/dead/"' in text_of(r)
    r = c.get(f"/ops/reliable_queue/dashboard/default/job/{job_id}/")
    assert r.status_code == 200 and 'action="/ops/reliable_queue/dashboard/default/dead/requeue/"' in text_of(r)
    r = c.post("/ops/reliable_queue/dashboard/default/dead/requeue/", {"ids": [job_id]})
    assert r["Location"] == "/ops/reliable_queue/dashboard/default/dead/"
    anon = web().get("/ops/reliable_queue/dashboard/")
    assert anon.status_code == 302 and anon["Location"].startswith("/ops/login/")


@contextmanager
def redis_url(settings, url: str):
    """Point the queues at another Redis for a while (restored before the key cleanup runs)."""
    original = settings.RELIABLE_QUEUE
    settings.RELIABLE_QUEUE = {**original, "REDIS_URL": url}
    try:
        yield
    finally:
        settings.RELIABLE_QUEUE = original


def test_a_queue_with_a_wrong_type_key_is_reported_in_its_row_and_the_others_still_show(admin):
    make_pending(2)
    get_client().set(get_queue("other").keys.rates, "not a hash")  # written by something else
    r = admin.get(BASE)
    assert r.status_code == 200
    rows = {row["name"]: row for row in r.context["rows"]}
    assert "WRONGTYPE reliable_queue" in rows["other"]["error"] and "rates" in rows["other"]["error"]
    assert rows["default"]["stats"]["pending"] == 2
    assert "Redis refused this queue's statistics" in text_of(r)


def test_redis_down_is_a_clear_error(admin, settings):
    with redis_url(settings, f"redis://:hunter2-secret@127.0.0.1:{find_free_port()}/0"):
        for page in (BASE, url(state="dead"), job_url("abc")):
            r = admin.get(page)
            assert r.status_code == 503, page
            assert "ConnectionError" in text_of(r)
            assert "hunter2" not in text_of(r)
            assert "redis://:***@127.0.0.1:" in text_of(r)


def test_redis_password_never_appears(admin, settings):
    password = "s3cret-Pa55word"
    with RedisServer() as server:
        redis.Redis(port=server.port).config_set("requirepass", password)
        with redis_url(settings, f"redis://:{password}@127.0.0.1:{server.port}/0"):
            dead = make_dead(1)
            pages = [admin.get(BASE), admin.get(url(state="dead")), admin.get(job_url(dead[0])),
                     admin.post(url(state="dead", action="requeue"), {"all": "1"})]
            for r in pages:
                assert r.status_code == 200
                assert password not in text_of(r)
            assert "redis://:***@127.0.0.1" in text_of(pages[0])
        with redis_url(settings, f"redis://:wrong-{password}@127.0.0.1:{server.port}/0"):
            r = admin.get(BASE)
            assert r.status_code == 503 and password not in text_of(r) and "AuthenticationError" in text_of(r)
        redis.Redis(port=server.port, password=password).config_set("requirepass", "")  # so stop() can SHUTDOWN


def test_timestamps_follow_the_active_time_zone(admin):
    make_dead(1)
    with timezone.override("America/New_York"):
        row = admin.get(url(state="dead")).context["rows"][0]
    utc = row["dead_at"].astimezone(dt_timezone.utc)
    assert row["dead_at"].tzinfo is not None and row["dead_at"].utcoffset() in (timedelta(hours=-5), timedelta(hours=-4))
    assert abs(utc - datetime.now(dt_timezone.utc)) < timedelta(hours=1)
