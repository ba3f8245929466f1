"""Make the admin screenshots in docs/ (admin-dashboard.png, admin-dead-letter.png).

    .venv/bin/python docs/make_screenshots.py

Starts a private redis-server, fills three queues with a few dozen jobs in each
state the way a running system does (a real worker fails some jobs into the
dead-letter queue with real tracebacks, a "crashed" worker leaves expired leases),
serves the admin on a free local port and photographs it with Debian's Chromium
through Playwright.
"""

from __future__ import annotations

import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def configure(redis_url: str, db_path: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False, SECRET_KEY="screenshots-only", USE_TZ=True, TIME_ZONE="Europe/Paris", ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="tests.urls", DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        INSTALLED_APPS=["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                        "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
                        "reliable_queue"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                    "django.middleware.csrf.CsrfViewMiddleware",
                    "django.contrib.auth.middleware.AuthenticationMiddleware",
                    "django.contrib.messages.middleware.MessageMiddleware"],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
                    "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                                       "django.contrib.auth.context_processors.auth",
                                                       "django.contrib.messages.context_processors.messages"]}}],
        STATIC_URL="/static/",
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db_path}},
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        LOGGING={"version": 1, "disable_existing_loggers": False, "root": {"level": "CRITICAL"}},
        RELIABLE_QUEUE={
            "REDIS_URL": redis_url, "PREFIX": "rq", "BLOCK_TIMEOUT": 0.2, "JANITOR_INTERVAL": 5,
            "DEFAULTS": {"max_attempts": 3, "retry_backoff": 0.01, "retry_backoff_max": 0.02},
            "QUEUES": {"default": {}, "emails": {}, "reports": {"visibility_timeout": 1}},
        },
    )
    django.setup()


def define_tasks():
    from reliable_queue import task

    @task(name="shop.tasks.send_invoice")
    def send_invoice(invoice_id, customer, currency="EUR"):
        return invoice_id

    @task(name="shop.tasks.sync_inventory")
    def sync_inventory(warehouse, skus):
        raise ConnectionError(f"inventory API of warehouse {warehouse} answered 503 Service Unavailable")

    @task(name="mail.tasks.send_welcome_email", queue="emails")
    def send_welcome_email(user_id, address):
        if address.endswith(".invalid"):
            raise ValueError(f"recipient refused: <{address}> (550 5.1.1 mailbox unavailable)")

    @task(name="reports.tasks.build_monthly_report", queue="reports")
    def build_monthly_report(account_id, month):
        return None

    return send_invoice, sync_inventory, send_welcome_email, build_monthly_report


def fill() -> None:
    from reliable_queue import get_queue
    from reliable_queue.janitor import Janitor
    from reliable_queue.worker import Worker

    rnd = random.Random(7)
    send_invoice, sync_inventory, send_welcome_email, build_monthly_report = define_tasks()
    # Dead letters with real tracebacks: a real worker runs these until their attempts are spent.
    for n in range(24):
        sync_inventory.enqueue(f"PAR-{n % 3 + 1}", [f"SKU-{rnd.randint(1000, 9999)}" for _ in range(rnd.randint(1, 4))])
    for n in range(9):
        send_welcome_email.enqueue(7000 + n, f"user{7000 + n}@example.invalid")
    for n in range(140):
        send_invoice.enqueue(40000 + n, f"customer-{rnd.randint(100, 999)}@example.com")
    for n in range(60):
        send_welcome_email.enqueue(8000 + n, f"user{8000 + n}@example.com")
    for _ in range(100):  # retries wait in "scheduled" a moment between bursts
        Worker(queues=["default", "emails"], burst=True, concurrency=2, name="worker-1.prod.4711").run(install_signals=False)
        left = [get_queue(n).stats() for n in ("default", "emails")]
        if not any(s["pending"] or s["scheduled"] or s["inflight"] for s in left):
            break
        time.sleep(0.05)
        for name in ("default", "emails"):
            get_queue(name)._promote()
    Janitor(name="janitor.prod.4790").run_once()
    # In flight: leased by a live worker (its heartbeat keeps them), and on "reports" by
    # one that went away (visibility timeout 1 s: their leases run out below).
    for n in range(32):
        send_invoice.enqueue(41000 + n, f"customer-{rnd.randint(100, 999)}@example.com")
    get_queue("default")._fetch("worker-2.prod.4712", [], 32)
    for n in range(7):
        build_monthly_report.enqueue(300 + n, "2025-11")
    get_queue("reports")._fetch("worker-3.prod.5120", [], 4)
    # Pending and scheduled.
    for n in range(48):
        send_invoice.enqueue(42000 + n, f"customer-{rnd.randint(100, 999)}@example.com", currency=rnd.choice(["EUR", "USD"]))
    for n in range(37):
        send_welcome_email.enqueue(9000 + n, f"user{9000 + n}@example.com")
    for n in range(26):
        send_invoice.enqueue_in(rnd.randint(60, 7200), 43000 + n, f"customer-{rnd.randint(100, 999)}@example.com")
    for n in range(12):
        build_monthly_report.enqueue_in(rnd.randint(600, 86400), 400 + n, "2025-12")
    time.sleep(1.3)
    get_queue("default")._extend("worker-2.prod.4712", [])  # the live worker's heartbeat


def serve() -> str:
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=False)
    server.set_app(StaticFilesHandler(WSGIHandler()))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def main() -> None:
    from playwright.sync_api import sync_playwright

    from reliable_queue.embedded import RedisServer

    out = ROOT / "docs"
    with RedisServer() as redis_server, tempfile.TemporaryDirectory() as tmp:
        configure(redis_server.url, str(Path(tmp) / "db.sqlite3"))
        from django.contrib.auth.models import User
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        User.objects.create_superuser("operator", "ops@example.com", "screenshots")
        fill()
        base = serve()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1560, "height": 700})
            page.goto(f"{base}/admin/login/?next=/admin/reliable_queue/dashboard/")
            page.fill("#id_username", "operator")
            page.fill("#id_password", "screenshots")
            page.click("input[type=submit]")
            page.wait_for_url("**/admin/reliable_queue/dashboard/")
            page.screenshot(path=str(out / "admin-dashboard.png"), full_page=True)
            page.goto(f"{base}/admin/reliable_queue/dashboard/default/dead/")
            page.check("#rq-jobs tbody tr:nth-child(2) input.rq-select")
            page.check("#rq-jobs tbody tr:nth-child(3) input.rq-select")
            page.set_viewport_size({"width": 1560, "height": 900})
            page.screenshot(path=str(out / "admin-dead-letter.png"))
            browser.close()
    print(f"wrote {out / 'admin-dashboard.png'} and {out / 'admin-dead-letter.png'}")


if __name__ == "__main__":
    main()
