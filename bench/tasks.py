"""The bench's tasks (imported by the bench app in every worker process)."""

import time

from bench.peers import benchcommon as bc
from reliable_queue import task
from reliable_queue.conf import get_settings
from reliable_queue.connection import get_client


def latency_key() -> str:
    return f"{get_settings().prefix}:bench:latency"


@task
def noop(*args: object) -> None:
    """The no-op job of every drain: counts itself (see benchcommon.Counter)."""
    bc.noop()


@task
def stamp(sent: float) -> None:
    """Record how long after ``sent`` (the enqueuer's clock, same host) this job started."""
    started = time.time()
    get_client().rpush(latency_key(), repr(started - sent))
