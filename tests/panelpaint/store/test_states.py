"""The state machines: every allowed transition passes, every other one raises IllegalTransition."""
from __future__ import annotations

import itertools

import pytest

from panelpaint.store.errors import IllegalTransition
from panelpaint.store.schema import ReviewStatus, RunStatus
from panelpaint.store.states import (
    PAGE_TRANSITIONS, RENDER_TRANSITIONS, REVIEW_TRANSITIONS, check_page, check_render, check_review,
)

Q, R, S, F, C, K = (RunStatus.queued, RunStatus.running, RunStatus.succeeded, RunStatus.failed,
                    RunStatus.cancelled, RunStatus.skipped)

# Q -> K: a page that arrived in colour, skipped before any worker claimed it.
RENDER_ALLOWED = {(Q, R), (Q, C), (Q, F), (Q, K), (R, R), (R, S), (R, F), (R, C), (R, Q)}
# F -> S: a picked variant; K -> Q: a skipped page coloured anyway.
PAGE_ALLOWED = RENDER_ALLOWED | {(Q, Q), (S, Q), (F, Q), (F, S), (K, Q)}
P, A, J = ReviewStatus.pending, ReviewStatus.approved, ReviewStatus.rejected
REVIEW_ALLOWED = {(P, A), (P, J), (A, P), (J, P)}


@pytest.mark.parametrize("old,new", list(itertools.product(RunStatus, RunStatus)))
def test_render_transitions(old, new):
    if (old, new) in RENDER_ALLOWED:
        check_render(old, new)
    else:
        with pytest.raises(IllegalTransition, match=f"render cannot go from {old.value} to {new.value}"):
            check_render(old, new)


@pytest.mark.parametrize("old,new", list(itertools.product(RunStatus, RunStatus)))
def test_page_transitions(old, new):
    if (old, new) in PAGE_ALLOWED:
        check_page(old.value, new.value)  # plain strings are accepted too
    else:
        with pytest.raises(IllegalTransition):
            check_page(old, new)


@pytest.mark.parametrize("old,new", list(itertools.product(ReviewStatus, ReviewStatus)))
def test_review_transitions(old, new):
    if (old, new) in REVIEW_ALLOWED:
        check_review(old, new)
    else:
        with pytest.raises(IllegalTransition):
            check_review(old, new)


def test_final_states_are_final_for_renders():
    for final in (S, F, C):
        assert RENDER_TRANSITIONS[final] == frozenset()
    assert PAGE_TRANSITIONS[C] == frozenset()
    assert set(REVIEW_TRANSITIONS) == set(ReviewStatus)


def test_unknown_status_is_an_error():
    with pytest.raises(ValueError):
        check_render("queued", "exploded")
