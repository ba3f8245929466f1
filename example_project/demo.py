#!/usr/bin/env python
"""The demo: index the Python standard library with worker processes that keep dying.

``make demo`` runs this file. It

1. finds a Redis (``$REDIS_URL``, else 127.0.0.1:6379, else a private redis-server
   started for the run and stopped at the end),
2. migrates a fresh SQLite database in a temporary directory,
3. enqueues one ``index_file`` job per ``*.py`` file of this interpreter's
   standard library (site-packages excluded), plus jobs that fail for good (a
   path that does not exist) and jobs that kill their own worker process with
   ``os._exit`` on their first delivery,
4. runs several ``manage.py runworker`` processes and one ``manage.py
   runjanitor``, SIGKILLs a random worker a few times while they work (starting
   a replacement each time) and replaces workers that killed themselves,
5. waits until nothing is pending, in flight or scheduled, stops everything
   with SIGTERM, and compares the database with the same counts computed here
   in one process.

The last line is the summary::

    demo: enqueued=N succeeded=N dead=N recovered=N killed=N lost=0

and the exit status is non-zero when a job was lost, the dead-letter queue does
not hold exactly the jobs meant to fail, the database disagrees, a process
exited unexpectedly or the run took longer than ``--timeout``.

Every Redis key of the run lives under a prefix of its own (``rqdemo-<random>:``)
and is deleted at the end; nothing else in the Redis is touched.

Options (each also read from an environment variable, for ``make demo``):

  --files N        DEMO_FILES           most files to index (default 3000, more than
                                        the stdlib has, so all of them; with a smaller
                                        number an evenly spread sample is taken)
  --kills N        DEMO_KILLS           SIGKILLs of a random worker (default 3)
  --workers N      DEMO_WORKERS         worker processes (default 3)
  --concurrency N  DEMO_CONCURRENCY     threads per worker (default 2)
  --failures N     DEMO_FAILURES        jobs that always fail (default 5)
  --crashes N      DEMO_CRASHES         jobs that kill their worker once (default 10)
  --timeout S      DEMO_TIMEOUT         give up after S seconds (default 100)
  --seed N         DEMO_SEED            random seed (default: random, printed)
  RQ_PRIVATE_REDIS=1                    do not look on 127.0.0.1:6379; with
                                        REDIS_URL unset, start a redis-server
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

SUMMARY = "demo: enqueued={enqueued} succeeded={succeeded} dead={dead} recovered={recovered} killed={killed} lost={lost}"


def log(message: str) -> None:
    print(message, flush=True)


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    head, _, rest = __doc__.partition("\n\n")
    p = argparse.ArgumentParser(description=head, epilog=rest, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=env_int("DEMO_FILES", 3000))
    p.add_argument("--kills", type=int, default=env_int("DEMO_KILLS", 3))
    p.add_argument("--workers", type=int, default=env_int("DEMO_WORKERS", 3))
    p.add_argument("--concurrency", type=int, default=env_int("DEMO_CONCURRENCY", 2))
    p.add_argument("--failures", type=int, default=env_int("DEMO_FAILURES", 5))
    p.add_argument("--crashes", type=int, default=env_int("DEMO_CRASHES", 10))
    p.add_argument("--timeout", type=float, default=float(env_int("DEMO_TIMEOUT", 100)))
    p.add_argument("--seed", type=int, default=env_int("DEMO_SEED", random.randrange(1_000_000)))
    args = p.parse_args(argv)
    if args.files < 1 or args.workers < 1 or args.concurrency < 1:
        p.error("--files, --workers and --concurrency must be at least 1")
    if min(args.kills, args.failures, args.crashes) < 0:
        p.error("--kills, --failures and --crashes cannot be negative")
    return args


# --------------------------------------------------------------------------- input


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_files(limit: int) -> tuple[list[str], int]:
    """``*.py`` files of the standard library (no site-packages): up to ``limit``, and how many exist.

    When there are more, an evenly spread sample is taken, so every part of the
    library is represented, not just the first directories alphabetically.
    """
    skip = {"site-packages", "dist-packages", "__pycache__"}
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(stdlib_root()):
        dirnames[:] = [d for d in dirnames if d not in skip]
        found.extend(os.path.join(dirpath, f) for f in filenames if f.endswith(".py"))
    found.sort()
    if len(found) <= limit:
        return found, len(found)
    return [found[i * len(found) // limit] for i in range(limit)], len(found)


# --------------------------------------------------------------------------- processes


class Fleet:
    """The worker and janitor processes of the run, each with a log file."""

    def __init__(self, env: dict[str, str], logdir: Path, concurrency: int) -> None:
        self.env = env
        self.logdir = logdir
        self.concurrency = concurrency
        self.workers: list[subprocess.Popen[bytes]] = []
        self.janitor: subprocess.Popen[bytes] | None = None
        self.started = 0
        self.logs: dict[int, Path] = {}

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        self.started += 1
        path = self.logdir / f"{self.started:02d}-{args[0]}.log"
        with open(path, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, str(HERE / "manage.py"), *args],
                cwd=HERE, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                # Own session: a Ctrl-C in the terminal reaches only the demo,
                # which then stops its children itself.
                start_new_session=True,
            )
        self.logs[proc.pid] = path
        return proc

    def start_worker(self) -> subprocess.Popen[bytes]:
        proc = self._spawn("runworker", "--concurrency", str(self.concurrency), "-v", "1")
        self.workers.append(proc)
        return proc

    def start_janitor(self) -> None:
        self.janitor = self._spawn("runjanitor", "--interval", "0.5", "-v", "1")

    def all(self) -> list[subprocess.Popen[bytes]]:
        return [*self.workers, *([self.janitor] if self.janitor else [])]

    def stop(self, grace: float = 15.0) -> list[int]:
        """SIGTERM every live process, wait up to ``grace`` seconds, SIGKILL the rest by PID."""
        procs = [p for p in self.all() if p.poll() is None]
        for p in procs:
            p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        forced = []
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                forced.append(p.pid)
                p.kill()
                p.wait()
        return forced

    def tail(self, proc: subprocess.Popen[bytes], lines: int = 15) -> str:
        path = self.logs.get(proc.pid)
        if path is None or not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) or "(empty log)"


# --------------------------------------------------------------------------- the run


class Stop(Exception):
    """Raised in the main thread by SIGTERM/SIGINT, so every child is stopped and every key deleted."""


def raise_stop(signum: int, frame: Any) -> None:
    raise Stop(signal.Signals(signum).name)


def install_stop_handlers() -> None:
    # A signal that was ignored when we started (e.g. SIGINT of a background
    # job) is set anyway: the demo must always clean up after itself.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, raise_stop)


def ignore_stop_signals() -> None:
    """While cleaning up: a second Ctrl-C must not leave processes or keys behind (cleanup is bounded)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)


