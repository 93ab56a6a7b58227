"""The render workers' janitor: finds what is lost (never what only waits) and sends it again, once.

`Janitor.tick` runs on the render worker parent's event-loop timer every `tick_seconds` (no
thread: the parent forks), each time with a short-lived engine, since pool children must not
inherit open connections. Every tick looks for colourings and finishings silent past the lease
(running renders only: cheap), announces batches that ended and sends the webhook attempts due
(`panelpaint.store.webhooks`). A full sweep also sends what the broker does not hold: queued
renders, coloured pages waiting for finishing, uploads. It runs at once when the broker answers
again after an outage, when Redis restarted (its run id changed), or when a tick comes late (the
event loop was held up, as it is while the worker reconnects), and otherwise every `full_every`
seconds. Which render is sent again is decided in the job store (`panelpaint.store.recovery`):
one guarded change per item, so of two janitors, or a janitor and a worker, only one sends it.
Heartbeats cannot be written while the database is down, so lease checks wait one lease after
it answers again. Outages are logged once each, in one line.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from panelpaint import queue
from panelpaint.settings import Settings
from panelpaint.store import recovery, uploads, webhooks, work
from panelpaint.store.db import Store
from worker.faults import BROKER_ERRORS, DATABASE_ERRORS, first_line

log = logging.getLogger(__name__)

SEND_GRACE = 5.0  # seconds a message may take from the commit to the broker before it counts as unsent
LATE_TICKS = 3  # a tick this many intervals late means the event loop was held up: sweep fully


def webhook_lease(settings: Settings) -> float:
    """How long a sent webhook attempt is given before it counts as lost and is tried again."""
    return 3 * settings.webhook_timeout_seconds + SEND_GRACE


def tick_seconds(settings: Settings) -> float:
    """How often the janitor looks: a quarter lease (1 to 15 s), so a lapse is seen within ~1.25 leases."""
    return max(1.0, min(15.0, settings.render_lease_seconds / 4))


def full_every(settings: Settings) -> float:
    """How often a full sweep reads the broker when nothing suggests a loss (a quarter visibility timeout)."""
    return max(tick_seconds(settings), min(300.0, settings.visibility_timeout / 4))


@dataclass
class Sweep:
    """What one tick did: whether it swept fully, and what it sent again."""

    full: bool = False
    resent: list[recovery.Resend] = field(default_factory=list)
    uploads: list[int] = field(default_factory=list)
    webhooks: list[webhooks.Send] = field(default_factory=list)  # delivery attempts sent


@dataclass
class Janitor:
    """The janitor of one render worker, with what it remembers between ticks."""

    settings: Settings
    broker_run_id: str | None = None  # Redis's run id at the last tick
    broker_down: bool = False
    database_down: bool = False
    lease_checks_from: float = 0.0  # monotonic time from which silent heartbeats count again
    next_full: float = 0.0  # monotonic time of the next full sweep
    full_until: float = 0.0  # after an outage, every tick sweeps fully until then (past the grace)
    last_tick: float | None = None

    def tick(self) -> Sweep:
        """Look once; never raises for an unreachable broker or database (it says so once)."""
        now = time.monotonic()
        late = self.last_tick is not None and now - self.last_tick > LATE_TICKS * tick_seconds(self.settings)
        self.last_tick = now
        try:
            run_id = queue.broker_run_id(self.settings)
        except BROKER_ERRORS as exc:
            self._broker_lost(exc)
            return Sweep()
        if self.broker_down or late or (self.broker_run_id is not None and run_id != self.broker_run_id):
            why = ("answers again" if self.broker_down else "restarted" if self.broker_run_id not in (None, run_id)
                   else "was away (a late tick)")
            log.warning("broker %s: sending what it does not hold", why)
            self._sweep_fully_for_a_while(now)
        self.broker_down, self.broker_run_id = False, run_id
        full = now >= self.next_full or now <= self.full_until
        store = Store(self.settings.database_url)
        try:
            # Right after an outage (this tick included) silences say nothing about the workers.
            sweep = self._sweep(store, full, leases=not self.database_down and now >= self.lease_checks_from)
        except DATABASE_ERRORS as exc:
            if not self.database_down:
                log.warning("database unreachable (%s): sweeps wait for it", first_line(exc))
            self.database_down = True
            return Sweep()
        except BROKER_ERRORS as exc:
            self._broker_lost(exc)
            return Sweep()
        finally:
            store.dispose()
        if self.database_down:
            # No worker could renew a lease meanwhile: count silences from now on.
            log.warning("database answers again: lease checks resume in %.0f s", self.settings.render_lease_seconds)
            self.database_down = False
            self.lease_checks_from = now + self.settings.render_lease_seconds
            self._sweep_fully_for_a_while(now)
        if full:
            self.next_full = now + full_every(self.settings)
        return sweep

    def _sweep_fully_for_a_while(self, now: float) -> None:
        """From now until what was saved during the outage is past the grace, and sent."""
        self.next_full = now
        self.full_until = now + SEND_GRACE + tick_seconds(self.settings)

    def _broker_lost(self, exc: BaseException) -> None:
        if not self.broker_down:
            log.warning("broker unreachable (%s): what is saved meanwhile is sent once it answers", first_line(exc))
        self.broker_down = True

    def _sweep(self, store: Store, full: bool, leases: bool) -> Sweep:
        settings, lease = self.settings, float(self.settings.render_lease_seconds)
        with store.session() as s:
            found = recovery.suspects(s, lease=lease, grace=SEND_GRACE, silent=leases, unsent=full)
            stalled = work.stalled_uploads(s, SEND_GRACE) if full else []
        held: set[str] = set()
        if stalled or any(f.checks_broker for f in found):
            # Read after the database: a message sent meanwhile is seen.
            held = queue.pending_task_ids(settings, queues=queue.QUEUES)
        lost = [f for f in found if not f.checks_broker or _task_id(f) not in held]
        with store.session() as s:
            resent = [r for f in lost if (r := recovery.recover(s, f, lease=lease, grace=SEND_GRACE,
                                                                 max_attempts=settings.max_attempts)) is not None]
            unpacks = [u for u in stalled if u.task_id not in held and uploads.note_resent(s, u.id, SEND_GRACE)]
        for r in resent:  # after the commit
            if r.lapse.sends_finishing:
                queue.enqueue_finish(settings, r.render_id, r.attempt, r.handoff_key, patient=False)
            else:
                queue.enqueue_render(settings, r.render_id, r.task_id)
        for u in unpacks:
            queue.enqueue_unpack(settings, u.id, u.task_id)
        # Batches that ended are announced, and due webhook attempts sent (a lost one is due again
        # after its lease).
        with store.session() as s:
            webhooks.announce_ended(s)
            sends = webhooks.claim_due(s, webhook_lease(settings))
        for send in sends:
            queue.enqueue_webhook(settings, send.delivery_id, send.attempt)
        if resent or unpacks:
            log.warning("sent again: %s", ", ".join(
                [f"render {r.render_id} attempt {r.attempt} ({r.lapse.value})" for r in resent]
                + [f"upload {u.id} (not in the broker)" for u in unpacks]))
        return Sweep(full, resent, [u.id for u in unpacks], sends)


def _task_id(suspect: recovery.Suspect) -> str | None:
    """The id of the message that would bring `suspect` back, as the broker holds it."""
    if suspect.lapse.sends_finishing:
        return queue.finish_task_id(suspect.render_id, suspect.attempt)
    return suspect.task_id


def sweep(settings: Settings) -> Sweep:
    """One full sweep now (tests, and an operator's `panelpaint` shell)."""
    return Janitor(settings).tick()
