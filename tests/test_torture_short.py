"""The torture run, short: 5,000 jobs through real worker and janitor processes under faults.

Runs ``python -m tests.torture.run`` (the harness of ``make torture``, see
``tests/torture/run.py``) as a child process with its own redis-server, and
checks its verdict: exit status 0 (the checker in ``tests/torture/check.py``
found every job acked or dead-lettered, nothing left, every duplicate explained
by a fault, no ack from a lost lease applied) and the summary line, with every
kind of fault injected at least once.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

LINE = re.compile(
    r"^torture: jobs=(?P<jobs>\d+) acked=(?P<acked>\d+) dead=(?P<dead>\d+) lost=(?P<lost>\d+) "
    r"duplicates=(?P<duplicates>\d+) kills=(?P<kills>\d+) restarts=(?P<restarts>\d+) cuts=(?P<cuts>\d+) "
    r"pauses=(?P<pauses>\d+) seconds=(?P<seconds>\d+)$"
)


@pytest.mark.slow
@pytest.mark.torture
def test_5000_jobs_survive_kills_restarts_cuts_and_pauses():
    proc = subprocess.run(
        [sys.executable, "-m", "tests.torture.run", "--jobs", "5000", "--seconds", "15", "--fault-interval", "1.5"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    report = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr (tail):\n{proc.stderr[-6000:]}"
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, report
    match = LINE.match(lines[0])
    assert match, report
    n = {k: int(v) for k, v in match.groupdict().items()}
    assert proc.returncode == 0, report
    assert n["jobs"] == 5000 and n["lost"] == 0, report
    assert n["acked"] + n["dead"] == 5000 and n["dead"] > 0, report
    # Every kind of fault happened (each kind once per shuffled round of six).
    assert n["kills"] >= 3 and n["restarts"] >= 1 and n["cuts"] >= 1 and n["pauses"] >= 1, report
