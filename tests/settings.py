"""Settings for the test suite.

Redis: ``RQ_TEST_REDIS_URL`` (set by the suite for the worker processes it
starts), else ``REDIS_URL``, else a Redis on 127.0.0.1:6379, else a redis-server
started for this run. Every test uses a key prefix of its own and deletes only
its own keys (see conftest.py): the suite never flushes a database.
"""

import os
import uuid

from reliable_queue.embedded import find_or_start_redis

if os.environ.get("RQ_TEST_REDIS_URL"):
    REDIS_URL = os.environ["RQ_TEST_REDIS_URL"]
    REDIS_DESCRIPTION = "given by the parent test process"
else:
    _handle = find_or_start_redis()
    REDIS_URL = _handle.url
    REDIS_DESCRIPTION = _handle.description
    os.environ["RQ_TEST_REDIS_URL"] = REDIS_URL

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "reliable_queue",
    "tests.testapp.apps.TestAppConfig",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
STATIC_URL = "/static/"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("RQ_TEST_DB", ":memory:"),
    }
}

PREFIX = os.environ.get("RQ_TEST_PREFIX") or f"rqtest-{uuid.uuid4().hex[:10]}"

RELIABLE_QUEUE = {
    "REDIS_URL": REDIS_URL,
    "PREFIX": PREFIX,
    "SOCKET_TIMEOUT": 5.0,
    "BLOCK_TIMEOUT": 0.5,
    "JANITOR_INTERVAL": 0.2,
    "DEFAULTS": {"visibility_timeout": 5, "max_attempts": 3, "retry_backoff": 0.05, "retry_backoff_max": 0.2},
    "QUEUES": {
        "default": {},
        "other": {},
        "short": {"visibility_timeout": 1},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"reliable_queue": {"handlers": ["console"], "level": os.environ.get("RQ_TEST_LOG", "WARNING")}},
}
