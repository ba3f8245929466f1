"""Where a worker spends its time per no-op job: cProfile of the slot thread.

    .venv/bin/python bench/profile_worker.py [--n 20000] [--concurrency 1] [--prefetch 16] [--top 30]

Starts its own redis-server (like bench/run.py), enqueues N no-op jobs, drains
them once without the profiler (the honest per-job time) and once with cProfile
enabled in each slot thread (a wrapper installed on ``Slot.run`` in this process
only; the engine's files are untouched), then prints the functions with the most
own time, in microseconds per job. cProfile slows Python code down (about 2x
here) but not Redis or the network, so read the table for proportions.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--prefetch", type=int, default=16)
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--sort", default="tottime", choices=["tottime", "cumulative"])
    args = p.parse_args()

    from reliable_queue.embedded import RedisServer

    server = RedisServer(appendonly=False, binary=shutil.which("redis-server")).start()
    try:
        os.environ["BENCH_REDIS_URL"] = server.url
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
        import django

        django.setup()
        from bench.peers import benchcommon as bc
        from bench.tasks import noop
        from reliable_queue import worker as workermod

        def drain(profiler: cProfile.Profile | None) -> float:
            for start in range(0, args.n, 10_000):
                noop.enqueue_many([()] * min(10_000, args.n - start))
            bc.COUNTER = bc.Counter(args.n)
            original = workermod.Slot.run

            def run(slot: workermod.Slot) -> None:
                if profiler is not None:
                    profiler.enable()
                try:
                    original(slot)
                finally:
                    if profiler is not None:
                        profiler.disable()

            workermod.Slot.run = run  # type: ignore[method-assign]
            try:
                workermod.Worker(burst=True, concurrency=args.concurrency, prefetch=args.prefetch,
                                 name="bench-profile").run(install_signals=False)
            finally:
                workermod.Slot.run = original  # type: ignore[method-assign]
            assert bc.COUNTER.first is not None and bc.COUNTER.last is not None, "not every job ran"
            return (bc.COUNTER.last - bc.COUNTER.first) / (args.n - 1)

        plain = drain(None)
        profiler = cProfile.Profile()
        profiled = drain(profiler)
        print(f"{args.n:,} no-op jobs, concurrency {args.concurrency}, prefetch {args.prefetch}, Redis {server.url}")
        print(f"without profiler: {plain * 1e6:.1f} us/job ({1 / plain:,.0f} jobs/s); "
              f"with cProfile: {profiled * 1e6:.1f} us/job")
        stats = pstats.Stats(profiler)
        rows = []
        for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            rows.append((tottime, cumtime, calls, f"{Path(filename).name}:{line}({name})"))
        key = 0 if args.sort == "tottime" else 1
        rows.sort(key=lambda r: -r[key])
        total = sum(r[0] for r in rows)
        print(f"\nprofiled time in the slot thread: {total / args.n * 1e6:.1f} us/job")
        print(f"{'own us/job':>10} {'cum us/job':>10} {'calls/job':>9}  function")
        for tottime, cumtime, calls, where in rows[: args.top]:
            print(f"{tottime / args.n * 1e6:>10.2f} {cumtime / args.n * 1e6:>10.2f} {calls / args.n:>9.2f}  {where}")
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
