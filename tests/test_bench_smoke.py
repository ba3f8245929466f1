"""Keeps bench/run.py from rotting: our own parts of the bench, tiny N, no peers.

The bench starts (and stops) a redis-server of its own; nothing here looks at
the figures, only that every part ran and reported.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_runs_our_parts_end_to_end(tmp_path):
    cmd = [
        sys.executable, str(ROOT / "bench" / "run.py"), "--systems", "raw,ours", "--n", "200", "--rounds", "1",
        "--janitor-pending", "1000", "--janitor-inflight", "200", "--janitor-expired", "20", "--held", "50",
        "--mem-n", "500", "--latency-samples", "10", "--out", str(tmp_path),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    number = r"\d+(\.\d+)?"
    assert re.fullmatch(
        rf"bench: drain_vs_best_peer=n/a drain_vs_raw1={number} enqueue_many_vs_raw={number} "
        rf"janitor_ms={number} mem_bytes_per_job={number}", last), last

    with (tmp_path / "performance.csv").open() as f:
        rows = list(csv.DictReader(f))
    measured = {(r["section"], r["system"]) for r in rows if r["median"]}
    for expected in [("drain", "raw1"), ("drain", "raw2"), ("drain", "ours"), ("enqueue", "ours"),
                     ("enqueue_bulk", "ours"), ("enqueue_bulk", "raw"), ("inflight", "ours")]:
        assert expected in measured, (expected, sorted(measured))
    others = " ".join(r["measurement"] for r in rows if r["section"] == "other")
    for part in ("janitor pass", "Redis memory per pending job", "enqueue -> start on an idle worker"):
        assert part in others, others
    assert "| drain: ours (reliable_queue) |" in (tmp_path / "performance-results.md").read_text()
