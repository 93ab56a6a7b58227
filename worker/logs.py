"""Log lines a worker writes for conditions it handles: one line, never a traceback.

Celery logs an acknowledgement that fails because the broker has just gone away as CRITICAL with a
full traceback (kombu's `ack_log_error`). Nothing is lost: the message is restored and delivered
again when the broker is back, and the render's attempt fence makes the second delivery a no-op.
So such a record becomes one warning line saying so. The consumer's own "Connection to broker
lost. Trying to re-establish the connection..." (celery.worker.consumer.consumer, with the
connection error's traceback since Celery 5.6) is one line too: the worker reconnects by itself."""
from __future__ import annotations

import logging

import kombu.exceptions
import redis.exceptions

# What "the broker went away" raises on the way to Redis (kombu wraps it when connecting).
BROKER_GONE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, ConnectionError, TimeoutError,
               kombu.exceptions.OperationalError)
# Where Celery logs a task's failed acknowledgement, and the consumer's lost connection.
ACK_LOGGER = "celery.worker.request"
CONSUMER_LOGGER = "celery.worker.consumer.consumer"


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
    for name in (ACK_LOGGER, CONSUMER_LOGGER):
        logger = logging.getLogger(name)
        if not any(isinstance(f, BrokerGoneIsOneLine) for f in logger.filters):
            logger.addFilter(BrokerGoneIsOneLine())
