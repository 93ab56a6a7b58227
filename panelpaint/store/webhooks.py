"""Webhooks: a studio's endpoints, the announcement of a batch's end, and the delivery log.

A delivery is an outbox row: written in the same transaction that announces the batch's end,
then sent by an io worker (`worker.webhooks`), its attempts counted on the row and each failure
tried again after an exponential backoff until the endpoint answers 2xx or the last attempt is
used. The body is JSON; `X-Panelpaint-Signature: sha256=<hex>` is its HMAC-SHA256 under the
endpoint's secret (`sign`), so a receiver checks it came from this studio's service unchanged.

Who announces: the janitor (`worker.sweeps`) looks, each tick, at batches whose pages changed
lately; one with no page queued or running and nothing left to unpack, changed since it was last
announced, is announced once (a guarded UPDATE of `Batch.notified_at`: of two janitors only one
wins). A batch that runs again (a re-render, a retry) and ends again is announced again.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from panelpaint.limits import TEXT_MAX
from panelpaint.store.batches import PREVIEW_OPTION, batch_progress
from panelpaint.store.errors import InvalidInput, NotFound
from panelpaint.store.events import log_event
from panelpaint.store.schema import Batch, DeliveryStatus, Page, Upload, Webhook, WebhookDelivery, as_utc, utcnow
from panelpaint.store.states import ACTIVE

EVENT_FINISHED, EVENT_FAILED = "batch.finished", "batch.failed"
SIGNATURE_HEADER, EVENT_HEADER, DELIVERY_HEADER = "X-Panelpaint-Signature", "X-Panelpaint-Event", "X-Panelpaint-Delivery"
URL_MAX = 2000
# Pages changed this recently are looked at for a batch's end (an index on page.updated_at).
RECENT = dt.timedelta(days=1)
DELIVERIES_LISTED = 100


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: "sha256=" and the hex HMAC-SHA256 of the body under the secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does: compare the signature in constant time."""
    return hmac.compare_digest(sign(secret, body), signature or "")


# --- endpoints ---------------------------------------------------------------------------------

def add_webhook(session: Session, studio_id: int, user_id: int | None, url: str) -> Webhook:
    """A new endpoint with a fresh secret; `InvalidInput` unless `url` is an http(s) URL."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("Webhook URL must be an http:// or https:// address, e.g. https://studio.example/hooks")
    if len(url) > URL_MAX:
        raise InvalidInput(f"Webhook URL must be at most {URL_MAX} characters.")
    hook = Webhook(studio_id=studio_id, url=url, secret=secrets.token_hex(32), active=True, created_by_id=user_id)
    session.add(hook)
    session.flush()
    log_event(session, "webhook.added", studio_id=studio_id, data={"webhook_id": hook.id, "url": url,
                                                                   "user_id": user_id})
    return hook


def get_webhook(session: Session, studio_id: int, webhook_id: int) -> Webhook:
    hook = session.get(Webhook, webhook_id)
    if hook is None or hook.studio_id != studio_id:
        raise NotFound(f"webhook {webhook_id} does not exist")
    return hook


def remove_webhook(session: Session, studio_id: int, webhook_id: int, user_id: int | None = None) -> None:
    """Delete an endpoint of the studio, with its delivery log; `NotFound` for another studio's."""
    hook = get_webhook(session, studio_id, webhook_id)
    log_event(session, "webhook.removed", studio_id=studio_id, data={"webhook_id": hook.id, "url": hook.url,
                                                                     "user_id": user_id})
    session.delete(hook)
    session.flush()


def list_webhooks(session: Session, studio_id: int) -> list[Webhook]:
    return list(session.scalars(sa.select(Webhook).where(Webhook.studio_id == studio_id).order_by(Webhook.id)))


def list_deliveries(session: Session, studio_id: int, limit: int = DELIVERIES_LISTED) -> list[WebhookDelivery]:
    """The studio's delivery log, newest first."""
    return list(session.scalars(sa.select(WebhookDelivery).where(WebhookDelivery.studio_id == studio_id)
                                .order_by(WebhookDelivery.id.desc()).limit(limit)))


# --- announcing a batch's end ------------------------------------------------------------------

def announce_ended(session: Session, now: dt.datetime | None = None) -> list[int]:
    """Announce every batch that ended since it was last announced: an event (`batch.finished`,
    or `batch.failed` when no page came out) and a pending delivery to each active endpoint of
    its studio. A cancelled batch, or a style's one-page preview, is not announced. Returns the new deliveries' ids."""
    now = now or utcnow()
    changed = session.execute(sa.select(Page.batch_id, sa.func.max(Page.updated_at))
                              .where(Page.updated_at >= now - RECENT).group_by(Page.batch_id)).all()
    new: list[int] = []
    for batch_id, last_change in changed:
        batch = session.get(Batch, batch_id, populate_existing=True)
        seen = batch.notified_at
        if batch.cancelled or PREVIEW_OPTION in (batch.options or {}) or (
                seen is not None and as_utc(seen) >= as_utc(last_change)):
            continue  # cancelled, a style's preview (nobody's chapter), or announced since
        busy = session.scalar(sa.select(sa.func.count()).select_from(Page)
                              .where(Page.batch_id == batch_id, Page.status.in_(list(ACTIVE))))
        unpacking = session.scalar(sa.select(sa.func.count()).select_from(Upload)
                                   .where(Upload.batch_id == batch_id, Upload.status.in_(list(ACTIVE))))
        if busy or unpacking:
            continue
        announced = session.execute(
            sa.update(Batch).where(Batch.id == batch_id,
                                   Batch.notified_at.is_(None) if seen is None else Batch.notified_at == seen)
            .values(notified_at=now).execution_options(synchronize_session=False))
        if announced.rowcount != 1:
            continue  # another janitor announced it first
        new += _announce(session, batch, now)
    return new


def _announce(session: Session, batch: Batch, now: dt.datetime) -> list[int]:
    progress = batch_progress(session, batch.id)
    failed = progress.succeeded == 0 and progress.skipped == 0 and progress.failed > 0
    event = EVENT_FAILED if failed else EVENT_FINISHED
    counts = {"total": progress.total, "succeeded": progress.succeeded, "failed": progress.failed,
              "skipped": progress.skipped, "cancelled": progress.cancelled}
    log_event(session, event, studio_id=batch.studio_id, batch_id=batch.id, data=counts)
    payload = {"event": event, "at": now.isoformat(), "studio_id": batch.studio_id,
               "batch": {"id": batch.id, "name": batch.name, "state": "failed" if failed else "done",
                         "created_by_id": batch.created_by_id, "pages": counts}}
    hooks = session.scalars(sa.select(Webhook).where(Webhook.studio_id == batch.studio_id, Webhook.active))
    deliveries = [WebhookDelivery(webhook_id=h.id, studio_id=batch.studio_id, batch_id=batch.id, event=event,
                                  payload=payload, status=DeliveryStatus.pending, attempts=0, next_attempt_at=now)
                  for h in hooks]
    session.add_all(deliveries)
    session.flush()
    return [d.id for d in deliveries]


# --- sending -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Send:
    """One attempt to make: the delivery and its attempt number (1 for the first)."""

    delivery_id: int
    attempt: int


@dataclass(frozen=True)
class Outgoing:
    """An attempt's HTTP request: POST `body` to `url` with `headers` (signed)."""

    url: str
    body: bytes
    headers: dict[str, str]


def claim_due(session: Session, lease_seconds: float, now: dt.datetime | None = None, limit: int = 50) -> list[Send]:
    """The deliveries due now, each claimed for one attempt (attempts + 1; not due again for
    `lease_seconds`, so a lost attempt is tried again then and never twice at once)."""
    now = now or utcnow()
    due = session.execute(sa.select(WebhookDelivery.id, WebhookDelivery.attempts)
                          .where(WebhookDelivery.status == DeliveryStatus.pending,
                                 WebhookDelivery.next_attempt_at <= now)
                          .order_by(WebhookDelivery.next_attempt_at).limit(limit)).all()
    sends = []
    for delivery_id, attempts in due:
        claimed = session.execute(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == DeliveryStatus.pending,
                   WebhookDelivery.attempts == attempts)
            .values(attempts=attempts + 1, next_attempt_at=now + dt.timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False))
        if claimed.rowcount == 1:
            sends.append(Send(delivery_id, attempts + 1))
    return sends


def outgoing(session: Session, send: Send) -> Outgoing | None:
    """The request of a claimed attempt; None when it is no longer this attempt's to make."""
    delivery = session.get(WebhookDelivery, send.delivery_id)
    if delivery is None or delivery.status != DeliveryStatus.pending or delivery.attempts != send.attempt:
        return None
    body = json.dumps({**delivery.payload, "delivery_id": delivery.id}, sort_keys=True,
                      separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "panelpaint-webhooks",
               EVENT_HEADER: delivery.event, DELIVERY_HEADER: str(delivery.id),
               SIGNATURE_HEADER: sign(delivery.webhook.secret, body)}
    return Outgoing(delivery.webhook.url, body, headers)


def record_attempt(session: Session, send: Send, status_code: int | None, error: str | None, *,
                   max_attempts: int, backoff_seconds: float, now: dt.datetime | None = None) -> DeliveryStatus | None:
    """What the endpoint answered to an attempt: 2xx delivers; anything else (or no answer) is
    tried again after backoff x 2^(attempt - 1) seconds, until `max_attempts`. None when the
    attempt is no longer the delivery's current one (nothing is written)."""
    now = now or utcnow()
    ok = status_code is not None and 200 <= status_code < 300
    if ok:
        status, next_at = DeliveryStatus.delivered, None
    elif send.attempt >= max_attempts:
        status, next_at = DeliveryStatus.failed, None
    else:
        status, next_at = DeliveryStatus.pending, now + dt.timedelta(seconds=backoff_seconds * 2 ** (send.attempt - 1))
    written = session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id == send.delivery_id, WebhookDelivery.status == DeliveryStatus.pending,
               WebhookDelivery.attempts == send.attempt)
        .values(status=status, next_attempt_at=next_at, last_status_code=status_code,
                last_error=(error or None) and error[:TEXT_MAX], delivered_at=now if ok else None)
        .execution_options(synchronize_session=False))
    return status if written.rowcount == 1 else None
