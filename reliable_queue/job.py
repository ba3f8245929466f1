"""The job envelope: what is stored in Redis for each job, and the ``Job`` object.

The envelope is a JSON object (never pickle)::

    {"task": "app.tasks.send", "args": [...], "kwargs": {...},
     "enqueued_at": 1764790000.123,
     "max_attempts": 5, "visibility_timeout": 30, "time_limit": 1800}

``kwargs`` is left out when empty and the three limits when they equal the
queue's defaults (the scripts fall back to the queue's values), which keeps a
small job small in Redis. Neither the id nor the queue is repeated inside: the
envelope is stored in the queue's ``jobs`` hash under the job's id, and that is
where both are read from. An older or hand-written envelope may still carry
them: an ``"id"`` must then match the field it is stored under (a mismatch is a
malformed entry), and a ``"queue"`` is ignored in favour of where the job is
stored. The envelope never changes after enqueue; the attempt count, lease,
error history and dead-letter reason live beside it (see keys.py).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from .exceptions import InvalidEnvelope, SerializationError

#: States a stored job can be in.
STATES = ("pending", "inflight", "scheduled", "dead")

_JSON_DECODER = json.JSONDecoder()


def new_job_id() -> str:
    """A fresh job id: 96 random bits, URL-safe, 16 characters."""
    return secrets.token_urlsafe(12)


_ID_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def is_valid_id(value: str) -> bool:
    """Ids are 1-64 characters from letters, digits and ``_ . -`` (the scripts check the same)."""
    return _ID_RE.fullmatch(value) is not None


#: Upper bounds of a job's limits, wherever they are set (settings, ``@task``,
#: ``configure``, a stored envelope): a lease or run longer than a year, or a
#: million attempts, is a typo, and would let a job hold its slot or retry for ever.
MAX_LIMIT_SECONDS = 366 * 24 * 3600
MAX_ATTEMPTS = 1_000_000
#: Below a tenth of a second a lease could not be kept alive, nor a run measured.
MIN_LIMIT_SECONDS = 0.1


def limit_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for ``max_attempts``, ``visibility_timeout`` or
    ``time_limit`` (None when it is fine). One rule for ``@task``, ``configure``
    and :func:`decode`, so an option accepted at enqueue is never refused by a worker."""
    if name == "max_attempts":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ATTEMPTS:
            return f"must be an integer >= 1, at most {MAX_ATTEMPTS}"
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            MIN_LIMIT_SECONDS <= value <= MAX_LIMIT_SECONDS):
        # NaN fails the comparison too, and infinity the upper bound.
        return f"must be a positive number of seconds, at least {MIN_LIMIT_SECONDS} and at most {MAX_LIMIT_SECONDS} (366 days)"
    return None


def from_ms(value: float | int | None) -> datetime | None:
    """A UTC datetime from epoch milliseconds (the server's clock)."""
    if value is None:
        return None
    return datetime.fromtimestamp(float(value) / 1000.0, tz=timezone.utc)


