"""The admin dashboard in a real headless Chromium, against pytest-django's live server.

Needs Debian's ``chromium`` (``apt-get install chromium``) and Playwright for
Python (``pip install playwright``; its own browser download is not used). When
either is missing these tests are skipped, saying which.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from reliable_queue import get_queue

CHROMIUM = os.environ.get("RQ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None

if sync_playwright is None:
    pytest.skip("Playwright for Python is not installed (pip install playwright)", allow_module_level=True)
if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)) and not shutil.which("chromium"):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set RQ_CHROMIUM)", allow_module_level=True)

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls
# are still synchronous, so Django's async-safety check would refuse them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from tests.test_admin import make_dead, make_pending  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/admin/reliable_queue/dashboard/"


@pytest.fixture(scope="module")
def browser():
    executable = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.set_default_timeout(15_000)
    try:
        yield p
    finally:
        context.close()


@pytest.fixture
def operator(django_user_model):
    django_user_model.objects.create_superuser("operator", "operator@example.com", "correct horse battery")
    return "operator", "correct horse battery"


def log_in(page, live_server, credentials, next_path: str) -> None:
    page.goto(f"{live_server.url}/admin/login/?next={next_path}")
    page.fill("#id_username", credentials[0])
    page.fill("#id_password", credentials[1])
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}{next_path}")


def test_requeue_two_dead_jobs_through_the_confirmation_page(page, live_server, operator):
    q = get_queue("default")
    dead = make_dead(3, "default", "failed 3 times: ValueError: boom", "boom")
    waiting = make_pending(1)

    log_in(page, live_server, operator, f"{BASE}default/dead/")
    expect(page.locator("h1")).to_contain_text("Dead letter jobs")
    for job_id in dead:
        expect(page.locator(f"#rq-jobs a:text-is('{job_id}')")).to_be_visible()

    page.check(f"input.rq-select[value='{dead[0]}']")
    page.check(f"input.rq-select[value='{dead[2]}']")
    page.click("button:has-text('Requeue selected')")

    # The confirmation page lists exactly the two jobs; nothing has moved yet.
    expect(page.locator("h1")).to_have_text("Are you sure?")
    expect(page.locator("#rq-jobs tbody tr")).to_have_count(2)
    assert q.get(dead[0]).state == "dead"
    page.click("#rq-confirm-form input[type=submit]")

    page.wait_for_url(f"{live_server.url}{BASE}default/dead/*")
    expect(page.locator("ul.messagelist")).to_contain_text("Requeued 2 dead job(s).")
    expect(page.locator("#rq-jobs tbody tr")).to_have_count(1)
    expect(page.locator("#rq-jobs tbody")).to_contain_text(dead[1])

    page.click(".rq-tabs a:has-text('Pending')")
    rows = page.locator("#rq-jobs tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text(waiting[0])
    shown = {rows.nth(1).locator("th").inner_text().strip(), rows.nth(2).locator("th").inner_text().strip()}
    assert shown == {dead[0], dead[2]}
    pending = [j.id for j in q.pending(0, 10)]
    assert pending[0] == waiting[0] and sorted(pending[1:]) == sorted([dead[0], dead[2]])
    assert q.get(dead[1]).state == "dead"


def test_select_all_and_the_job_page(page, live_server, operator):
    dead = make_dead(2, "default", "failed: <script>alert(1)</script>", "<b>bold</b>")
    log_in(page, live_server, operator, f"{BASE}default/dead/")
    page.check("#rq-select-all")
    assert page.locator("input.rq-select:checked").count() == 2
    page.click(f"#rq-jobs a:text-is('{dead[0]}')")
    expect(page.locator("h1")).to_have_text(f"Job {dead[0]}")
    # Escaped: the markup is shown as text, not run or rendered.
    expect(page.locator("#content-main")).to_contain_text("failed: <script>alert(1)</script>")
    expect(page.locator("#content-main")).to_contain_text("<b>bold</b>")
    assert page.locator("#content-main b:text-is('bold')").count() == 0
    page.click("input[value='Requeue']")
    expect(page.locator("ul.messagelist")).to_contain_text("Requeued 1 dead job(s).")
    expect(page.locator("table.rq-detail")).to_contain_text("Pending")
