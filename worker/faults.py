"""What the worker does about an exception, decided in one place.

`classify` names the fault. `recording` runs a step of one page and records a fault on that
page's render alone (fenced by attempt), saying what came of it. `patiently` runs a step's
transaction again while the database is unreachable, so a short outage costs a page neither an
attempt nor its colours. `retried_later` sends a task again with exponential backoff, or puts its
message back when even that cannot be published. Celery's own flow (a retry on its way out, a
worker shutting down) is never caught. What the service handles is logged as one warning line,
without a traceback; only the unexpected gets one.
"""
from __future__ import annotations

import contextlib
import enum
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from celery.exceptions import Reject, Retry, SoftTimeLimitExceeded

from panelpaint import pages
from panelpaint.images import ImageError
from panelpaint.settings import Settings
from panelpaint.store import renders, work
from panelpaint.store.errors import StaleAttempt
from worker.outcome import Outcome
from worker.resources import Resources

log = logging.getLogger(__name__)

RETRY_BACKOFF_MAX = 60
MAX_UNRECORDED_RETRIES = 30  # about half an hour of backoff for faults outside the job store's record


def _transient_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    import redis
    import sqlalchemy.exc
    from kombu.exceptions import OperationalError as KombuOperationalError

    return ((sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError),
            (redis.ConnectionError, redis.TimeoutError, KombuOperationalError, ConnectionError, TimeoutError))


# The database, and the broker, unreachable: what the service waits out or retries.
DATABASE_ERRORS, BROKER_ERRORS = _transient_errors()
TRANSIENT = DATABASE_ERRORS + BROKER_ERRORS
CELERY_FLOW = (Retry, Reject, SystemExit, KeyboardInterrupt)


class BadInput(Exception):
    """The page or its style cannot be used; retrying would not help."""


class TryAgain(Exception):
    """Raised by a step: send its task again after `countdown` seconds (None: the backoff), for `reason`."""

    def __init__(self, reason: BaseException | None = None, countdown: float | None = None):
        super().__init__(reason)
        self.reason, self.countdown = reason, countdown


class Fault(enum.Enum):
    CANCELLED = "cancelled"  # the batch was cancelled: acknowledge and stop
    STALE = "stale"  # a newer attempt took over: stop, write nothing
    BAD_INPUT = "bad input"  # the page or its style cannot be used: fail, never retry
    TRANSIENT = "transient"  # the database or the broker is unreachable: try again later
    TIME_LIMIT = "time limit"  # the soft time limit: this attempt fails, retryable
    UNEXPECTED = "unexpected"  # anything else: fail this page; the worker keeps serving


@dataclass(frozen=True)
class Stage:
    """How a stage of a page treats faults: what counts as bad input, which faults its task handles
    itself (raised out of `recording`), and how its error messages begin."""

    name: str
    bad_input: tuple[type[Exception], ...]
    passed_on: frozenset[Fault]
    limit_prefix: str = ""  # before "took longer than N s"
    error_prefix: str = ""  # before an unexpected error's type and message

    def message(self, fault: Fault, exc: BaseException, settings: Settings) -> str:
        if fault is Fault.BAD_INPUT:
            return str(exc)
        if fault is Fault.TRANSIENT:
            return f"transient fault: {first_line(exc)}"
        if fault is Fault.TIME_LIMIT:
            return f"{self.limit_prefix}took longer than {settings.task_soft_time_limit} s"
        return f"{self.error_prefix}{type(exc).__name__}: {exc}"


# Colouring: a time limit ends every page of the task (the render step handles it).
COLOURING = Stage("colouring", (BadInput, ImageError, ValueError), frozenset({Fault.TIME_LIMIT}))
# Finishing: a transient fault retries the task, which holds the hand-off, for the same attempt.
FINISHING = Stage("finishing", (BadInput, ImageError), frozenset({Fault.TRANSIENT}),
                  limit_prefix="finishing ", error_prefix="finishing failed: ")


def classify(exc: BaseException, bad_input: tuple[type[Exception], ...] = COLOURING.bad_input) -> Fault | None:
    """The fault `exc` is, or None for Celery's own flow (which must pass on)."""
    if isinstance(exc, CELERY_FLOW):
        return None
    if isinstance(exc, pages.Cancelled):
        return Fault.CANCELLED
    if isinstance(exc, StaleAttempt):
        return Fault.STALE
    if isinstance(exc, bad_input):
        return Fault.BAD_INPUT
    if isinstance(exc, TRANSIENT):
        return Fault.TRANSIENT
    if isinstance(exc, SoftTimeLimitExceeded):
        return Fault.TIME_LIMIT
    return Fault.UNEXPECTED


T = TypeVar("T")
DB_WAIT_MAX = 3.0  # seconds between two tries of an unreachable database


