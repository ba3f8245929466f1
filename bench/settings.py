"""Django settings for the bench: the worker processes and the bench's own API calls.

The Redis URL comes from ``BENCH_REDIS_URL``, which ``bench/run.py`` sets to the
redis-server it started for the run; there is deliberately no default, so the
bench never writes to a Redis it did not start. Everything else is what a project
would leave at its defaults.
"""

import os

from django.core.exceptions import ImproperlyConfigured

try:
    REDIS_URL = os.environ["BENCH_REDIS_URL"]
except KeyError:
    raise ImproperlyConfigured("BENCH_REDIS_URL is not set: bench/run.py sets it to the Redis it starts.") from None

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = ["reliable_queue", "bench.apps.BenchConfig"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

RELIABLE_QUEUE = {
    "REDIS_URL": REDIS_URL,
    "PREFIX": "bench",
    "QUEUES": {"default": {}},
}
