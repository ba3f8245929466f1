"""The checker: what must be true at the end of a torture run, and the proof of it.

Inputs: the ids the harness enqueued (and which of them always fail), the
execution records every worker process appended outside the queue (see
``tasks.py``), the faults the harness injected (with times and the pid they hit)
and a snapshot of the queue's keys in Redis after the run drained.

Rules (each broken rule is a *problem*; any problem fails the run):

1. **Nothing left in flight.** pending, in-flight and scheduled are empty, and
   every envelope still stored in ``jobs`` belongs to a dead-lettered job.
2. **Acked.** A job that may succeed is *acked* when its envelope is gone from
   Redis, it is not in the dead-letter set, and at least one execution of it
   recorded a successful end. Gone without any successful execution is a loss.
3. **Dead.** A job that always fails is in the dead-letter set with a non-empty
   reason (``failed ...`` or ``worker lost ...``) and its error history; a job
   that may succeed must never be dead.
4. **Lost** = enqueued jobs that are neither acked nor dead as above. Must be 0.
   Ids in the dead-letter set that were never enqueued are problems too.
5. **Fencing: no ack from a lost lease changed anything.** The worker records
   ``acked`` only when Redis applied its fenced ack. So: at most one ``acked``
   record per job; the acked delivery's attempt has a successful ``end`` record;
   no execution of that job started with a higher attempt (once acked the job is
   gone; before, a later delivery would have voided the lease); every ``lost``
   record (a worker told its lease was gone) is matched by a later delivery of
   that job (an execution with a higher attempt) or by the job being dead; and
   the queue's ``done`` counter equals the number of acked jobs (each applied
   exactly one successful ack).
6. **Duplicates are explained.** A *duplicate* is a second (third, ...)
   successful execution of the same job. Of two successful executions the one
   with the lower attempt, ``E_lo``, lost its lease: a later delivery exists, and
   deliveries only follow the loss of the previous lease (janitor recovery). A
   lease is only lost when its holder stops talking to Redis for longer than the
   visibility timeout, so the duplicate is *explained* when, no earlier than
   ``HORIZON`` (visibility timeout + 10 s: reconnect backoff, janitor interval,
   Redis outage) before the later delivery ``E_hi`` started and no later than
   ``SLACK`` (1 s) after it, there was either a proxy cut or a Redis restart
   (they hit every connection), or a SIGKILL, SIGSTOP pause or SIGTERM of the
   process that ran ``E_lo``. An unexplained duplicate is a problem (a lease lost
   with no fault: e.g. a heartbeat that did not keep up).

The duplicates are counted in the summary line; executions that raised or were
killed midway are not duplicates (retries and redeliveries are the design).
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Fault kinds that cost every lease that is being used at the time.
GLOBAL_FAULTS = ("cut", "restart")
#: Fault kinds that cost the leases of the process they hit.
PROCESS_FAULTS = ("kill", "pause", "term")
SLACK = 1.0


@dataclass
class Fault:
    kind: str  # kill, janitor-kill, term, pause, cut, restart
    t: float
    pid: int | None = None
    detail: str = ""


@dataclass
class Snapshot:
    """The queue's keys after the run (read directly from Redis)."""

    pending: list[str]
    inflight: list[str]
    scheduled: list[str]
    dead: dict[str, str]  # id -> reason
    errors: dict[str, str]  # id -> error history JSON (dead ones)
    stored: set[str]  # ids in the jobs hash
    counters: dict[str, int]


