"""The chaos run: ``python -m tests.torture.run [--jobs N] [--seconds S] ...`` (``make torture``).

What it does:

1. Starts its own ``redis-server`` on a free 127.0.0.1 port with AOF on and
   ``appendfsync always`` (a restart loses nothing Redis acknowledged), and an
   in-process TCP proxy in front of it (``proxy.py``).
2. Starts ``--workers`` ``manage.py runworker --concurrency C`` processes and two
   ``runjanitor`` processes (settings: ``tests/torture/settings.py``), all talking
   to Redis through the proxy. The harness enqueues and checks directly.
3. Enqueues ``--jobs`` jobs at an even pace over ``--seconds`` seconds. Most
   succeed at once; some sleep (a few longer than the lease, so the heartbeat
   must keep them), some raise on their first attempts, and a few always raise
   (they must end in the dead-letter queue). Each execution is recorded by the
   task in an append-only file per worker process, outside the queue.
4. Meanwhile, about every ``--fault-interval`` seconds, it injects a fault
   chosen at random (seeded; every kind once per shuffled round): SIGKILL a
   worker (and start a replacement), SIGKILL a janitor (and replace it), SIGTERM
   a worker (and start a replacement), cut every connection through the proxy,
   restart Redis (SHUTDOWN, or SIGKILL, then start again on the same port and
   AOF, after a random outage), and SIGSTOP a worker past its lease, then
   SIGCONT. Faults go on until every job is enqueued and the queue has drained.
5. Stops everything cleanly, reads the queue's keys and the records, and runs
   the checker (``check.py``; its docstring lists the rules it proves).

It prints exactly one line on stdout::

    torture: jobs=N acked=N dead=N lost=0 duplicates=N kills=N restarts=N cuts=N pauses=N seconds=S

(``kills`` counts every worker or janitor stopped by a signal: SIGKILLs and
SIGTERMs) and details on stderr. Exit status: 0 when every rule holds, 1 on a
loss or any broken rule, 2 when the harness itself could not run.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "tests.torture.settings"
FAULT_KINDS = ("kill", "janitor-kill", "term", "cut", "restart", "pause")

logger = logging.getLogger("tests.torture")


def log(message: str) -> None:
    print(f"[torture {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Proc:
    role: str  # worker | janitor
    number: int
    popen: subprocess.Popen[bytes]
    log_path: Path
    stopping_since: float | None = None  # set when SIGTERM was sent
    paused_until: float | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


class Harness:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.workdir = Path(tempfile.mkdtemp(prefix="torture-"))
        self.record_dir = self.workdir / "records"
        self.record_dir.mkdir()
        self.prefix = f"torture{args.seed}"
        self.procs: list[Proc] = []
        self.numbers = {"worker": 0, "janitor": 0}
        self.faults: list[Any] = []
        self.counts = {"kills": 0, "restarts": 0, "cuts": 0, "pauses": 0}
        self.unexpected_exits: list[str] = []
        self.enqueued: dict[str, str] = {}
        self.server: Any = None
        self.proxy: Any = None

    # -- processes ---------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "TORTURE_REDIS_URL": self.proxy.url,
            "TORTURE_PREFIX": self.prefix,
            "TORTURE_RECORD_DIR": str(self.record_dir),
            "TORTURE_VISIBILITY_TIMEOUT": str(self.args.visibility_timeout),
            "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def spawn(self, role: str) -> Proc:
        self.numbers[role] += 1
        n = self.numbers[role]
        if role == "worker":
            cmd = ["runworker", "torture", "--concurrency", str(self.args.concurrency),
                   "--shutdown-timeout", "10", "-v", "1"]
        else:
            cmd = ["runjanitor", "torture", "-v", "1"]
        log_path = self.workdir / f"{role}-{n}.log"
        with open(log_path, "ab") as out:
            popen = subprocess.Popen([sys.executable, "-m", "django", *cmd], cwd=ROOT, env=self.env(),
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        proc = Proc(role, n, popen, log_path)
        self.procs.append(proc)
        return proc

    def live(self, role: str) -> list[Proc]:
        return [p for p in self.procs if p.role == role and p.alive() and p.stopping_since is None]

    def reap(self) -> None:
        """Notice processes that exited on their own (a bug) and replace them; escalate slow stops."""
        now = time.monotonic()
        for p in list(self.procs):
            code = p.popen.poll()
            if code is None:
                if p.stopping_since is not None and now - p.stopping_since > 30:
                    log(f"{p.role} {p.pid} still running 30s after SIGTERM: SIGKILL")
                    self.fault("kill", p.pid, "escalated after SIGTERM")
                    p.popen.kill()
                    p.popen.wait()
                    self.procs.remove(p)
                continue
            self.procs.remove(p)
            if p.stopping_since is None:
                text = f"{p.role} {p.pid} exited on its own with code {code} (log {p.log_path})"
                log("UNEXPECTED: " + text)
                self.unexpected_exits.append(text)
                self.spawn(p.role)

    def fault(self, kind: str, pid: int | None = None, detail: str = "") -> None:
        from tests.torture.check import Fault

        self.faults.append(Fault(kind, time.time(), pid, detail))

    # -- faults --------------------------------------------------------------

    def inject(self, kind: str) -> None:
        rng = self.rng
        now = time.monotonic()
        workers = [p for p in self.live("worker") if p.paused_until is None]
        if kind in ("kill", "term", "pause") and len(workers) < 2:
            kind = "cut"
        if kind == "kill":
            p = rng.choice(workers)
            self.fault("kill", p.pid)
            p.popen.kill()
            p.popen.wait()
            self.procs.remove(p)
            self.counts["kills"] += 1
            self.spawn("worker")
            log(f"SIGKILL worker {p.pid}")
        elif kind == "janitor-kill":
            janitors = self.live("janitor")
            p = rng.choice(janitors)
            self.fault("janitor-kill", p.pid)
            p.popen.kill()
            p.popen.wait()
            self.procs.remove(p)
            self.counts["kills"] += 1
            self.spawn("janitor")
            log(f"SIGKILL janitor {p.pid}")
        elif kind == "term":
            p = rng.choice(workers)
            self.fault("term", p.pid)
            p.popen.send_signal(signal.SIGTERM)
            p.stopping_since = now
            self.counts["kills"] += 1
            self.spawn("worker")
            log(f"SIGTERM worker {p.pid}")
        elif kind == "pause":
            p = rng.choice(workers)
            length = self.args.visibility_timeout + rng.uniform(1.0, 2.0)
            self.fault("pause", p.pid, f"{length:.1f}s")
            p.popen.send_signal(signal.SIGSTOP)
            p.paused_until = now + length
            self.counts["pauses"] += 1
            log(f"SIGSTOP worker {p.pid} for {length:.1f}s")
        elif kind == "cut":
            self.fault("cut")
            n = self.proxy.cut_all()
            self.counts["cuts"] += 1
            log(f"cut {n} connection(s)")
        elif kind == "restart":
            crash = rng.random() < 0.5
            outage = rng.uniform(0.1, 2.0)
            self.fault("restart", None, "crash" if crash else "shutdown")
            if crash:
                self.server.kill()
            else:
                self.server.stop()
            time.sleep(outage)
            self.server.start()
            self.counts["restarts"] += 1
            log(f"restarted Redis ({'SIGKILL' if crash else 'SHUTDOWN'}, {outage:.1f}s outage)")

    def resume_paused(self, force: bool = False) -> None:
        now = time.monotonic()
        for p in self.procs:
            if p.paused_until is not None and (force or now >= p.paused_until):
                if p.alive():
                    p.popen.send_signal(signal.SIGCONT)
                p.paused_until = None
                log(f"SIGCONT worker {p.pid}")

    # -- the run ---------------------------------------------------------------

    def plan(self) -> list[tuple[str, int, int, int]]:
        """(task, seq, sleep_ms, fail_until) per job, from the seeded RNG."""
        rng, vt_ms = self.rng, int(self.args.visibility_timeout * 1000)
        out = []
        for seq in range(self.args.jobs):
            x = rng.random()
            if x < 0.005:
                out.append(("doomed", seq, 0, 0))
            elif x < 0.055:
                out.append(("work", seq, 0, rng.choice((1, 1, 2))))
            elif x < 0.085:
                out.append(("work", seq, rng.randint(5, 80), 0))
            elif x < 0.0855:
                out.append(("work", seq, vt_ms + rng.randint(500, 2000), 0))
            else:
                out.append(("work", seq, 0, 0))
        return out

    def enqueue(self, items: list[tuple[str, int, int, int]]) -> None:
        from tests.torture import tasks

        for name, func in (("work", tasks.work), ("doomed", tasks.doomed)):
            calls = [func.call(seq, sleep_ms, fail_until) if name == "work" else func.call(seq)
                     for task, seq, sleep_ms, fail_until in items if task == name]
            if calls:
                for job in func.enqueue_many(calls):
                    self.enqueued[job.id] = name

    def run(self) -> int:
        args = self.args
        from reliable_queue.embedded import RedisServer

        t_start = time.monotonic()
        self.server = RedisServer(appendonly=True, appendfsync="always").start()
        os.environ.update({"DJANGO_SETTINGS_MODULE": SETTINGS, "TORTURE_REDIS_URL": self.server.url,
                           "TORTURE_PREFIX": self.prefix,
                           "TORTURE_VISIBILITY_TIMEOUT": str(args.visibility_timeout)})
        os.environ.pop("TORTURE_RECORD_DIR", None)
        import django

        django.setup()
        from reliable_queue import get_queue
        from tests.torture.proxy import Proxy

        self.proxy = Proxy("127.0.0.1", self.server.port).start()
        queue = get_queue("torture")
        log(f"seed={args.seed} jobs={args.jobs} seconds={args.seconds} workers={args.workers}x{args.concurrency} "
            f"vt={args.visibility_timeout}s redis={self.server.url} proxy={self.proxy.url} dir={self.workdir}")
        for _ in range(args.workers):
            self.spawn("worker")
        for _ in range(2):
            self.spawn("janitor")

        plan = self.plan()
        kinds: list[str] = []
        chaos_start = time.monotonic()
        next_fault = chaos_start + self.rng.uniform(0.5, 1.5) * args.fault_interval
        next_poll = 0.0
        next_status = chaos_start + 10
        drained = False
        deadline = chaos_start + args.timeout
        while True:
            now = time.monotonic()
            due = min(len(plan), int((now - chaos_start) / args.seconds * len(plan)) + 1)
            while len(self.enqueued) < due:
                start = len(self.enqueued)
                self.enqueue(plan[start:min(due, start + 500)])
            self.reap()
            self.resume_paused()
            if now >= next_fault:
                if not kinds:
                    kinds = list(FAULT_KINDS)
                    self.rng.shuffle(kinds)
                self.inject(kinds.pop())
                next_fault = time.monotonic() + self.rng.uniform(0.5, 1.5) * args.fault_interval
            if len(self.enqueued) == len(plan) and now >= next_poll:
                next_poll = now + 0.5
                s = queue.stats()
                if s["pending"] == 0 and s["inflight"] == 0 and s["scheduled"] == 0:
                    drained = True
                    break
            if now >= next_status:
                s = queue.stats()
                log(f"enqueued={len(self.enqueued)} pending={s['pending']} inflight={s['inflight']} "
                    f"scheduled={s['scheduled']} done={s['done']} dead={s['dead']}")
                next_status = now + 10
            if now > deadline:
                log(f"did not drain within {args.timeout}s")
                break
            time.sleep(0.02)
        self.resume_paused(force=True)
        log(f"chaos over after {time.monotonic() - chaos_start:.1f}s; stopping workers and janitors")
        self.stop_all()
        snap = self.snapshot(queue)
        from tests.torture.check import check, read_records

        report = check(self.enqueued, read_records(self.record_dir), self.faults, snap, args.visibility_timeout)
        seconds = time.monotonic() - t_start
        problems = list(report.problems) + [f"[process] {t}" for t in self.unexpected_exits]
        if not drained:
            problems.append(f"[left] the queue did not drain within --timeout {args.timeout}s")
        log(f"executions={report.executions} duplicates={report.duplicates} (unexplained {report.unexplained}; "
            f"explained by {dict(report.explained_by)}) "
            f"faults: " + ", ".join(f"{k}={sum(1 for f in self.faults if f.kind == k)}"
                                    for k in ("kill", "janitor-kill", "term", "pause", "cut", "restart")))
        for text in problems:
            log("PROBLEM " + text)
        print(f"torture: jobs={report.jobs} acked={report.acked} dead={report.dead} lost={report.lost} "
              f"duplicates={report.duplicates} kills={self.counts['kills']} restarts={self.counts['restarts']} "
              f"cuts={self.counts['cuts']} pauses={self.counts['pauses']} seconds={seconds:.0f}", flush=True)
        failed = bool(problems) or report.lost > 0
        if failed:
            log(f"FAILED; logs and records kept in {self.workdir}")
        return 1 if failed else 0

    def stop_all(self) -> None:
        for p in self.procs:
            if p.alive():
                p.popen.send_signal(signal.SIGTERM)
                if p.stopping_since is None:
                    p.stopping_since = time.monotonic()
        for p in list(self.procs):
            try:
                p.popen.wait(30)
            except subprocess.TimeoutExpired:
                log(f"{p.role} {p.pid} ignored SIGTERM for 30s: SIGKILL")
                p.popen.kill()
                p.popen.wait()
        self.procs.clear()

    def snapshot(self, queue: Any) -> Any:
        from tests.torture.check import Snapshot

        c, k = queue.client, queue.keys

        def text(values: Any) -> list[str]:
            return [v.decode("utf-8", "replace") for v in values]

        dead_ids = text(c.zrange(k.dead, 0, -1))
        reasons = c.hmget(k.reasons, dead_ids) if dead_ids else []
        errors = c.hmget(k.errors, dead_ids) if dead_ids else []
        return Snapshot(
            pending=text(c.lrange(k.pending, 0, -1)),
            inflight=text(c.zrange(k.inflight, 0, -1)),
            scheduled=text(c.zrange(k.scheduled, 0, -1)),
            dead={i: (r or b"").decode("utf-8", "replace") for i, r in zip(dead_ids, reasons)},
            errors={i: (e or b"").decode("utf-8", "replace") for i, e in zip(dead_ids, errors)},
            stored=set(text(c.hkeys(k.jobs))),
            counters={kk.decode(): int(v) for kk, v in c.hgetall(k.counters).items()},
        )

    def cleanup(self, keep: bool) -> None:
        for p in self.procs:
            if p.alive():
                if p.paused_until is not None:
                    p.popen.send_signal(signal.SIGCONT)
                p.popen.kill()
                p.popen.wait()
        if self.proxy is not None:
            self.proxy.stop()
        if self.server is not None:
            self.server.cleanup()
        if not keep:
            shutil.rmtree(self.workdir, ignore_errors=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.torture.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=100_000, help="jobs to enqueue (default 100000)")
    p.add_argument("--seconds", type=float, default=None,
                   help="enqueue the jobs at an even pace over this many seconds (default jobs/1000, at least 10)")
    p.add_argument("--workers", type=int, default=4, help="runworker processes (default 4)")
    p.add_argument("--concurrency", type=int, default=2, help="slots per worker (default 2)")
    p.add_argument("--fault-interval", type=float, default=2.0, help="mean seconds between faults (default 2)")
    p.add_argument("--visibility-timeout", type=float, default=2.0, help="lease seconds (default 2)")
    p.add_argument("--seed", type=int, default=None, help="RNG seed (default: random, printed)")
    p.add_argument("--timeout", type=float, default=None,
                   help="give up when the queue has not drained after this many seconds (default 10x --seconds + 120)")
    p.add_argument("--keep", action="store_true", help="keep logs and records even when the run passes")
    args = p.parse_args(argv)
    if args.jobs < 1 or args.workers < 2 or args.concurrency < 1:
        p.error("--jobs must be >= 1, --workers >= 2, --concurrency >= 1")
    if args.seconds is None:
        args.seconds = max(10.0, args.jobs / 1000)
    if args.timeout is None:
        args.timeout = 10 * args.seconds + 120
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1_000_000)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    harness = Harness(args)
    code = 2
    try:
        code = harness.run()
    except KeyboardInterrupt:
        log("interrupted")
        code = 2
    except Exception:
        logger.exception("the torture harness failed")
        log(f"harness error; logs kept in {harness.workdir}")
        code = 2
    finally:
        harness.cleanup(keep=args.keep or code != 0)
    return code


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    sys.exit(main())
