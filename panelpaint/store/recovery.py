"""The janitor's side of the job store: which renders look lost, and the one guarded change that
decides who sends each of them again.

Waiting is not lost. A queued render whose message the broker holds, and a coloured render
waiting for an io worker (stage `waiting`) whose finishing message the broker holds, are left
alone however long they wait. What the janitor acts on (`Lapse`):

* a colouring whose render worker fell silent for longer than the lease: its task is sent again
  and the next claim takes the render over (attempt + 1, the silent attempt fenced);
* a finishing whose io worker fell silent for longer than the lease (frozen, killed): taken over
  at once, attempt + 1, and its finishing sent again with the same colours: the page is not
  coloured again;
* a waiting render whose finishing message, or a queued render whose message, the broker does
  not hold (never sent while it was down, or lost with it): sent again.

`suspects` lists the candidates; the caller reads the broker once and calls `recover` for each:
one guarded UPDATE that restates the lapse and marks the send (`sent_at`), so of two sweeps, or a
sweep and a worker that moved on meanwhile, exactly one wins, and only the winner sends.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Session

from panelpaint.store.renders import NOT_HELD, _guarded_update, _sync_page, log_render
from panelpaint.store.schema import Batch, Page, Render, RenderStage, RunStatus, utcnow
from panelpaint.store.states import check_render, check_stage


class Lapse(enum.Enum):
    """What is wrong with a render the janitor found, and so what it sends."""

    SILENT_COLOURING = "colouring silent past its lease"  # the render task again; the claim takes over
    STALLED_FINISHING = "finishing stalled past its lease"  # taken over; its finishing again
    UNSENT_FINISHING = "finishing not in the broker"  # its finishing again
    UNSENT = "queued, not in the broker"  # its render task again

    @property
    def sends_finishing(self) -> bool:
        return self in (Lapse.STALLED_FINISHING, Lapse.UNSENT_FINISHING)


@dataclasses.dataclass(frozen=True)
class Suspect:
    """A render that may be lost; `checks_broker`: lost only if the broker lacks its message."""

    render_id: int
    attempt: int
    lapse: Lapse
    task_id: str | None  # the render task's id (its finishing's id is made from id and attempt)
    handoff_key: str | None
    checks_broker: bool


@dataclasses.dataclass(frozen=True)
class Resend:
    """A task the janitor won the right to send, after the commit: the render task
    (`render_id`, `task_id`), or the finishing (`render_id`, `attempt`, `handoff_key`)."""

    render_id: int
    attempt: int
    lapse: Lapse
    task_id: str | None
    handoff_key: str | None = None


def _beat() -> sa.ColumnElement:
    return sa.func.coalesce(Render.heartbeat_at, Render.started_at)


def _silent(cutoff: dt.datetime) -> list[sa.ColumnElement[bool]]:
    """A colouring silent since `cutoff` whose task was not sent again since (or not since `cutoff`)."""
    # A stage of None: claimed by a worker from before stages were recorded; treated as colouring.
    return [sa.or_(Render.stage == RenderStage.colouring, Render.stage.is_(None)), _beat() < cutoff, sa.or_(Render.sent_at.is_(None), Render.sent_at < cutoff)]


def _stalled(cutoff: dt.datetime) -> list[sa.ColumnElement[bool]]:
    return [Render.stage == RenderStage.finishing, _beat() < cutoff]


def _unsent_finishing(cutoff: dt.datetime) -> list[sa.ColumnElement[bool]]:
    return [Render.stage == RenderStage.waiting, sa.func.coalesce(Render.sent_at, Render.heartbeat_at) < cutoff]


def _unsent(cutoff: dt.datetime) -> list[sa.ColumnElement[bool]]:
    return [sa.func.coalesce(Render.sent_at, Render.queued_at) < cutoff]


def suspects(session: Session, *, lease: float, grace: float, silent: bool = True, unsent: bool = True,
             now: dt.datetime | None = None) -> list[Suspect]:
    """The renders that may be lost, oldest first: with `silent`, colourings and finishings whose
    holder was quiet for longer than `lease` seconds; with `unsent`, the waiting and queued renders
    sent more than `grace` seconds ago, lost only if the broker does not hold their message."""
    now = now or utcnow()
    leased, graced = now - dt.timedelta(seconds=lease), now - dt.timedelta(seconds=grace)
    running = Render.status == RunStatus.running
    found: list[Suspect] = []
    rows = [] if not silent else session.execute(
        sa.select(Render.id, Render.attempt, Render.stage, Render.task_id, Render.handoff_key, Render.sent_at)
        .where(running, sa.or_(sa.and_(*_silent(leased)), sa.and_(*_stalled(leased)))).order_by(Render.id)).all()
    for rid, attempt, stage, task_id, key, sent_at in rows:
        if stage == RenderStage.finishing:
            found.append(Suspect(rid, attempt, Lapse.STALLED_FINISHING, task_id, key, checks_broker=False))
        else:
            # Sent once since its claim already: send again only if that message is gone too.
            found.append(Suspect(rid, attempt, Lapse.SILENT_COLOURING, task_id, None, checks_broker=sent_at is not None))
    if unsent:
        not_cancelled = (sa.select(Page.id).join(Batch, Page.batch_id == Batch.id)
                         .where(Page.id == Render.page_id, Batch.cancelled.is_(False), NOT_HELD).exists())
        rows = session.execute(sa.select(Render.id, Render.attempt, Render.status, Render.task_id, Render.handoff_key)
                               .where(sa.or_(sa.and_(running, *_unsent_finishing(graced)),
                                             sa.and_(Render.status == RunStatus.queued, *_unsent(graced),
                                                     not_cancelled)))
                               .order_by(Render.id)).all()
        for rid, attempt, status, task_id, key in rows:
            lapse = Lapse.UNSENT_FINISHING if status == RunStatus.running else Lapse.UNSENT
            found.append(Suspect(rid, attempt, lapse, task_id, key, checks_broker=True))
    return found


def recover(session: Session, suspect: Suspect, *, lease: float, grace: float, max_attempts: int,
            now: dt.datetime | None = None) -> Resend | None:
    """The one guarded change for a lost render: it restates the lapse, so it matches only while
    the render is still in it; the caller sends the returned task after the commit. None when the
    render moved on (another sweep or its worker came first) or, a stalled finishing past
    `max_attempts`, was failed ("gave up after N attempts")."""
    now = now or utcnow()
    leased, graced = now - dt.timedelta(seconds=lease), now - dt.timedelta(seconds=grace)
    rid, attempt, lapse = suspect.render_id, suspect.attempt, suspect.lapse
    if lapse is Lapse.STALLED_FINISHING:
        return _take_over_finishing(session, suspect, leased, max_attempts, now)
    if lapse is Lapse.SILENT_COLOURING:
        won = _guarded_update(session, rid, RunStatus.running, attempt, *_silent(leased), sent_at=now)
    elif lapse is Lapse.UNSENT_FINISHING:
        won = _guarded_update(session, rid, RunStatus.running, attempt, *_unsent_finishing(graced), sent_at=now)
    else:
        won = _guarded_update(session, rid, RunStatus.queued, attempt, *_unsent(graced), sent_at=now)
    if not won:
        return None
    render = session.get(Render, rid)
    log_render(session, "render.resent", render, attempt=attempt, task_id=render.task_id, reason=lapse.value)
    return Resend(rid, attempt, lapse, render.task_id, render.handoff_key if lapse.sends_finishing else None)


def _take_over_finishing(session: Session, suspect: Suspect, leased: dt.datetime, max_attempts: int,
                         now: dt.datetime) -> Resend | None:
    """A finishing silent past its lease died or froze: fence it (attempt + 1) and send the
    finishing again with the same colours; it counts as an attempt, so a page whose finishing
    stalls every time stops after `max_attempts`."""
    rid, attempt = suspect.render_id, suspect.attempt
    if attempt + 1 > max_attempts:
        check_render(RunStatus.running, RunStatus.failed)
        error = f"gave up after {attempt} attempts: finishing stalled"
        if not _guarded_update(session, rid, RunStatus.running, attempt, *_stalled(leased), status=RunStatus.failed,
                               finished_at=now, error=error):
            return None
        render = session.get(Render, rid)
        _sync_page(session, render, RunStatus.failed, error)
        log_render(session, "render.gave_up", render, attempt=attempt, max_attempts=max_attempts,
                   reason=suspect.lapse.value)
        return None
    check_stage(RenderStage.finishing, RenderStage.waiting)
    if not _guarded_update(session, rid, RunStatus.running, attempt, *_stalled(leased), attempt=attempt + 1,
                           stage=RenderStage.waiting, heartbeat_at=now, sent_at=now):
        return None
    render = session.get(Render, rid)
    log_render(session, "render.resent", render, attempt=attempt + 1, previous_attempt=attempt, takeover=True,
               task_id=render.task_id, reason=suspect.lapse.value)
    return Resend(rid, attempt + 1, suspect.lapse, render.task_id, render.handoff_key)
