"""Real ``runworker`` processes: kills, signals, lost hosts, crashing jobs."""

from __future__ import annotations

import signal
import subprocess
import threading

from reliable_queue import get_queue, signals
from reliable_queue.janitor import Janitor
from tests.helpers import RunningJanitor, wait_until
from tests.testapp import tasks


def records(kind=None):
    return [r for r in tasks.recorded() if kind is None or r[0] == kind]


def worker_seen(name: str, queue: str = "default") -> bool:
    return name in get_queue(queue).stats()["workers"]


def read_until(proc: subprocess.Popen, text: str) -> None:
    """Read the child's output until a line contains ``text`` (fails the test at EOF)."""
    for line in proc.stdout:
        if text in line:
            return
    raise AssertionError(f"child exited without printing {text!r}")


def finish(proc: subprocess.Popen, timeout: float = 20) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        rest, _ = proc.communicate()
        raise AssertionError(f"worker did not exit within {timeout}s; output:\n{exc.output or ''}{rest}") from None
    return proc.returncode, out


def test_sigkill_while_a_job_runs_the_janitor_returns_it_charged(manage):
    q = get_queue("short")
    job = tasks.long_job.configure(queue="short").enqueue(60, "killed")
    proc = manage("runworker", "short", "--shutdown-timeout", "30", "--name", "victim")
    wait_until(lambda: records("start"))
    proc.send_signal(signal.SIGTERM)  # graceful stop begins (30 s grace)...
    proc.kill()                       # ...and the process dies before it ends
    proc.wait(10)
    assert q.get(job.id).state == "inflight"
    wait_until(lambda: Janitor(queues=["short"]).pass_over(q).requeued == 1, timeout=10)
    stored = q.get(job.id)
    assert stored.state == "pending" and stored.attempts == 1
    assert stored.errors[-1]["type"] == "WorkerLost" and "victim" in stored.errors[-1]["message"]


def test_sigterm_lets_the_running_job_finish_and_ack(manage):
    job = tasks.sleep_for.enqueue(1.0, "graceful")
    proc = manage("runworker", "--shutdown-timeout", "20", "-v", "2")
    wait_until(lambda: records("start"))
    proc.send_signal(signal.SIGTERM)
    code, out = finish(proc)
    assert code == 0, out
    assert [r[1] for r in records("end")] == ["graceful"]
    assert get_queue().get(job.id) is None


def test_shutdown_timeout_hands_the_running_job_back_at_once(manage):
    job = tasks.sleep_for.enqueue(30, "slow")
    proc = manage("runworker", "--shutdown-timeout", "0.5")
    wait_until(lambda: records("start"))
    proc.send_signal(signal.SIGTERM)
    code, out = finish(proc)
    assert code == 0, out
    stored = get_queue().get(job.id)
    # Back in pending without waiting out the lease; it ran, so the attempt stays charged.
    assert stored.state == "pending" and stored.attempts == 1


def test_second_signal_exits_now_and_the_janitor_recovers(manage):
    q = get_queue("short")
    job = tasks.long_job.configure(queue="short").enqueue(30, "stuck")
    proc = manage("runworker", "short", "--shutdown-timeout", "60", "-v", "2")
    wait_until(lambda: records("start"))
    proc.send_signal(signal.SIGTERM)
    # Signals sent back to back coalesce into one: wait until the first was handled.
    read_until(proc, "finishing running jobs")
    proc.send_signal(signal.SIGTERM)
    code, out = finish(proc)
    assert "second signal: exiting now" in out
    assert q.get(job.id).state == "inflight"
    wait_until(lambda: Janitor(queues=["short"]).pass_over(q).requeued == 1, timeout=10)
    assert q.get(job.id).state == "pending"


def test_idle_worker_asked_to_stop_takes_no_new_job_and_passes_the_wake_up_on(manage):
    a = manage("runworker", "--name", "idle-a")
    b = manage("runworker", "--name", "idle-b")
    wait_until(lambda: worker_seen("idle-a") and worker_seen("idle-b"))
    a.send_signal(signal.SIGTERM)
    job = tasks.add.enqueue(20, 22)
    code, out = finish(a)
    assert code == 0, out
    wait_until(lambda: get_queue().get(job.id) is None, timeout=15)
    executions = records("add")
    assert len(executions) == 1 and executions[0][1] == 42
    assert executions[0][2] == b.pid
    b.send_signal(signal.SIGTERM)
    assert finish(b)[0] == 0


def test_a_host_gone_for_good_has_its_jobs_recovered_by_lease(manage):
    q = get_queue("short")
    job = tasks.add.configure(queue="short").enqueue(1, 1)
    results, leased, _ = q._fetch("gone-host.123.abcd", [], 1)  # the host then vanishes forever
    assert leased[0][0].decode() == job.id
    proc = manage("runworker", "short", "--name", "new-host.1")
    with RunningJanitor(queues=["short"], interval=0.2):
        wait_until(lambda: q.get(job.id) is None, timeout=15)
    assert records("add")[0][2] == proc.pid


def test_a_job_that_kills_its_worker_ends_dead_as_worker_lost(manage):
    q = get_queue("short")
    dead = []
    signals.job_dead_lettered.connect(lambda **kw: dead.append(kw), weak=False, dispatch_uid="kill")
    job = tasks.kill_worker.configure(queue="short").enqueue("poison")  # max_attempts=3
    exits = []
    stop = threading.Event()
    try:
        with RunningJanitor(queues=["short"], interval=0.2):
            while not stop.is_set() and len(exits) < 5:
                proc = manage("runworker", "short")
                code, _ = finish(proc, timeout=30)
                exits.append(code)
                wait_until(lambda: (j := q.get(job.id)) is not None and j.state in ("pending", "dead"), timeout=10)
                if q.get(job.id).state == "dead":
                    stop.set()
    finally:
        signals.job_dead_lettered.disconnect(dispatch_uid="kill")
    stored = q.get(job.id)
    assert exits == [17, 17, 17]
    assert stored.state == "dead" and stored.attempts == 3
    assert stored.dead_reason.startswith("worker lost")
    assert dead and dead[0]["job"].id == job.id and dead[0]["reason"].startswith("worker lost")
    assert len(records("kill")) == 3


def test_default_verbosity_says_start_and_stop_and_v2_adds_a_line_per_job(manage):
    tasks.add.enqueue(1, 2)
    code, out = finish(manage("runworker", "--burst"))
    assert code == 0 and "started: queues=default,other,short" in out and "stopped: succeeded=1 failed=0" in out
    assert "done " not in out
    tasks.add.enqueue(3, 4)
    code, out = finish(manage("runworker", "--burst", "-v", "2"))
    assert code == 0 and "done " in out and "tests.testapp.tasks.add attempt=1" in out