def delete_keys(client: Any, prefix: str) -> int:
    deleted = 0
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        deleted += client.delete(key)
    return deleted


def run(args: argparse.Namespace, workdir: Path, fleet: Fleet) -> tuple[dict[str, int], list[str]]:
    """Everything after Redis and the environment are ready; returns the summary counts and problems."""
    import django

    django.setup()
    from django.core.management import call_command

    from indexer.analysis import analyze
    from indexer.models import SourceFile
    from indexer.tasks import SELF_KILL_EXIT, index_file, self_kills_key
    from reliable_queue import get_queue
    from reliable_queue.connection import get_client

    rng = random.Random(args.seed)
    problems: list[str] = []
    queue = get_queue("default")
    client = get_client()

    call_command("migrate", verbosity=0)
    log(f"database: fresh SQLite at {workdir / 'db.sqlite3'}")

    files, available = stdlib_files(args.files)
    root = stdlib_root()
    sample = f"an evenly spread sample of {len(files)}" if len(files) < available else "all"
    log(f"input: {sample} of the {available} *.py files under {root} (site-packages excluded)")

    crash_paths = set(rng.sample(files, min(args.crashes, len(files))))
    missing = [str(root / "__rqdemo_missing__" / f"missing_{i}.py") for i in range(args.failures)]
    calls = [index_file.call(p, crash_on_first_delivery=True) if p in crash_paths else index_file.call(p)
             for p in files]
    calls += [index_file.call(p) for p in missing]
    rng.shuffle(calls)

    started = time.monotonic()
    jobs = index_file.enqueue_many(calls)
    enqueued = len(jobs)
    meant_to_fail = {j.id for j in jobs if j.args[0] in set(missing)}
    log(f"enqueued {enqueued} jobs in {time.monotonic() - started:.2f}s with enqueue_many: {len(files)} files, "
        f"{len(missing)} that always fail, {len(crash_paths)} that kill their worker on first delivery")

    fleet.start_janitor()
    for _ in range(args.workers):
        fleet.start_worker()
    log(f"started {args.workers} workers (--concurrency {args.concurrency}) and 1 janitor (--interval 0.5)")

    # Kill a random worker each time another slice of the jobs is done, while
    # there is still work: thresholds at 1/(k+1), 2/(k+1), ... of the jobs.
    thresholds = [enqueued * (i + 1) // (args.kills + 1) for i in range(args.kills)]
    demo_kills = self_kills = 0
    unexpected: list[str] = []
    deadline = started + args.timeout
    next_report = time.monotonic() + 1.0
    ours: set[int] = set()
    stats = queue.stats()
    drained = False
    while time.monotonic() < deadline:
        # Workers that exited on their own: a self-kill (expected) or anything else (a problem).
        for proc in list(fleet.workers):
            code = proc.poll()
            if code is None or proc.pid in ours:
                continue
            fleet.workers.remove(proc)
            if code == SELF_KILL_EXIT:
                self_kills += 1
                log(f"  worker pid {proc.pid} killed itself (os._exit({code})); starting a replacement")
            else:
                unexpected.append(f"worker pid {proc.pid} exited with status {code}:\n{fleet.tail(proc)}")
                log(f"  worker pid {proc.pid} exited unexpectedly with status {code}; starting a replacement")
            fleet.start_worker()
        if fleet.janitor is not None and fleet.janitor.poll() is not None:
            unexpected.append(f"janitor exited with status {fleet.janitor.returncode}:\n{fleet.tail(fleet.janitor)}")
            fleet.start_janitor()

        stats = queue.stats()
        if stats["pending"] == stats["inflight"] == stats["scheduled"] == 0:
            drained = True
            break
        if thresholds and stats["done"] >= thresholds[0] and stats["pending"] > 0:
            thresholds.pop(0)
            alive = [p for p in fleet.workers if p.poll() is None]
            if alive:
                victim = rng.choice(alive)
                ours.add(victim.pid)
                victim.kill()  # SIGKILL, by PID, of our own child
                victim.wait()
                fleet.workers.remove(victim)
                demo_kills += 1
                log(f"  SIGKILL worker pid {victim.pid} (in flight: {stats['inflight']}); starting a replacement")
                fleet.start_worker()
        now = time.monotonic()
        if now >= next_report:
            next_report = now + 1.0
            log(f"  t={now - started:5.1f}s pending={stats['pending']} inflight={stats['inflight']} "
                f"scheduled={stats['scheduled']} done={stats['done']} dead={stats['dead']} "
                f"recovered={stats['recovered']}")
        time.sleep(0.05)

    elapsed = time.monotonic() - started
    if drained:
        log(f"queue drained after {elapsed:.1f}s: done={stats['done']} dead={stats['dead']} "
            f"recovered={stats['recovered']} retried={stats['retried']}")
    else:
        problems.append(f"timeout: the queue was not drained within {args.timeout:g}s "
                        f"(pending={stats['pending']} inflight={stats['inflight']} scheduled={stats['scheduled']})")
    if thresholds:
        log(f"  ({len(thresholds)} planned SIGKILL(s) not done: the queue ran dry first)")

    forced = fleet.stop()
    log("stopped all workers and the janitor with SIGTERM"
        + (f" (SIGKILLed {len(forced)} that did not stop in time: {forced})" if forced else ""))
    problems += unexpected

    # ---------------------------------------------------------------- checks
    stats = queue.stats()
    expected = {path: analyze(path) for path in files}
    rows = {r["path"]: r for r in SourceFile.objects.values("path", "size", "lines", "words", "definitions")}
    fields = ("size", "lines", "words", "definitions")
    succeeded = sum(1 for p, want in expected.items()
                    if p in rows and all(rows[p][f] == want[f] for f in fields))
    wrong = [p for p, want in expected.items() if p in rows and any(rows[p][f] != want[f] for f in fields)]
    absent = [p for p in expected if p not in rows]
    extra = sorted(set(rows) - set(expected))
    for label, items in (("rows that disagree with the direct computation", wrong),
                         ("files with no row", absent), ("rows for files not enqueued", extra)):
        if items:
            problems.append(f"{len(items)} {label}, e.g. {items[:3]}")
    log(f"database: {len(rows)} rows, {succeeded} equal to a direct single-process computation over the same files")

    dead_jobs = queue.dead(limit=1000)
    dead_ids = {j.id for j in dead_jobs}
    if dead_ids != meant_to_fail:
        problems.append(f"dead-letter queue holds {len(dead_ids)} job(s); {len(meant_to_fail)} were meant to fail "
                        f"(unexpected: {[(j.args, j.dead_reason) for j in dead_jobs if j.id not in meant_to_fail][:3]})")
    elif dead_jobs:
        log(f"dead-letter queue: the {len(dead_jobs)} jobs meant to fail, e.g. reason: {dead_jobs[0].dead_reason}")

    # A repeated delivery changes nothing: run a few jobs again, here, directly.
    again = rng.sample(files, min(3, len(files)))
    before = list(SourceFile.objects.order_by("path").values_list("path", *fields))
    for path in again:
        index_file(path)
    if list(SourceFile.objects.order_by("path").values_list("path", *fields)) != before:
        problems.append("running a job a second time changed the database")
    else:
        log(f"idempotence: ran {len(again)} jobs a second time; the database did not change")

    marked = client.hlen(self_kills_key())
    log(f"kills: {demo_kills} SIGKILL(s) by the demo, {self_kills} worker(s) killed by their own job "
        f"({marked} job(s) marked a self-kill); janitor recoveries: {stats['recovered']}")

    counts = {
        "enqueued": enqueued,
        "succeeded": succeeded,
        "dead": stats["dead"],
        "recovered": stats["recovered"],
        "killed": demo_kills + self_kills,
    }
    counts["lost"] = enqueued - succeeded - counts["dead"]
    if counts["lost"] != 0:
        problems.append(f"lost={counts['lost']}: enqueued {enqueued}, succeeded {succeeded}, dead {counts['dead']}")
    if counts["dead"] != len(missing):
        problems.append(f"dead={counts['dead']}, but {len(missing)} jobs were meant to fail")
    return counts, problems


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.monotonic()
    install_stop_handlers()
    from reliable_queue.embedded import find_or_start_redis

    handle = find_or_start_redis()
    log(f"redis: {handle.description}")
    prefix = f"rqdemo-{secrets.token_hex(4)}"
    workdir = Path(tempfile.mkdtemp(prefix="rqdemo-"))
    os.environ.update({
        "REDIS_URL": handle.url,
        "RQDEMO_PREFIX": prefix,
        "RQDEMO_DB": str(workdir / "db.sqlite3"),
        "DJANGO_SETTINGS_MODULE": "demosite.settings",
        "PYTHONUNBUFFERED": "1",
    })
    env = dict(os.environ)
    log(f"key prefix: {prefix}:  seed: {args.seed}")
    (workdir / "logs").mkdir()
    fleet = Fleet(env, workdir / "logs", args.concurrency)
    counts: dict[str, int] | None = None
    problems: list[str] = []
    try:
        counts, problems = run(args, workdir, fleet)
    except Stop as exc:
        problems.append(f"interrupted by {exc}")
    finally:
        ignore_stop_signals()
        fleet.stop(grace=5.0)  # no-op after a normal run; after an error, no process is left behind
        try:
            from reliable_queue.connection import get_client

            deleted = delete_keys(get_client(), prefix)
            left = sum(1 for _ in get_client().scan_iter(match=f"{prefix}:*", count=1000))
            log(f"redis: deleted the run's {deleted} keys ({prefix}:*); {left} left")
            if left:
                problems.append(f"{left} keys under {prefix}: were not deleted")
        except Exception as exc:  # noqa: BLE001 - report, then go on cleaning up
            problems.append(f"could not delete the run's keys: {exc!r}")
        handle.stop()
        if handle.owned:
            log("redis: stopped the redis-server started for this run")
        shutil.rmtree(workdir, ignore_errors=True)

    for problem in problems:
        log(f"PROBLEM: {problem}")
    log(f"took {time.monotonic() - t0:.1f}s")
    if counts is not None:
        log(SUMMARY.format(**counts))
    return 1 if problems or counts is None else 0


if __name__ == "__main__":
    sys.exit(main())
