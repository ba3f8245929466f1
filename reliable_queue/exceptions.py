"""Errors raised by the public API. Each message says what was wrong and what to do."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class ReliableQueueError(Exception):
    """Base class of the errors this package raises."""


class QueueNotFound(ReliableQueueError, ImproperlyConfigured):
    """A queue name that is not in ``RELIABLE_QUEUE["QUEUES"]``."""


class TaskNotFound(ReliableQueueError, LookupError):
    """A task name that no ``@task`` registered in this process."""


class SerializationError(ReliableQueueError, TypeError):
    """Arguments that cannot be encoded as JSON, or an envelope over the size limit."""


class InvalidEnvelope(ReliableQueueError, ValueError):
    """A job found in Redis that cannot be run; the worker dead-letters it."""


class JobNotFound(ReliableQueueError, LookupError):
    """No job with that id is stored in the queue."""
