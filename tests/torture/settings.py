"""Django settings of the torture run's worker and janitor processes (and the harness).

Read from the environment, set by the harness for each process:

* ``TORTURE_REDIS_URL``: where to reach Redis. Workers and janitors get the
  proxy's URL; the harness itself talks to Redis directly.
* ``TORTURE_PREFIX``: the key prefix of the run.
* ``TORTURE_RECORD_DIR``: where each worker process appends its execution records.
* ``TORTURE_VISIBILITY_TIMEOUT``: lease length in seconds (short, so crashes are
  recovered quickly and pauses outlive leases).
"""

import os

SECRET_KEY = "torture-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = ["reliable_queue", "tests.torture"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

QUEUE = "torture"

RELIABLE_QUEUE = {
    "REDIS_URL": os.environ.get("TORTURE_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "PREFIX": os.environ.get("TORTURE_PREFIX", "torture"),
    "SOCKET_TIMEOUT": 5.0,
    "BLOCK_TIMEOUT": 1.0,
    "JANITOR_INTERVAL": float(os.environ.get("TORTURE_JANITOR_INTERVAL", "0.5")),
    "DEFAULTS": {
        "visibility_timeout": float(os.environ.get("TORTURE_VISIBILITY_TIMEOUT", "2")),
        "max_attempts": 25,
        "time_limit": 120,
        "retry_backoff": 0.05,
        "retry_backoff_max": 0.5,
    },
    "QUEUES": {QUEUE: {}},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"reliable_queue": {"handlers": ["console"], "level": os.environ.get("TORTURE_LOG", "WARNING"),
                                   "propagate": False}},
}
