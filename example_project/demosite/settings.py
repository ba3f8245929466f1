"""Settings of the example project.

Read from the environment, so the demo and its worker processes agree:

``REDIS_URL``        the Redis to use (default redis://127.0.0.1:6379/0)
``RQDEMO_PREFIX``    key prefix of every queue key (default ``rqdemo``); the demo
                     uses ``rqdemo-<random>`` so each run has keys of its own
``RQDEMO_DB``        path of the SQLite database (default example_project/db.sqlite3)

Visibility timeouts, retry backoff and the janitor interval are short so that a
killed worker's jobs come back within a few seconds.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "example-project-only-not-secret"
DEBUG = os.environ.get("RQDEMO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "demosite.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "reliable_queue",
    "indexer",
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

# Several worker processes (two threads each) write at once: WAL lets readers
# run beside the one writer, IMMEDIATE transactions take the write lock up front
# (no lock upgrade that could fail half-way) and the timeout lets a writer wait
# for the lock instead of failing.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("RQDEMO_DB") or str(BASE_DIR / "db.sqlite3"),
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        },
    }
}

RELIABLE_QUEUE = {
    "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
    "PREFIX": os.environ.get("RQDEMO_PREFIX") or "rqdemo",
    "SOCKET_TIMEOUT": 5.0,
    "BLOCK_TIMEOUT": 1.0,
    "JANITOR_INTERVAL": 0.5,
    "DEFAULTS": {
        "visibility_timeout": 3,
        "max_attempts": 5,
        "retry_backoff": 0.1,
        "retry_backoff_max": 0.5,
    },
    "QUEUES": {"default": {}},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"reliable_queue": {"handlers": ["console"], "level": os.environ.get("RQDEMO_LOG", "WARNING")}},
}
