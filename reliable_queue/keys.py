"""The Redis key layout of one queue, and nothing else.

Every key of queue ``Q`` carries the hash tag ``{Q}``, so all of a queue's keys
live in one Redis Cluster slot and each Lua script can touch them together.

==============  ==========  ==========================================================
key             type        holds
==============  ==========  ==========================================================
``pending``     list        ids waiting, taken from the head (LPOP), appended at tail
``inflight``    sorted set  id -> lease deadline (Redis server time, ms)
``leases``      hash        id -> ``token|worker|started_ms|limit_ms|max_attempts``
``attempts``    hash        id -> deliveries charged so far
``scheduled``   sorted set  id -> time due (delayed jobs, retry backoff)
``dead``        sorted set  id -> time dead-lettered (ms)
``jobs``        hash        id -> envelope (JSON); exists while the job is not done
``errors``      hash        id -> JSON list, one entry per failed attempt
``reasons``     hash        id -> why the job is in the dead-letter queue
``wake``        list        at most one token; idle workers block on it
``seq``         string      counter that makes lease tokens unique
``workers``     sorted set  worker name -> last heartbeat (ms)
``janitors``    sorted set  janitor name -> last pass (ms)
``counters``    hash        totals: done, failed, retried, dead, recovered
``rates``       hash        done and failed per 10-second bucket of the last hour
==============  ==========  ==========================================================

A job is in exactly one state: its id is in ``pending``, ``inflight``,
``scheduled`` or ``dead``, or the job is done and its ``jobs`` entry is gone.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

FIELDS = (
    "pending", "inflight", "leases", "attempts", "scheduled", "dead", "jobs",
    "errors", "reasons", "wake", "seq", "workers", "janitors", "counters", "rates",
)


@dataclass(frozen=True)
class QueueKeys:
    pending: str
    inflight: str
    leases: str
    attempts: str
    scheduled: str
    dead: str
    jobs: str
    errors: str
    reasons: str
    wake: str
    seq: str
    workers: str
    janitors: str
    counters: str
    rates: str

    @classmethod
    def build(cls, prefix: str, queue: str) -> QueueKeys:
        base = f"{prefix}:{{{queue}}}:"
        return cls(**{name: base + name for name in FIELDS})

    def all(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self)]
