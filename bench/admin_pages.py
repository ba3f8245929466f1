"""How fast the admin pages render on a huge queue (server side, Django test client).

    .venv/bin/python bench/admin_pages.py [--pending 1000000] [--inflight 10000]
                                          [--dead 100000] [--scheduled 10000] [--repeat 30]

Starts a private redis-server (reliable_queue.embedded.RedisServer) so no other
data is touched, fills one queue through the same key layout the scripts write
(pipelined bulk writes: HSET of envelopes, RPUSH/ZADD of ids; the in-flight jobs
are leased by the real fetch script), then renders each admin page ``--repeat``
times with Django's test client (without the test environment's template
instrumentation, so what is timed is the view and its rendering), logged in as a superuser, and prints the median
and 90th percentile in milliseconds. The first render of each page is a warm-up
and is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUEUE = "orders"
CHUNK = 10_000


def configure(redis_url: str) -> None:
    import django
    from django.conf import settings

    urls = types.ModuleType("rq_bench_admin_urls")
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only",
        USE_TZ=True,
        TIME_ZONE="Europe/Paris",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=urls.__name__,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        INSTALLED_APPS=[
            "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
            "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
            "reliable_queue",
        ],
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        TEMPLATES=[{
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {"context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]},
        }],
        STATIC_URL="/static/",
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        LOGGING={"version": 1, "disable_existing_loggers": False,
                 "loggers": {"reliable_queue": {"level": "ERROR"}}},
        RELIABLE_QUEUE={
            "REDIS_URL": redis_url,
            "PREFIX": "rqbench",
            "QUEUES": {QUEUE: {"visibility_timeout": 3600}, "emails": {}, "reports": {}},
        },
    )
    sys.modules[urls.__name__] = urls
    django.setup()
    from django.contrib import admin
    from django.urls import path

    urls.urlpatterns = [path("admin/", admin.site.urls)]


def envelope(job_id: str, n: int, now: float) -> str:
    return json.dumps({
        "id": job_id, "task": "shop.tasks.send_invoice", "queue": QUEUE,
        "args": [n, f"customer-{n % 9973}@example.com"],
        "kwargs": {"currency": "EUR", "lines": [{"sku": f"SKU-{n % 1000}", "qty": 1 + n % 5}]},
        "enqueued_at": round(now - 3600 + n / 1000, 3),
    }, separators=(",", ":"))


def fill(args: argparse.Namespace) -> dict[str, str]:
    from reliable_queue import get_queue

    q = get_queue(QUEUE)
    r = q.client
    k = q.keys
    now = time.time()
    sample: dict[str, str] = {}

    def write_pending(prefix: str, count: int) -> list[str]:
        first = []
        for start in range(0, count, CHUNK):
            ids = [f"{prefix}{i:08d}" for i in range(start, min(count, start + CHUNK))]
            pipe = r.pipeline(transaction=False)
            pipe.hset(k.jobs, mapping={i: envelope(i, n, now) for n, i in enumerate(ids, start)})
            pipe.rpush(k.pending, *ids)
            pipe.execute()
            first = first or ids[:1]
        return first

    t0 = time.perf_counter()
    # In flight: enqueue, then lease them with the real fetch script (1,000 per call).
    write_pending("run-", args.inflight)
    leased = 0
    while leased < args.inflight:
        _, got, _ = q._fetch(f"web-{leased // 2500}.example.internal.{4000 + leased // 2500}", [],
                             min(1000, args.inflight - leased))
        leased += len(got)
    sample["inflight"] = q.inflight(0, 1)[0].id
    # Dead: what the bury/fail scripts leave behind, written in bulk.
    record = json.dumps([{
        "attempt": 5, "at": int(now * 1000) - 60_000, "type": "ConnectionError",
        "message": "upstream payment gateway timed out after 30s",
        "traceback": 'Traceback (most recent call last):\n  File "/srv/app/shop/tasks.py", line 42, in send_invoice\n'
                     "    gateway.charge(invoice)\n" * 8 + "ConnectionError: upstream payment gateway timed out after 30s\n",
    }] * 5)
    for start in range(0, args.dead, CHUNK):
        ids = [f"dead-{i:08d}" for i in range(start, min(args.dead, start + CHUNK))]
        pipe = r.pipeline(transaction=False)
        pipe.hset(k.jobs, mapping={i: envelope(i, n, now) for n, i in enumerate(ids, start)})
        pipe.zadd(k.dead, {i: int(now * 1000) - 86_400_000 + n for n, i in enumerate(ids, start)})
        pipe.hset(k.reasons, mapping={i: "failed 5 times: ConnectionError: upstream payment gateway timed out" for i in ids})
        pipe.hset(k.errors, mapping={i: record for i in ids})
        pipe.hset(k.attempts, mapping={i: 5 for i in ids})
        pipe.execute()
    sample["dead"] = f"dead-{args.dead // 2:08d}"
    for start in range(0, args.scheduled, CHUNK):
        ids = [f"later-{i:08d}" for i in range(start, min(args.scheduled, start + CHUNK))]
        pipe = r.pipeline(transaction=False)
        pipe.hset(k.jobs, mapping={i: envelope(i, n, now) for n, i in enumerate(ids, start)})
        pipe.zadd(k.scheduled, {i: int(now * 1000) + 3_600_000 + n for n, i in enumerate(ids, start)})
        pipe.execute()
    sample["pending"] = write_pending("job-", args.pending)[0]
    stats = q.stats()
    print(f"filled queue {QUEUE!r} in {time.perf_counter() - t0:.1f} s: pending={stats['pending']:,} "
          f"inflight={stats['inflight']:,} scheduled={stats['scheduled']:,} dead={stats['dead']:,}; "
          f"Redis used_memory={r.info('memory')['used_memory_human']}")
    return sample


def measure(client, url: str, repeat: int) -> list[float]:
    response = client.get(url)  # warm-up (template loading, script registration)
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--inflight", type=int, default=10_000)
    parser.add_argument("--dead", type=int, default=100_000)
    parser.add_argument("--scheduled", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    from reliable_queue.embedded import RedisServer

    with RedisServer() as server:
        configure(server.url)
        from django.contrib.auth.models import User
        from django.core.management import call_command
        from django.test import Client
        call_command("migrate", verbosity=0)
        client = Client()
        client.force_login(User.objects.create_superuser("bench", "bench@example.com", "bench"))
        sample = fill(args)

        base = f"/admin/reliable_queue/dashboard/{QUEUE}/"
        deep = max(1, args.pending // 50 // 2)
        dead_deep = max(1, args.dead // 50 // 2)
        pages = [
            ("dashboard (3 queues)", "/admin/reliable_queue/dashboard/"),
            ("pending, page 1 (oldest first)", f"{base}pending/"),
            ("pending, page 1 (newest first)", f"{base}pending/?order=newest"),
            (f"pending, page {deep:,} (middle)", f"{base}pending/?page={deep}"),
            ("pending, search by id", f"{base}pending/?q={sample['pending']}"),
            ("in flight, page 1", f"{base}inflight/"),
            ("scheduled, page 1", f"{base}scheduled/"),
            ("dead, page 1 (newest first)", f"{base}dead/"),
            (f"dead, page {dead_deep:,} (middle)", f"{base}dead/?page={dead_deep}"),
            ("job detail (dead, 5 errors)", f"{base}job/{sample['dead']}/"),
            ("job detail (in flight)", f"{base}job/{sample['inflight']}/"),
            ("job detail (pending)", f"{base}job/{sample['pending']}/"),
        ]
        print(f"\n{'page':<36} {'median ms':>10} {'p90 ms':>8}   ({args.repeat} renders each, Django test client)")
        for label, url in pages:
            times = sorted(measure(client, url, args.repeat))
            p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
            print(f"{label:<36} {statistics.median(times):>10.1f} {p90:>8.1f}")

        # The two biggest actions, once each (confirmed POSTs, as the confirmation page sends them).
        print(f"\n{'action (once)':<36} {'seconds':>10}")
        for label, action, data in (
            (f"requeue all {args.dead:,} dead", "dead/requeue/", {"all": "1", "confirmed": "yes"}),
            (f"purge {args.pending + args.dead:,} pending", "pending/purge/", {"confirmed": "yes"}),
        ):
            t = time.perf_counter()
            response = client.post(f"{base}{action}", data)
            assert response.status_code == 302, (action, response.status_code)
            print(f"{label:<36} {time.perf_counter() - t:>10.2f}")


if __name__ == "__main__":
    os.environ.pop("DJANGO_SETTINGS_MODULE", None)
    main()
