"""Dramatiq with its Redis broker: enqueue (``actor.send``) and drain (one Worker, threads).

Dramatiq has no bulk enqueue (``group`` sends its messages one by one), so
``enqueue_bulk`` reports ``unsupported``. Drain: ``dramatiq.Worker`` with
``worker_threads`` threads and ``queue_prefetch`` messages fetched per round
trip (0: Dramatiq's default, twice the threads), default middleware. An ack is
one script call per message (``SREM`` from the consumer's ack set, ``HDEL`` of the
message), so "all acknowledged" is: the queue's message hash is empty.
"""

from __future__ import annotations

import time

import benchcommon as bc
import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

args = bc.parse_args()
broker = RedisBroker(url=args.redis)
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="default", max_retries=0)
def noop() -> None:
    bc.noop()


def main() -> None:
    if args.op == "enqueue_single":
        broker.client.ping()
        seconds = bc.timed(lambda: [noop.send() for _ in range(args.n)])
        bc.emit(n=args.n, seconds=seconds)
    elif args.op == "enqueue_bulk":
        bc.emit(unsupported="Dramatiq has no bulk enqueue API (group() sends one message at a time)")
    elif args.op == "drain":
        from dramatiq import Worker

        bc.COUNTER = bc.Counter(args.n)
        probe = redis.Redis.from_url(args.redis)
        worker = Worker(broker, worker_threads=args.threads)
        if args.prefetch:
            worker.queue_prefetch = args.prefetch
        setting = f"threads={args.threads} prefetch={worker.queue_prefetch}"
        bc.watch_and_exit(lambda: probe.hlen("dramatiq:default.msgs") == 0, args.timeout, n=args.n,
                          setting=setting)
        worker.start()
        while True:
            time.sleep(1)
    else:
        raise SystemExit(f"unknown op {args.op!r}")


if __name__ == "__main__":
    main()
