"""Our enqueue driver (project virtualenv): ``noop.enqueue()`` one call at a time, or ``enqueue_many``.

Run by bench/run.py as ``python bench/ours.py --redis URL --op enqueue_single|enqueue_bulk --n N``;
prints one JSON line. (Our drain runs in a real ``python -m django runworker --burst``
process: see bench/apps.py and run.py.)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from bench.peers import benchcommon as bc

    args = bc.parse_args()
    os.environ["BENCH_REDIS_URL"] = args.redis
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from bench.tasks import noop
    from reliable_queue.connection import get_client

    get_client().ping()
    if args.op == "enqueue_single":
        seconds = bc.timed(lambda: [noop.enqueue() for _ in range(args.n)])
    elif args.op == "enqueue_bulk":
        seconds = bc.timed(lambda: noop.enqueue_many([()] * args.n))
    else:
        raise SystemExit(f"unknown op {args.op!r}")
    bc.emit(n=args.n, seconds=seconds)


if __name__ == "__main__":
    main()
