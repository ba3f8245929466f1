"""The bench app: hooks that time a ``runworker`` process from the outside in.

Nothing here touches the per-job path except the task body itself
(``bench.tasks.noop``). ``BENCH_DRAIN_N=N``: start the drain watcher of
``benchcommon`` (asleep until the N-th job ran, then it polls the queue's ``done``
counter, which the ack script increments) and print its JSON line; the worker
waits for that line before it exits. ``BENCH_READY_LINE=1``: print a JSON line
when the worker has started (the latency test waits for it).
"""

import os
import threading
import time

from django.apps import AppConfig


class BenchConfig(AppConfig):
    name = "bench"
    label = "bench"
    verbose_name = "Bench"

    def ready(self) -> None:
        from reliable_queue import signals

        n = int(os.environ.get("BENCH_DRAIN_N") or 0)
        if n > 0:
            watcher = _start_drain_watcher(n)

            def wait_for_watcher(**_kwargs: object) -> None:
                watcher.join(30)

            signals.worker_stopping.connect(wait_for_watcher, weak=False, dispatch_uid="bench-drain")
        if os.environ.get("BENCH_READY_LINE"):
            from bench.peers import benchcommon as bc

            def ready(**kwargs: object) -> None:
                bc.emit(event="ready", worker=kwargs.get("worker"), at=time.time())

            signals.worker_started.connect(ready, weak=False, dispatch_uid="bench-ready")


def _start_drain_watcher(n: int) -> threading.Thread:
    import redis

    from bench.peers import benchcommon as bc
    from reliable_queue.queue import get_queue

    bc.COUNTER = bc.Counter(n)
    timeout = float(os.environ.get("BENCH_TIMEOUT") or 600)
    setting = os.environ.get("BENCH_SETTING", "")

    def run() -> None:
        queue = get_queue("default")
        probe = redis.Redis.from_url(queue.settings.redis_url)
        key = queue.keys.counters
        result = bc.wait_until_acked(lambda: int(probe.hget(key, "done") or 0) >= n, timeout)
        bc.emit(n=n, setting=setting, **result)

    thread = threading.Thread(target=run, name="bench-watcher", daemon=True)
    thread.start()
    return thread
