"""django-reliable-queue: a Django job queue on Redis that never loses a job.

Public API::

    from reliable_queue import task, get_queue

    @task(queue="default", max_attempts=5)
    def send_invoice(invoice_id: int) -> None: ...

    job = send_invoice.enqueue(42)
    get_queue("default").stats()
"""

from .exceptions import (
    InvalidEnvelope,
    JobNotFound,
    QueueNotFound,
    ReliableQueueError,
    SerializationError,
    TaskNotFound,
)
from .job import Job
from .queue import Queue, get_queue
from .tasks import Call, Task, task

__version__ = "0.1.0"

__all__ = [
    "Call",
    "InvalidEnvelope",
    "Job",
    "JobNotFound",
    "Queue",
    "QueueNotFound",
    "ReliableQueueError",
    "SerializationError",
    "Task",
    "TaskNotFound",
    "get_queue",
    "task",
]
