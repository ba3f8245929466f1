"""Shared fixtures: a Redis key prefix of each test's own, cleaned up afterwards.

The suite talks to a real Redis (see tests/settings.py for which one). It never
flushes: each test gets a unique ``PREFIX`` and deletes exactly the keys under it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings

from reliable_queue import conf
from reliable_queue.connection import get_client

ROOT = Path(__file__).resolve().parent.parent


def pytest_report_header(config):
    return f"redis: {django_settings.REDIS_URL} ({django_settings.REDIS_DESCRIPTION})"


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)


@pytest.fixture(autouse=True)
def rq_prefix(settings):
    """Give the test its own key prefix; delete its keys afterwards."""
    prefix = f"rqtest-{uuid.uuid4().hex[:12]}"
    settings.RELIABLE_QUEUE = {**django_settings.RELIABLE_QUEUE, "PREFIX": prefix}
    conf.reset()
    yield prefix
    # A test may have left RELIABLE_QUEUE broken on purpose: clean up with a
    # client of our own rather than the one the settings would build.
    cleaner = redis.Redis.from_url(django_settings.REDIS_URL)
    try:
        delete_prefix(cleaner, prefix)
    finally:
        cleaner.close()
        conf.reset()


@pytest.fixture
def client():
    return get_client()


@pytest.fixture
def manage(rq_prefix):
    """Run ``manage.py``-style commands in a child process sharing this test's Redis and prefix."""

    def env(**extra: str) -> dict[str, str]:
        e = dict(os.environ)
        e.update({
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "RQ_TEST_REDIS_URL": django_settings.REDIS_URL,
            "RQ_TEST_PREFIX": rq_prefix,
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        })
        e.update(extra)
        return e

    def start(*args: str, **extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "django", *args], cwd=ROOT, env=env(**extra),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

    started: list[subprocess.Popen] = []

    def spawn(*args: str, **extra: str) -> subprocess.Popen:
        proc = start(*args, **extra)
        started.append(proc)
        return proc

    spawn.env = env  # type: ignore[attr-defined]
    yield spawn
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