@dataclass
class Report:
    jobs: int = 0
    acked: int = 0
    dead: int = 0
    lost: int = 0
    duplicates: int = 0
    unexplained: int = 0
    executions: int = 0
    explained_by: collections.Counter[str] = field(default_factory=collections.Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.lost == 0


def read_records(directory: Path) -> list[dict[str, Any]]:
    """Every record line of every worker process; a torn last line is ignored."""
    out: list[dict[str, Any]] = []
    for path in sorted(directory.glob("exec-*.jsonl")):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def _explained(lo: dict[str, Any], hi: dict[str, Any], faults: list[Fault], horizon: float) -> Fault | None:
    """The fault that explains why ``lo``'s lease was lost before ``hi`` was delivered, if any."""
    start, end = hi["t0"] - horizon, hi["t0"] + SLACK
    found = [f for f in faults if start <= f.t <= end
             and (f.kind in GLOBAL_FAULTS or (f.kind in PROCESS_FAULTS and f.pid == lo["p"]))]
    # Name the most specific cause: a fault of that very process, else the latest global one.
    found.sort(key=lambda f: (f.kind in PROCESS_FAULTS, f.t))
    return found[-1] if found else None


def check(enqueued: dict[str, str], records: list[dict[str, Any]], faults: list[Fault],
          snap: Snapshot, visibility_timeout: float, max_listed: int = 20) -> Report:
    """Apply the rules above. ``enqueued``: id -> "work" (may succeed) or "doomed"."""
    rep = Report(jobs=len(enqueued))
    problems: dict[str, list[str]] = collections.defaultdict(list)

    def problem(rule: str, text: str) -> None:
        problems[rule].append(text)

    # Executions: pair start and end records by (id, attempt, pid).
    starts: dict[tuple[str, int, int], dict[str, Any]] = {}
    execs: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    acked_recs: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    lost_recs: list[dict[str, Any]] = []
    for r in records:
        kind = r.get("e")
        if kind == "start":
            ex = {"id": r["id"], "a": r["a"], "p": r["p"], "t0": r["t"], "ok": None}
            starts[(r["id"], r["a"], r["p"])] = ex
            execs[r["id"]].append(ex)
        elif kind == "end":
            ex = starts.get((r["id"], r["a"], r["p"]))
            if ex is None:
                problem("records", f"end without start: {r}")
                continue
            ex["ok"] = bool(r["ok"])
            ex["t1"] = r["t"]
        elif kind == "acked":
            acked_recs[r["id"]].append(r)
        elif kind == "lost":
            lost_recs.append(r)
    rep.executions = sum(len(v) for v in execs.values())
    unknown = set(execs) - set(enqueued)
    if unknown:
        problem("records", f"{len(unknown)} executed id(s) were never enqueued: {sorted(unknown)[:5]}")

    # Rule 1: nothing left.
    for name in ("pending", "inflight", "scheduled"):
        left = getattr(snap, name)
        if left:
            problem("left", f"{len(left)} job(s) still {name}: {left[:5]}")
    stuck = snap.stored - set(snap.dead)
    if stuck:
        problem("left", f"{len(stuck)} envelope(s) stored for jobs in no dead-letter entry: {sorted(stuck)[:5]}")

    # Rules 2-4.
    lost: list[str] = []
    for job_id, kind in enqueued.items():
        ok_runs = [e for e in execs.get(job_id, ()) if e["ok"]]
        if kind == "doomed":
            if job_id not in snap.dead:
                lost.append(job_id)
                problem("dead", f"always-failing job {job_id} is not dead-lettered")
                continue
            reason = snap.dead[job_id]
            if not reason.startswith(("failed ", "worker lost")):
                problem("dead", f"dead job {job_id} has an unexpected reason {reason!r}")
            try:
                history = json.loads(snap.errors.get(job_id) or "[]")
            except ValueError:
                history = []
            if not history:
                problem("dead", f"dead job {job_id} has no error history")
            if ok_runs:
                problem("dead", f"always-failing job {job_id} recorded a success")
            rep.dead += 1
        else:
            if job_id in snap.dead:
                lost.append(job_id)
                problem("dead", f"job {job_id} that can succeed was dead-lettered: {snap.dead[job_id]!r}")
            elif job_id in snap.stored:
                lost.append(job_id)  # reported by rule 1 as well
            elif not ok_runs:
                lost.append(job_id)
                problem("lost", f"job {job_id} is gone from Redis but never ran to success "
                                f"({len(execs.get(job_id, ()))} execution(s))")
            else:
                rep.acked += 1
    rep.lost = len(lost)
    extra_dead = set(snap.dead) - set(enqueued)
    if extra_dead:
        problem("dead", f"{len(extra_dead)} dead-lettered id(s) were never enqueued: {sorted(extra_dead)[:5]}")

    # Rule 5: fencing.
    for job_id, recs in acked_recs.items():
        if len(recs) > 1:
            problem("fencing", f"job {job_id} was acked {len(recs)} times: {[r['a'] for r in recs]}")
        a = recs[0]["a"]
        runs = execs.get(job_id, [])
        if not any(e["a"] == a and e["p"] == recs[0]["p"] and e["ok"] for e in runs):
            problem("fencing", f"job {job_id} acked for attempt {a} without a successful execution of it")
        later = [e["a"] for e in runs if e["a"] > a]
        if later:
            problem("fencing", f"job {job_id} acked at attempt {a} yet delivered again (attempts {later})")
    for r in lost_recs:
        job_id, a = r["id"], r["a"]
        if job_id in snap.dead:
            continue
        if not any(e["a"] > a for e in execs.get(job_id, ())):
            problem("fencing", f"job {job_id}: lease of attempt {a} reported lost during {r.get('op')} "
                               "but no later delivery ran")
    done = snap.counters.get("done", 0)
    if done != rep.acked:
        problem("fencing", f"Redis counted {done} successful acks for {rep.acked} acked jobs")

    # Rule 6: duplicates.
    horizon = visibility_timeout + 10.0
    for job_id, runs in execs.items():
        ok_runs = sorted((e for e in runs if e["ok"]), key=lambda e: e["a"])
        for lo, hi in zip(ok_runs, ok_runs[1:]):
            rep.duplicates += 1
            cause = _explained(lo, hi, faults, horizon)
            if cause is not None:
                rep.explained_by[cause.kind] += 1
            else:
                rep.unexplained += 1
                problem("duplicates", f"job {job_id} succeeded twice with no fault to explain it: "
                                      f"attempt {lo['a']} pid {lo['p']} started at {lo['t0']:.3f}, "
                                      f"attempt {hi['a']} pid {hi['p']} started at {hi['t0']:.3f}")

    for rule, texts in problems.items():
        for text in texts[:max_listed]:
            rep.problems.append(f"[{rule}] {text}")
        if len(texts) > max_listed:
            rep.problems.append(f"[{rule}] ... and {len(texts) - max_listed} more")
    return rep
