"""Huey with Redis storage: enqueue (calling the task) and drain (one consumer, threads).

Huey has no bulk enqueue (``task.map`` enqueues one by one), so ``enqueue_bulk``
reports ``unsupported``. Drain: ``huey.consumer.Consumer`` with ``--threads``
worker threads (``worker_type="thread"``), blocking reads, no periodic tasks.
Huey removes a message from Redis when it is read (there is no ack), so once the
N-th job has run, every job counts as acknowledged.
"""

from __future__ import annotations

import logging
import time

import benchcommon as bc
from huey import RedisHuey
from huey.consumer import Consumer

args = bc.parse_args()
huey = RedisHuey("bench", url=args.redis, results=False)


@huey.task()
def noop() -> None:
    bc.noop()


def main() -> None:
    if args.op == "enqueue_single":
        huey.storage.conn.ping()
        seconds = bc.timed(lambda: [noop() for _ in range(args.n)])
        bc.emit(n=args.n, seconds=seconds)
    elif args.op == "enqueue_bulk":
        bc.emit(unsupported="Huey has no bulk enqueue API (task.map() enqueues one at a time)")
    elif args.op == "drain":
        logging.getLogger("huey").setLevel(logging.WARNING)
        bc.COUNTER = bc.Counter(args.n)
        bc.watch_and_exit(lambda: True, args.timeout, n=args.n, setting=f"threads={args.threads}")
        consumer = Consumer(huey, workers=args.threads, worker_type="thread", periodic=False,
                            check_worker_health=False)
        consumer.run()
        time.sleep(60)
    else:
        raise SystemExit(f"unknown op {args.op!r}")


if __name__ == "__main__":
    main()
