"""Tasks the tests enqueue. Executions are recorded in Redis under the test's prefix."""

import json
import os
import time

from reliable_queue import task
from reliable_queue.conf import get_settings
from reliable_queue.connection import get_client


def record_key() -> str:
    return f"{get_settings().prefix}:record"


def _record(kind: str, value: object) -> None:
    get_client().rpush(record_key(), json.dumps([kind, value, os.getpid()]))


def recorded() -> list:
    return [json.loads(x) for x in get_client().lrange(record_key(), 0, -1)]


@task
def noop() -> None:
    return None


@task
def add(a: int, b: int) -> int:
    _record("add", a + b)
    return a + b


@task
def echo(*args, **kwargs) -> None:
    _record("echo", [list(args), kwargs])


@task(max_attempts=2)
def always_fails(message: str = "boom") -> None:
    _record("fail", message)
    raise ValueError(message)


@task(max_attempts=3)
def fails_then_succeeds(key: str, failures: int) -> None:
    n = get_client().incr(f"{get_settings().prefix}:count:{key}")
    _record("attempt", [key, n])
    if n <= failures:
        raise RuntimeError(f"failure {n}")


@task
def sleep_for(seconds: float, tag: str = "") -> None:
    _record("start", tag)
    time.sleep(seconds)
    _record("end", tag)


@task(queue="short", visibility_timeout=1)
def long_job(seconds: float, tag: str = "") -> None:
    _record("start", tag)
    time.sleep(seconds)
    _record("end", tag)


@task(max_attempts=3)
def kill_worker(tag: str = "") -> None:
    _record("kill", tag)
    os._exit(17)


@task(time_limit=1, visibility_timeout=1, max_attempts=2)
def hangs(seconds: float) -> None:
    _record("hang", seconds)
    time.sleep(seconds)
