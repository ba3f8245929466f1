#!/usr/bin/env python
"""Run the example site with a few jobs to look at: ``make serve``.

1. Finds a Redis as the demo does (``$REDIS_URL``, else 127.0.0.1:6379, else a
   private redis-server started now and stopped when this script ends; set
   ``RQ_PRIVATE_REDIS=1`` to skip 127.0.0.1:6379).
2. Migrates ``example_project/db.sqlite3`` (kept between runs; gitignored) and
   creates the superuser ``admin`` with password ``admin`` if it is missing.
3. Enqueues a few jobs under the stable key prefix ``rqdemo`` (``$RQDEMO_PREFIX``),
   so the admin shows the same queue every time: files of the standard library to
   index, two that fail for good, and three scheduled an hour ahead.
4. Runs ``manage.py runserver 127.0.0.1:8000`` (``--addr`` to change) until
   Ctrl-C. With ``--workers N`` it also runs N workers and a janitor, so jobs
   move while you watch; without, start them yourself in another terminal::

       REDIS_URL=<the url printed> RQDEMO_PREFIX=rqdemo \\
           .venv/bin/python example_project/manage.py runworker

Then open http://127.0.0.1:8000/admin/ and log in as admin / admin.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from demo import Stop, ignore_stop_signals, install_stop_handlers, log, stdlib_files, stdlib_root  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--addr", default="127.0.0.1:8000", help="address:port for runserver (default 127.0.0.1:8000)")
    p.add_argument("--jobs", type=int, default=20, help="files to enqueue for indexing (default 20)")
    p.add_argument("--workers", type=int, default=0, help="worker processes to run beside the server (default 0)")
    p.add_argument("--no-enqueue", action="store_true", help="enqueue nothing, just serve")
    return p.parse_args(argv)


def prepare(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from indexer.tasks import index_file
    from reliable_queue import get_queue

    call_command("migrate", verbosity=0)
    log(f"database: {os.environ['RQDEMO_DB']} (migrated)")
    User = get_user_model()
    if User.objects.filter(username="admin").exists():
        log("superuser: 'admin' exists (its password is left as it is)")
    else:
        User.objects.create_superuser("admin", "admin@example.com", "admin")
        log("superuser: created 'admin' with password 'admin'")

    if not args.no_enqueue:
        files, _ = stdlib_files(3000)
        picked = random.sample(files, min(args.jobs, len(files)))
        index_file.enqueue_many(index_file.call(p) for p in picked)
        for i in range(2):
            index_file.enqueue(str(stdlib_root() / "__rqdemo_missing__" / f"missing_{i}.py"))
        for p in random.sample(files, 3):
            index_file.enqueue_in(3600, p)
        log(f"enqueued {len(picked)} files to index, 2 jobs that always fail, 3 scheduled in an hour")
    stats = get_queue("default").stats()
    log(f"queue 'default': pending={stats['pending']} inflight={stats['inflight']} "
        f"scheduled={stats['scheduled']} dead={stats['dead']} done={stats['done']}")


def stop_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> int:
    """SIGINT the process group led by our child ``proc``; SIGKILL it if it lingers."""

    def group_alive() -> bool:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    if group_alive():
        os.killpg(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc.poll() is not None and not group_alive():
            return proc.returncode
        time.sleep(0.1)
    if group_alive():
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_stop_handlers()
    from reliable_queue.embedded import find_or_start_redis

    handle = find_or_start_redis()
    log(f"redis: {handle.description}")
    os.environ.update({
        "REDIS_URL": handle.url,
        "RQDEMO_PREFIX": os.environ.get("RQDEMO_PREFIX") or "rqdemo",
        "RQDEMO_DB": os.environ.get("RQDEMO_DB") or str(HERE / "db.sqlite3"),
        "DJANGO_SETTINGS_MODULE": "demosite.settings",
        "PYTHONUNBUFFERED": "1",
    })
    log(f"key prefix: {os.environ['RQDEMO_PREFIX']}")
    manage = [sys.executable, str(HERE / "manage.py")]
    helpers: list[subprocess.Popen[bytes]] = []
    try:
        prepare(args)
        if args.workers > 0:
            for _ in range(args.workers):
                helpers.append(subprocess.Popen([*manage, "runworker", "--concurrency", "2"], cwd=HERE,
                                                start_new_session=True))
            helpers.append(subprocess.Popen([*manage, "runjanitor", "--interval", "0.5"], cwd=HERE,
                                            start_new_session=True))
            log(f"started {args.workers} worker(s) and a janitor")
        else:
            log(f"no workers: run them with REDIS_URL={handle.url} RQDEMO_PREFIX={os.environ['RQDEMO_PREFIX']} "
                f"{sys.executable} {HERE / 'manage.py'} runworker")
        log(f"admin: http://{args.addr}/admin/ (admin / admin); Ctrl-C stops")
        # runserver's autoreloader is a parent and a child process: give them a
        # process group of their own, and signal that group to stop both.
        server = subprocess.Popen([*manage, "runserver", args.addr], cwd=HERE, start_new_session=True)
        try:
            return server.wait()
        except Stop as exc:
            log(f"{exc}: stopping")
            return stop_group(server)
    except Stop as exc:
        log(f"{exc}: stopping")
        return 1
    finally:
        ignore_stop_signals()
        for proc in helpers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in helpers:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        handle.stop()
        if handle.owned:
            log("redis: stopped the redis-server started for this run (its jobs are gone with it)")


if __name__ == "__main__":
    sys.exit(main())
