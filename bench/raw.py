"""The raw redis-py baselines (project virtualenv, hiredis when installed): the physical limit.

Ops (``python bench/raw.py --redis URL --op OP --n N``; one JSON line each):

``drain2``        LMOVE pending -> inflight, run the job, LREM it from inflight:
                  two round trips per job.
``drain1``        one Lua call per job that LREMs the previous job from inflight
                  and LMOVEs the next: one round trip per job.
``lpush_single``  one LPUSH per job, one call at a time.
``lpush_bulk``    one LPUSH per job, all in one non-transactional pipeline.

Messages are JSON envelopes of the same shape and size as a small job (about
100 bytes). The drains time from the first job's start to the last ack, like
every other drain (see benchcommon); the queue is filled before, untimed.
"""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
import benchcommon as bc  # noqa: E402

PENDING, INFLIGHT = "raw:{q}:pending", "raw:{q}:inflight"

ACK_AND_FETCH = """
if ARGV[1] ~= '' then redis.call('LREM', KEYS[2], 1, ARGV[1]) end
return redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
"""


def message() -> bytes:
    return json.dumps({"id": secrets.token_urlsafe(12), "task": "bench.tasks.noop", "queue": "default",
                       "args": [], "enqueued_at": round(time.time(), 3)}, separators=(",", ":")).encode()


def fill(r: redis.Redis, n: int) -> None:
    r.delete(PENDING, INFLIGHT)
    for start in range(0, n, 5000):
        r.rpush(PENDING, *[message() for _ in range(min(5000, n - start))])


def main() -> None:
    args = bc.parse_args()
    r = redis.Redis.from_url(args.redis)
    r.ping()
    if args.op in ("drain1", "drain2"):
        fill(r, args.n)
        bc.COUNTER = bc.Counter(args.n)
        if args.op == "drain2":
            while True:
                m = r.lmove(PENDING, INFLIGHT, "LEFT", "RIGHT")
                if m is None:
                    break
                bc.noop()
                r.lrem(INFLIGHT, 1, m)
        else:
            script = r.register_script(ACK_AND_FETCH)
            r.script_load(ACK_AND_FETCH)  # so the first call is not a NOSCRIPT miss
            previous: bytes | str = ""
            while True:
                m = script(keys=[PENDING, INFLIGHT], args=[previous])
                if m is None:
                    break
                bc.noop()
                previous = m
        end = time.time()
        assert r.llen(INFLIGHT) == 0 and r.llen(PENDING) == 0
        bc.emit(n=args.n, first=bc.COUNTER.first, end=end, seconds=end - bc.COUNTER.first)
    elif args.op == "lpush_single":
        r.delete(PENDING)
        seconds = bc.timed(lambda: [r.lpush(PENDING, message()) for _ in range(args.n)])
        bc.emit(n=args.n, seconds=seconds)
    elif args.op == "lpush_bulk":
        r.delete(PENDING)

        def bulk() -> None:
            pipe = r.pipeline(transaction=False)
            for _ in range(args.n):
                pipe.lpush(PENDING, message())
            pipe.execute()

        seconds = bc.timed(bulk)
        bc.emit(n=args.n, seconds=seconds)
    else:
        raise SystemExit(f"unknown op {args.op!r}")
    r.delete(PENDING, INFLIGHT)


if __name__ == "__main__":
    main()
