"""RQ: enqueue (``Queue.enqueue``, bulk ``Queue.enqueue_many``) and drain (``SimpleWorker``).

RQ's default ``Worker`` forks a work horse per job; ``SimpleWorker`` runs jobs in
its own process and is the fastest single-process setting (RQ has no threads
and no prefetch). Defaults otherwise (results kept 500 s). A job counts as
acknowledged when it is in the finished-job registry.
"""

from __future__ import annotations

import time

import benchcommon as bc
import redis
from peer_tasks import noop
from rq import Queue, SimpleWorker

args = bc.parse_args()
conn = redis.Redis.from_url(args.redis)
queue = Queue("default", connection=conn)


def main() -> None:
    if args.op == "enqueue_single":
        conn.ping()
        seconds = bc.timed(lambda: [queue.enqueue(noop) for _ in range(args.n)])
        bc.emit(n=args.n, seconds=seconds)
    elif args.op == "enqueue_bulk":
        conn.ping()
        seconds = bc.timed(lambda: queue.enqueue_many([Queue.prepare_data(noop) for _ in range(args.n)]))
        bc.emit(n=args.n, seconds=seconds)
    elif args.op == "drain":
        bc.COUNTER = bc.Counter(args.n)
        probe = redis.Redis.from_url(args.redis)
        bc.watch_and_exit(lambda: probe.zcard("rq:finished:default") >= args.n, args.timeout, n=args.n,
                          setting="SimpleWorker")
        worker = SimpleWorker([queue], connection=conn)
        worker.work(burst=True, logging_level="WARNING")
        time.sleep(60)  # the watcher ends the process
    else:
        raise SystemExit(f"unknown op {args.op!r}")


if __name__ == "__main__":
    main()
