"""The studio's webhooks as its admins manage them: endpoints (URL, signing secret) and the log
of deliveries with their attempts (`panelpaint.store.webhooks` keeps the rules)."""
from __future__ import annotations

from flask_login import current_user

from panelpaint.store import webhooks
from panelpaint.store.schema import Webhook, WebhookDelivery

from . import db


def endpoints() -> list[Webhook]:
    return webhooks.list_webhooks(db(), current_user.studio_id)


def deliveries() -> list[WebhookDelivery]:
    """The studio's delivery log, newest first."""
    return webhooks.list_deliveries(db(), current_user.studio_id)


def add(url: str) -> Webhook:
    """A new endpoint of the studio (`InvalidInput` for a URL that is not http(s))."""
    hook = webhooks.add_webhook(db(), current_user.studio_id, current_user.id, url)
    db().commit()
    return hook


def remove(webhook_id: int) -> None:
    """Delete an endpoint and its log (`NotFound` for another studio's)."""
    webhooks.remove_webhook(db(), current_user.studio_id, webhook_id, current_user.id)
    db().commit()