@dataclass
class Job:
    """One job, as enqueued or as read back from Redis.

    ``args`` and ``kwargs`` are what the task receives: values that JSON has no
    type for (dates, decimals, UUIDs) arrive as the strings Django's encoder made.
    """

    id: str
    task: str
    queue: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    enqueued_at: datetime | None = None
    max_attempts: int | None = None
    visibility_timeout: float | None = None
    time_limit: float | None = None
    #: Deliveries charged so far (incremented at each pickup).
    attempts: int = 0
    #: "pending", "inflight", "scheduled", "dead", or None when not read from Redis.
    state: str | None = None
    #: One dict per failed attempt: attempt, at, type, message, traceback.
    errors: list[dict[str, Any]] = field(default_factory=list)
    dead_reason: str | None = None
    dead_at: datetime | None = None
    scheduled_for: datetime | None = None
    lease_deadline: datetime | None = None
    started_at: datetime | None = None
    worker: str | None = None
    #: The stored envelope text when it could not be decoded (malformed entries).
    raw: str | None = None
    #: Set on the Job returned by enqueue when it waits for a transaction commit.
    deferred: bool = False

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.task} queue={self.queue} state={self.state} attempts={self.attempts}>"

    def to_envelope(self, with_id: bool = True) -> dict[str, Any]:
        """The envelope as a dict; ``with_id=False`` is the stored form (the id is the hash field)."""
        data: dict[str, Any] = {"id": self.id} if with_id else {}
        data.update(task=self.task, args=self.args)
        if self.kwargs:
            data["kwargs"] = self.kwargs
        data["enqueued_at"] = round(self.enqueued_at.timestamp(), 3) if self.enqueued_at else None
        for name in ("max_attempts", "visibility_timeout", "time_limit"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data


def encode(job: Job, max_bytes: int) -> str:
    """The envelope text of ``job``; raises :class:`SerializationError` if it can't be."""
    try:
        text = json.dumps(job.to_envelope(with_id=False), cls=DjangoJSONEncoder, separators=(",", ":"),
                          ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise SerializationError(
            f"Cannot enqueue {job.task}: its arguments are not JSON serialisable ({exc}). "
            "Pass plain data (str, int, float, bool, None, lists, dicts with str keys; dates, "
            "decimals and UUIDs become strings), e.g. a model's pk instead of the instance."
        ) from None
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise SerializationError(
            f"Cannot enqueue {job.task}: the encoded job is {size} bytes, over the limit of {max_bytes} "
            'bytes (RELIABLE_QUEUE["MAX_PAYLOAD_BYTES"]). Store large data elsewhere (a model, a file) '
            "and pass a reference."
        )
    return text


def _limit(data: dict[str, Any], name: str) -> Any:
    value = data.get(name)
    problem = None if value is None else limit_problem(name, value)
    if problem:
        raise InvalidEnvelope(f"field {name!r} {problem}, got {value!r:.80}")
    return value


def _timestamp(value: Any) -> datetime | None:
    """``enqueued_at`` as a datetime; a number no date can hold (NaN, 1e20) is invalid."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidEnvelope(f"field 'enqueued_at' must be a number, got {value!r:.80}")
    try:
        return datetime.fromtimestamp(value, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):  # NaN, infinities, beyond year 9999
        raise InvalidEnvelope(f"field 'enqueued_at' must be a time in seconds since 1970, got {value!r:.80}") from None


def decode(raw: bytes | str, job_id: str | None = None, queue: str | None = None) -> Job:
    """A :class:`Job` from stored envelope text; raises :class:`InvalidEnvelope` saying why not.

    ``job_id`` and ``queue`` say where the envelope is stored: the id and the
    queue are taken from there (an ``"id"`` inside must match it). Without
    ``job_id`` the envelope must carry its id.
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEnvelope(f"envelope is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        data = _JSON_DECODER.decode(raw)
    except RecursionError:
        raise InvalidEnvelope("envelope is nested too deeply to decode") from None
    except ValueError as exc:
        raise InvalidEnvelope(f"envelope is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidEnvelope(f"envelope is JSON {type(data).__name__}, not an object")
    stored_id = data.get("id", job_id)
    if not isinstance(stored_id, str) or not is_valid_id(stored_id):
        raise InvalidEnvelope(f"field 'id' is missing or not a valid job id: {stored_id!r:.80}")
    if job_id is not None and stored_id != job_id:
        raise InvalidEnvelope(f"envelope id {stored_id!r} does not match the id it is stored under {job_id!r}")
    task = data.get("task")
    if not isinstance(task, str) or not task:
        raise InvalidEnvelope(f"field 'task' is missing or not a string: {task!r:.80}")
    args = data.get("args", [])
    if not isinstance(args, list):
        raise InvalidEnvelope(f"field 'args' must be a JSON array, got {type(args).__name__}")
    kwargs = data.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise InvalidEnvelope(f"field 'kwargs' must be a JSON object, got {type(kwargs).__name__}")
    stored_queue = data.get("queue")
    if stored_queue is not None and not isinstance(stored_queue, str):
        raise InvalidEnvelope(f"field 'queue' must be a string when present: {stored_queue!r:.80}")
    return Job(
        id=stored_id,
        task=task,
        queue=queue or stored_queue or "",
        args=args,
        kwargs=kwargs,
        enqueued_at=_timestamp(data.get("enqueued_at")),
        max_attempts=_limit(data, "max_attempts"),
        visibility_timeout=_limit(data, "visibility_timeout"),
        time_limit=_limit(data, "time_limit"),
    )


def decode_errors(raw: bytes | None) -> list[dict[str, Any]]:
    """The stored error history, tolerant of damage (it is shown, never trusted)."""
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return [{"type": "UnreadableHistory", "message": raw[:2000].decode("utf-8", "replace")}]
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []
