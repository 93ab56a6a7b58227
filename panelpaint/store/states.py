"""The state machines of the job store: which status may follow which, checked on every change.

Renders (one attempt-fenced piece of work) move
    queued -> running -> succeeded | failed | cancelled
    queued -> cancelled (batch cancelled)   queued -> failed (gave up: attempts exhausted)
    running -> queued (its worker was lost: the janitor `requeue_stale` puts it back)
and never leave succeeded, failed or cancelled: a retry or a re-render makes a *new* render (next
version), so history is kept and an attempt number is never reused on the same row (fencing).
Redelivery of a running render (the worker died) is a new claim: running -> running with attempt+1.

Pages mirror their current page-level render, and may start again from a final state:
    failed -> queued (retry)   succeeded -> queued (re-render)   cancelled stays cancelled
    failed -> succeeded (a finished variant is picked as the page's result: `store.variants`)
A page whose upload was unreadable is created failed, and cannot be retried (there is no source).

Reviews (per page and per panel) move pending -> approved | rejected; a re-render resets them to
pending. A decision is not changed directly (approved -> rejected is illegal): re-render first.
"""
from __future__ import annotations

from collections.abc import Mapping

from panelpaint.store.errors import IllegalTransition
from panelpaint.store.schema import ReviewStatus, RunStatus

Q, R, S, F, C = RunStatus.queued, RunStatus.running, RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled

RENDER_TRANSITIONS: Mapping[RunStatus, frozenset[RunStatus]] = {
    Q: frozenset({R, C, F}),
    R: frozenset({R, S, F, C, Q}),  # R -> R: a redelivered task takes over (attempt + 1)
    S: frozenset(),
    F: frozenset(),
    C: frozenset(),
}

PAGE_TRANSITIONS: Mapping[RunStatus, frozenset[RunStatus]] = {
    Q: frozenset({Q, R, C, F}),  # Q -> Q: the first render of a new page is queued
    R: frozenset({R, S, F, C, Q}),
    S: frozenset({Q}),  # re-render
    F: frozenset({Q, S}),  # retry; a picked variant
    C: frozenset(),
}

REVIEW_TRANSITIONS: Mapping[ReviewStatus, frozenset[ReviewStatus]] = {
    ReviewStatus.pending: frozenset({ReviewStatus.approved, ReviewStatus.rejected}),
    ReviewStatus.approved: frozenset({ReviewStatus.pending}),
    ReviewStatus.rejected: frozenset({ReviewStatus.pending}),
}

FINAL = frozenset({S, F, C})
ACTIVE = frozenset({Q, R})


def _check(kind: str, table: Mapping, old, new) -> None:
    old, new = type(next(iter(table)))(old), type(next(iter(table)))(new)
    if new not in table[old]:
        raise IllegalTransition(f"{kind} cannot go from {old.value} to {new.value}")


def check_render(old: RunStatus | str, new: RunStatus | str) -> None:
    """Raise `IllegalTransition` unless a render may go from `old` to `new`."""
    _check("render", RENDER_TRANSITIONS, old, new)


def check_page(old: RunStatus | str, new: RunStatus | str) -> None:
    """Raise `IllegalTransition` unless a page may go from `old` to `new`."""
    _check("page", PAGE_TRANSITIONS, old, new)


def check_review(old: ReviewStatus | str, new: ReviewStatus | str) -> None:
    """Raise `IllegalTransition` unless a review status may go from `old` to `new`."""
    _check("review", REVIEW_TRANSITIONS, old, new)
