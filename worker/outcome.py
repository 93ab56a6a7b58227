"""What came of a task, or of one page inside a render task: the `status` values the tasks return."""
from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    """A `str` Enum, so task results stay JSON (`"handed_off"`, never an object)."""

    HANDED_OFF = "handed_off"  # coloured; its finishing is queued
    SUCCEEDED = "succeeded"  # finished: outputs stored, render complete
    FAILED = "failed"  # recorded as failed (bad input, a bug, or attempts used up)
    CANCELLED = "cancelled"  # its batch was cancelled; the render says so
    STALE = "stale"  # a newer attempt took over; nothing was written
    REQUEUED = "requeued"  # back in the queue for another attempt
    HELD = "held"  # its page waits for a person to check its panels; confirming sends it again
    KEPT = "kept"  # ingest: the inputs cut ahead are current already
    SKIPPED = "skipped"  # ingest: the page arrived in colour and is not coloured again
