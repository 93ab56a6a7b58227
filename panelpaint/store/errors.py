"""Exceptions raised by the job store's service functions, each carrying a message fit for a user."""
from __future__ import annotations


class StoreError(Exception):
    """Base of every job store error."""


class NotFound(StoreError):
    """The row does not exist, or belongs to another studio (the two are never told apart)."""


class InvalidInput(StoreError, ValueError):
    """An argument is malformed (bad e-mail, short password, bad geometry, unknown role...)."""


class Forbidden(StoreError):
    """The user exists but may not do this (e.g. an artist approving a page)."""


class IllegalTransition(StoreError):
    """A status change the state machine in `panelpaint.store.states` does not allow."""


class StaleAttempt(StoreError):
    """A worker wrote for an attempt that is no longer current: a newer claim has fenced it out.

    The worker must stop working on the render and must not retry the write.
    """

    def __init__(self, render_id: int, attempt: int, current_attempt: int, status: str):
        self.render_id = render_id
        self.attempt = attempt
        self.current_attempt = current_attempt
        self.status = status
        super().__init__(
            f"render {render_id}: attempt {attempt} is stale (current attempt {current_attempt}, status {status})"
        )


class LeaseHeld(StoreError):
    """The render is running under another worker's live lease; try again after `retry_in` seconds."""

    def __init__(self, render_id: int, retry_in: float):
        self.render_id = render_id
        self.retry_in = retry_in
        super().__init__(f"render {render_id} is running elsewhere; its lease expires in {retry_in:.1f} s")


class AppendOnlyViolation(StoreError):
    """Something tried to update or delete a row of the append-only event log."""
