"""The demo (example_project/demo.py) on a small sample: real worker processes, real kills.

It runs as a child process against the suite's Redis, with its own key prefix,
and must end with nothing lost and every one of its keys deleted.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from django.conf import settings as django_settings

from tests.conftest import ROOT

SUMMARY_RE = re.compile(
    r"^demo: enqueued=(?P<enqueued>\d+) succeeded=(?P<succeeded>\d+) dead=(?P<dead>\d+) "
    r"recovered=(?P<recovered>\d+) killed=(?P<killed>\d+) lost=(?P<lost>-?\d+)$"
)


@pytest.mark.slow
def test_demo_loses_nothing_while_workers_are_killed(client):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEMO_", "RQDEMO_"))}
    env.update({
        "REDIS_URL": django_settings.REDIS_URL,
        "DEMO_FILES": "60",
        "DEMO_KILLS": "1",
        "DEMO_TIMEOUT": "90",
        "PYTHONUNBUFFERED": "1",
    })
    proc = subprocess.run(
        [sys.executable, str(ROOT / "example_project" / "demo.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=150,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    last = proc.stdout.strip().splitlines()[-1]
    match = SUMMARY_RE.match(last)
    assert match, f"unexpected last line {last!r}\n{output}"
    counts = {k: int(v) for k, v in match.groupdict().items()}
    assert counts["lost"] == 0, output
    # 60 files plus 5 jobs that always fail; those 5, and only they, are dead.
    assert (counts["enqueued"], counts["succeeded"], counts["dead"]) == (65, 60, 5), output
    # Jobs kill their own worker on first delivery, so kills happened and the
    # janitor had leases to recover.
    assert counts["killed"] >= 1 and counts["recovered"] >= 1, output

    prefix = re.search(r"^key prefix: (rqdemo-[0-9a-f]+):", proc.stdout, re.MULTILINE).group(1)
    assert list(client.scan_iter(match=f"{prefix}:*")) == []
