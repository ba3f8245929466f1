"""Signals for each step of a job's life.

Every signal is sent with a class as ``sender`` (``Queue``, ``Worker`` or
``Janitor``: Django keys senders by identity) and ``queue`` (the queue name) and
``job`` (a :class:`reliable_queue.job.Job`) as keywords. Extra keywords:

=====================  ==========================================================
signal                 extra keywords
=====================  ==========================================================
``job_enqueued``       (none)
``job_started``        ``worker``
``job_succeeded``      ``worker``, ``result``, ``duration`` (seconds)
``job_failed``         ``worker``, ``exception`` (final or not: see the next two)
``job_retrying``       ``worker``, ``exception``, ``delay`` (seconds)
``job_dead_lettered``  ``reason`` (``worker`` and ``exception`` when a worker did it)
``job_requeued``       ``source`` ("janitor" or "admin"), ``user`` (admin only)
``lease_lost``         ``worker``, ``operation`` ("ack", "fail", "extend", ...)
``worker_started``     ``worker``, ``queues``
``worker_stopping``    ``worker``, ``queues``
=====================  ==========================================================

Receivers run in the worker; one that raises is logged and never stops the
worker or loses the job (see :func:`send`).
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger("reliable_queue.signals")

job_enqueued = Signal()
job_started = Signal()
job_succeeded = Signal()
job_failed = Signal()
job_retrying = Signal()
job_dead_lettered = Signal()
job_requeued = Signal()
lease_lost = Signal()
worker_started = Signal()
worker_stopping = Signal()


def signal_name(signal: Signal) -> str:
    for name, value in globals().items():
        if value is signal:
            return name
    return "signal"


def send(signal: Signal, sender: type, **kwargs: Any) -> None:
    """Send ``signal`` robustly: log what receivers raise, never propagate it.

    Costs almost nothing when nobody listens, which is the common case on the
    per-job path.
    """
    if not signal.receivers:
        return
    try:
        responses = signal.send_robust(sender, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - e.g. SystemExit raised by a receiver
        logger.error("a %s receiver raised %r (queue=%s); the job is not affected", signal_name(signal), exc,
                     kwargs.get("queue"), exc_info=(type(exc), exc, exc.__traceback__))
        return
    for receiver, response in responses:
        if isinstance(response, Exception):
            logger.error(
                "signal receiver %r raised %r (queue=%s); the job is not affected",
                receiver, response, kwargs.get("queue"),
                exc_info=(type(response), response, response.__traceback__),
            )
