"""Celery with the Redis transport: enqueue (``delay``, bulk ``group().apply_async``) and drain.

Drain: one worker process started in-process (``app.Worker``), pool ``solo``
(``--threads 1``) or ``threads`` (``--threads N``), ``worker_prefetch_multiplier``
from ``--prefetch`` (0: Celery's default, 4), no gossip, mingle or heartbeat,
no result backend. Celery's default acknowledges a message when it is
received, before the task runs (``task_acks_late=False``). "All acknowledged":
the queue list and the transport's ``unacked`` hash are both empty.
"""

from __future__ import annotations

import time

import benchcommon as bc
import redis
from celery import Celery, group

args = bc.parse_args()
app = Celery("bench", broker=args.redis)
app.conf.update(
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    worker_redirect_stdouts=False,
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=args.prefetch or 4,
)


@app.task(name="bench.noop")
def noop() -> None:
    bc.noop()


def main() -> None:
    if args.op == "enqueue_single":
        with app.connection_for_write() as connection:
            connection.ensure_connection()
        seconds = bc.timed(lambda: [noop.delay() for _ in range(args.n)])
        bc.emit(n=args.n, seconds=seconds)
    elif args.op == "enqueue_bulk":
        with app.connection_for_write() as connection:
            connection.ensure_connection()
        seconds = bc.timed(lambda: group(noop.s() for _ in range(args.n)).apply_async())
        bc.emit(n=args.n, seconds=seconds, note="group().apply_async() publishes one message per task")
    elif args.op == "drain":
        bc.COUNTER = bc.Counter(args.n)
        probe = redis.Redis.from_url(args.redis)
        pool = "solo" if args.threads == 1 else "threads"
        setting = f"pool={pool} concurrency={args.threads} prefetch_multiplier={app.conf.worker_prefetch_multiplier}"
        bc.watch_and_exit(lambda: probe.llen("celery") == 0 and probe.hlen("unacked") == 0, args.timeout,
                          n=args.n, setting=setting)
        worker = app.Worker(pool=pool, concurrency=args.threads, loglevel="WARNING", quiet=True,
                            without_gossip=True, without_mingle=True, without_heartbeat=True)
        worker.start()
        time.sleep(60)
    else:
        raise SystemExit(f"unknown op {args.op!r}")


if __name__ == "__main__":
    main()
