"""The torture run's tasks, and the execution record they write outside the queue.

Each worker process appends JSON lines to ``$TORTURE_RECORD_DIR/exec-<pid>.jsonl``,
opened with ``O_APPEND`` and written with one ``os.write`` per line (so a line is
on disk, whole, as soon as the call returns, and a ``SIGKILL`` can only cut the
record between lines). Line kinds (``e``):

``start``  an execution began: job ``id``, ``a`` (the attempt the worker was
           charged for this delivery), ``p`` (pid), ``t`` (wall clock), ``seq``
``end``    it finished: same fields plus ``ok`` (true: returned; false: raised)
``acked``  the worker's ack of that delivery was applied by Redis (from the
           ``job_succeeded`` signal, sent only when the fenced ack succeeded)
``lost``   the worker was told its lease was lost (``lease_lost`` signal) during
           ``op`` (ack, fail, extend, ...): its outcome was discarded

The job id and attempt come from the ``job_started`` signal, which the worker
sends in the slot thread just before it calls the task.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from django.dispatch import receiver

from reliable_queue import signals, task

QUEUE = "torture"

_current = threading.local()
_fd_lock = threading.Lock()
_fd: tuple[int, int] | None = None  # (pid, fd)


def _write(record: dict[str, Any]) -> None:
    global _fd
    directory = os.environ.get("TORTURE_RECORD_DIR")
    if not directory:
        return
    pid = os.getpid()
    entry = _fd
    if entry is None or entry[0] != pid:
        with _fd_lock:
            if _fd is None or _fd[0] != pid:
                path = os.path.join(directory, f"exec-{pid}.jsonl")
                _fd = (pid, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))
            entry = _fd
    record["p"] = pid
    record["t"] = round(time.time(), 4)
    os.write(entry[1], (json.dumps(record, separators=(",", ":")) + "\n").encode())


@receiver(signals.job_started)
def _on_started(sender: Any, job: Any, **kwargs: Any) -> None:
    _current.job = (job.id, job.attempts)


@receiver(signals.job_succeeded)
def _on_succeeded(sender: Any, job: Any, **kwargs: Any) -> None:
    _write({"e": "acked", "id": job.id, "a": job.attempts})


@receiver(signals.lease_lost)
def _on_lease_lost(sender: Any, job: Any, operation: str = "", **kwargs: Any) -> None:
    _write({"e": "lost", "id": job.id, "a": job.attempts, "op": operation})


def _begin(seq: int) -> tuple[str, int]:
    job_id, attempt = getattr(_current, "job", ("?", 0))
    _write({"e": "start", "id": job_id, "a": attempt, "seq": seq})
    return job_id, attempt


@task(queue=QUEUE, max_attempts=25)
def work(seq: int, sleep_ms: int = 0, fail_until: int = 0) -> int:
    """Succeeds, after sleeping ``sleep_ms`` and raising on attempts <= ``fail_until``."""
    job_id, attempt = _begin(seq)
    if sleep_ms:
        time.sleep(sleep_ms / 1000)
    if attempt <= fail_until:
        _write({"e": "end", "id": job_id, "a": attempt, "seq": seq, "ok": False})
        raise RuntimeError(f"job {seq} fails on attempt {attempt} (until {fail_until})")
    _write({"e": "end", "id": job_id, "a": attempt, "seq": seq, "ok": True})
    return seq


@task(queue=QUEUE, max_attempts=2)
def doomed(seq: int) -> None:
    """Always raises: ends in the dead-letter queue after two attempts."""
    job_id, attempt = _begin(seq)
    _write({"e": "end", "id": job_id, "a": attempt, "seq": seq, "ok": False})
    raise ValueError(f"doomed job {seq} always fails")