def patiently(res: Resources, patience: float, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`fn(session, *args, **kwargs)` in one transaction of the job store, tried again while the
    database is unreachable (a restart, a fail-over), for up to `patience` seconds; then the
    fault is raised. Only for steps that may run twice: reads, and the fenced writes (a commit
    whose answer was lost is repeated as a no-op)."""
    deadline = time.monotonic() + patience
    waited = 0
    while True:
        try:
            with res.store.session() as s:
                result = fn(s, *args, **kwargs)
        except TRANSIENT as exc:
            if time.monotonic() >= deadline:
                raise
            if not waited:
                log.warning("database unreachable (%s); %s waits for it", first_line(exc), _name(fn))
            waited += 1
            time.sleep(min(DB_WAIT_MAX, 0.25 * 2 ** min(waited, 4), max(0.0, deadline - time.monotonic())))
            continue
        if waited:
            log.warning("database answers again; %s went on after %d tries", _name(fn), waited + 1)
        return result


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def first_line(exc: BaseException) -> str:
    """An exception as one short line (drivers put the SQL and a help link on further lines)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


def fail_attempt(res: Resources, settings: Settings, render_id: int, attempt: int, error: str,
                 retryable: bool = False, *, patience: float = 0.0) -> Outcome:
    """Record a failed attempt: REQUEUED (retryable, attempts left), FAILED, or STALE when the
    attempt had been fenced out (by a takeover, or by the janitor) and nothing was written."""
    try:
        queued = patiently(res, patience, work.fail_attempt, render_id, attempt, error, retryable,
                           max_attempts=settings.max_attempts)
    except StaleAttempt:
        log.warning("render %s attempt %s was fenced out; its failure is dropped", render_id, attempt)
        return Outcome.STALE
    return Outcome.REQUEUED if queued else Outcome.FAILED


def settle(res: Resources, settings: Settings, render_id: int, attempt: int, fault: Fault, exc: BaseException,
           stage: Stage) -> Outcome:
    """Record `fault` on the render's `attempt`; what came of the page."""
    if fault is Fault.CANCELLED:
        with res.store.session() as s:
            renders.acknowledge_cancel(s, render_id, attempt)
        return Outcome.CANCELLED
    if fault is Fault.STALE:
        log.warning("render %s attempt %s was taken over by a newer attempt; stopping", render_id, attempt)
        return Outcome.STALE
    message = stage.message(fault, exc, settings)
    # After the soft limit only the rest up to the hard limit is left to record it in.
    patience = max(1.0, (settings.task_time_limit - settings.task_soft_time_limit) / 2)
    if fault in (Fault.TRANSIENT, Fault.TIME_LIMIT):
        log.warning("render %s attempt %s: %s; retrying", render_id, attempt, message)
        return fail_attempt(res, settings, render_id, attempt, message, retryable=True, patience=patience)
    if fault is Fault.UNEXPECTED:
        log.exception("render %s attempt %s: %s failed", render_id, attempt, stage.name)
    else:
        log.warning("render %s attempt %s: %s", render_id, attempt, message)
    return fail_attempt(res, settings, render_id, attempt, message, patience=patience)


@dataclass
class Recorded:
    """What came of a step run under `recording`: None while nothing went wrong."""

    outcome: Outcome | None = None


@contextlib.contextmanager
def recording(res: Resources, settings: Settings, render_id: int, attempt: int, stage: Stage) -> Iterator[Recorded]:
    """Run a step of one page; a fault it raises is recorded on that page's render alone and its
    outcome set, unless it is Celery's own flow or one the stage's task handles (those pass on)."""
    done = Recorded()
    try:
        yield done
    except Exception as exc:  # noqa: BLE001 - triaged: what is not ours to handle is raised again
        fault = classify(exc, stage.bad_input)
        if fault is None or fault in stage.passed_on:
            raise
        done.outcome = settle(res, settings, render_id, attempt, fault, exc, stage)


def backoff(retries: int) -> float:
    return min(RETRY_BACKOFF_MAX, 2.0 ** retries)


def retry_or_requeue(task, exc: BaseException | None, countdown: float | None = None) -> None:  # noqa: ANN001
    """Retry later; if even the retry cannot be published (Redis down), put the message back
    instead of letting Celery drop it (it turns a failed retry into a reject without requeue)."""
    try:
        raise task.retry(exc=exc, countdown=backoff(task.request.retries) if countdown is None else countdown)
    except Reject:
        raise Reject(exc, requeue=True) from None


@contextlib.contextmanager
def retried_later(task, *faults: type[BaseException]) -> Iterator[None]:  # noqa: ANN001 - a bound Celery task
    """Run a task's step: `TryAgain`, and the exceptions in `faults`, send the task again later."""
    try:
        yield
    except CELERY_FLOW:
        raise
    except TryAgain as again:
        retry_or_requeue(task, again.reason, again.countdown)
    except faults as exc:
        log.warning("%s: %s; retrying in %.0f s", task.name, first_line(exc), backoff(task.request.retries))
        retry_or_requeue(task, exc)
