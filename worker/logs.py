"""Log lines a worker writes for conditions it handles: one line, never a traceback.

Celery logs an acknowledgement that fails because the broker has just gone away as CRITICAL with a
full traceback (kombu's `ack_log_error`). Nothing is lost: the message is restored and delivered
again when the broker is back, and the render's attempt fence makes the second delivery a no-op.
So such a record becomes one warning line saying so."""
from __future__ import annotations

import logging

import redis.exceptions

# What "the broker went away" raises on the way to Redis.
BROKER_GONE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, ConnectionError, TimeoutError)
# Where Celery logs a task's failed acknowledgement (celery.worker.request's logger).
ACK_LOGGER = "celery.worker.request"


class BrokerGoneIsOneLine(logging.Filter):
    """Turns a record carrying a broker connection error into one WARNING line without its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, BROKER_GONE):
            record.msg = f"{record.getMessage()} (the broker went away: the message is delivered again once it is back)"
            record.args = ()
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_broker_hiccups() -> None:
    """Install the filter (idempotent): called when the worker's Celery app is made."""
    logger = logging.getLogger(ACK_LOGGER)
    if not any(isinstance(f, BrokerGoneIsOneLine) for f in logger.filters):
        logger.addFilter(BrokerGoneIsOneLine())
