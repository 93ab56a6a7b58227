"""The state machines of renders (and a running render's stage: colouring -> waiting -> finishing),
pages and reviews: which status may follow which, checked on every change (the table:
docs/architecture.md, "The job store's guarantees")."""
from __future__ import annotations

from collections.abc import Mapping

from panelpaint.store.errors import IllegalTransition
from panelpaint.store.schema import RenderStage, ReviewStatus, RunStatus

Q, R, S, F, C = RunStatus.queued, RunStatus.running, RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled
K = RunStatus.skipped

RENDER_TRANSITIONS: Mapping[RunStatus, frozenset[RunStatus]] = {
    Q: frozenset({R, C, F, K}),  # Q -> K: the page arrived in colour, before any worker claimed it
    R: frozenset({R, S, F, C, Q}),  # R -> R: a redelivered task takes over (attempt + 1)
    S: frozenset(),
    F: frozenset(),
    C: frozenset(),
    K: frozenset(),
}

PAGE_TRANSITIONS: Mapping[RunStatus, frozenset[RunStatus]] = {
    Q: frozenset({Q, R, C, F, K}),  # Q -> Q: the first render of a new page is queued
    R: frozenset({R, S, F, C, Q}),
    S: frozenset({Q}),  # re-render
    F: frozenset({Q, S}),  # retry; a picked variant
    C: frozenset(),
    K: frozenset({Q}),  # colour it anyway
}

# The stage of a running render (None: not running, or claimed before stages were recorded).
STAGE_TRANSITIONS: Mapping[RenderStage, frozenset[RenderStage]] = {
    RenderStage.colouring: frozenset({RenderStage.waiting}),  # handed off
    RenderStage.waiting: frozenset({RenderStage.finishing}),  # an io worker starts
    # finishing -> finishing: a redelivered finishing task goes on; -> waiting: the janitor takes
    # over a stalled finishing (attempt + 1) and sends it again.
    RenderStage.finishing: frozenset({RenderStage.finishing, RenderStage.waiting}),
}

REVIEW_TRANSITIONS: Mapping[ReviewStatus, frozenset[ReviewStatus]] = {
    ReviewStatus.pending: frozenset({ReviewStatus.approved, ReviewStatus.rejected}),
    ReviewStatus.approved: frozenset({ReviewStatus.pending}),
    ReviewStatus.rejected: frozenset({ReviewStatus.pending}),
}

FINAL = frozenset({S, F, C, K})
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


def check_stage(old: RenderStage | str, new: RenderStage | str) -> None:
    """Raise `IllegalTransition` unless a running render may go from stage `old` to `new`."""
    _check("render stage", STAGE_TRANSITIONS, old, new)


def check_review(old: ReviewStatus | str, new: ReviewStatus | str) -> None:
    """Raise `IllegalTransition` unless a review status may go from `old` to `new`."""
    _check("review", REVIEW_TRANSITIONS, old, new)
