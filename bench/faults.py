"""Recovery after outages: the fault suite's measured times at its short limits, and the bounds
the same mechanisms give with the default settings (docs/deploy.md, "Failure modes").

Runs `tests/faults` (a private PostgreSQL cluster and Redis, real workers; about 2.5 minutes on
two cores) and prints one line per scenario, then the bounds computed from `Settings()`.
Usage:
    python -m bench.faults            # run the suite, then print both tables
    python -m bench.faults --bounds   # only the bounds for the settings in the environment
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from panelpaint.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
# Celery's worker reconnects to the broker with kombu's back-off: 2, 4, 6 ... seconds, at most 30.
RECONNECT_MAX = 30.0
DB_RETRY_MAX = 3.0  # worker.faults.DB_WAIT_MAX: a waiting step tries the database again this often


def bounds(settings: Settings) -> list[tuple[str, str]]:
    """(outage, recovery once the failed part is back) for these settings, from the mechanisms."""
    lease = float(settings.render_lease_seconds)
    tick = max(1.0, min(15.0, lease / 4))  # worker.sweeps.tick_seconds
    return [
        ("io workers down", "0 s: the waiting pages' finishing messages are in the io queue"),
        ("database down", f"≤ {DB_RETRY_MAX:.0f} s: each waiting step tries again this often"),
        ("broker down (or restarted, even without its append-only file)",
         f"≤ {RECONNECT_MAX + tick:.0f} s: the workers reconnect (≤ {RECONNECT_MAX:.0f} s), the janitor's next "
         f"tick (≤ {tick:.0f} s) sends what the broker lacks"),
        ("render worker lost mid-page", f"≤ {tick:.0f} s after a render worker runs, once the lease "
         f"({lease:.0f} s from its last report) ran out: ≤ {lease + tick:.0f} s from the loss"),
        ("io child frozen or io worker lost mid-finishing", f"≤ {lease + tick:.0f} s from the freeze "
         f"(lease + tick); before: hard limit + visibility timeout = "
         f"{settings.task_time_limit + settings.visibility_timeout} s"),
    ]


def run_suite() -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "faults.json"
        env = {**os.environ, "PANELPAINT_FAULT_REPORT": str(report)}
        result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/faults"],
                                cwd=ROOT, env=env)
        if result.returncode != 0 or not report.exists():
            sys.exit(f"the fault suite failed (exit {result.returncode})")
        return json.loads(report.read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bounds", action="store_true", help="only print the bounds for the current settings")
    args = parser.parse_args(argv)
    if not args.bounds:
        print("measured (lease 6 s, visibility timeout 40 s, time limits 16/20 s):")
        for r in run_suite():
            print(f"  {r['scenario']:<34} worked on again after {r['seconds']:5.1f} s (bound {r['bound']:.1f} s), "
                  f"all {r['pages']} pages done after {r['done']:5.1f} s")
    settings = load_settings()
    print(f"bounds (lease {settings.render_lease_seconds} s, visibility timeout {settings.visibility_timeout} s, "
          f"time limits {settings.task_soft_time_limit}/{settings.task_time_limit} s):")
    for outage, recovery in bounds(settings):
        print(f"  {outage:<64} {recovery}")


if __name__ == "__main__":
    main()
