"""The fault suite builds on the worker tests' service stack (`tests/worker/harness.py`): put that
folder on the import path, as pytest does for the tests that live in it."""
from __future__ import annotations

import sys
from pathlib import Path

WORKER_TESTS = str(Path(__file__).resolve().parents[1] / "worker")
if WORKER_TESTS not in sys.path:
    sys.path.insert(0, WORKER_TESTS)
