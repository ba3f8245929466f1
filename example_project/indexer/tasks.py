"""The example project's task: index one source file.

``index_file(path)`` stores the file's counts in :class:`~indexer.models.SourceFile`
with an idempotent upsert. Two options exist for the demo:

* a path that does not exist fails every time (``FileNotFoundError``), so the job
  ends in the dead-letter queue once its attempts are spent;
* ``crash_on_first_delivery=True`` makes the worker process exit at once
  (``os._exit``, no cleanup, no ack) when the engine reports that this is the
  job's first delivery. The janitor then finds the expired lease and requeues the
  job, and its second delivery indexes the file.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from reliable_queue import task
from reliable_queue.conf import get_settings
from reliable_queue.connection import get_client
from reliable_queue.job import Job

from .analysis import analyze

#: Exit status of a worker process that killed itself on purpose.
SELF_KILL_EXIT = 86

_local = threading.local()


def remember_job(sender: Any, job: Job, **kwargs: Any) -> None:
    """``job_started`` receiver (see apps.py): the job about to run in this thread."""
    _local.job = job


def current_job() -> Job | None:
    return getattr(_local, "job", None)


def self_kills_key() -> str:
    """Hash of job id -> pid of the worker process that job killed (under the queue prefix)."""
    return f"{get_settings().prefix}:demo:selfkills"


@task
def index_file(path: str, crash_on_first_delivery: bool = False) -> dict[str, int]:
    if crash_on_first_delivery:
        job = current_job()
        if job is not None and job.task == index_file.name and job.args[:1] == [path] and job.attempts == 1:
            get_client().hset(self_kills_key(), job.id, os.getpid())
            os._exit(SELF_KILL_EXIT)
    counts = analyze(path)
    from .models import SourceFile

    SourceFile.objects.update_or_create(path=path, defaults=counts)
    return counts
