"""A failed acknowledgement because the broker went away is one warning line; other errors keep their traceback."""
from __future__ import annotations

import logging

import redis.exceptions

from worker.logs import ACK_LOGGER, BrokerGoneIsOneLine


def test_the_worker_app_installs_the_filter():
    import worker.celery_app  # noqa: F401 - making the app installs it

    assert any(isinstance(f, BrokerGoneIsOneLine) for f in logging.getLogger(ACK_LOGGER).filters)


def test_an_ack_lost_with_the_broker_is_one_warning_line(caplog):
    import worker.celery_app  # noqa: F401

    logger = logging.getLogger(ACK_LOGGER)
    try:
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    except redis.exceptions.ConnectionError as exc:
        logger.critical("Couldn't ack %r, reason:%r", 7, exc, exc_info=True)
    try:
        raise ValueError("a real bug")
    except ValueError:
        logger.error("something else failed", exc_info=True)
    ack, other = caplog.records[-2:]
    assert ack.levelno == logging.WARNING and ack.exc_info is None
    assert "Couldn't ack 7" in ack.getMessage() and "delivered again" in ack.getMessage()
    assert other.levelno == logging.ERROR and other.exc_info is not None
    assert "Traceback" not in caplog.text.split("something else failed")[0]


def test_the_consumers_lost_connection_is_one_line_too():
    """Celery 5.6 logs "Connection to broker lost" with the connection error's traceback; the
    worker reconnects by itself, so it is one warning line."""
    import redis

    import worker.celery_app  # noqa: F401 - making the app installs the filters
    from worker.logs import CONSUMER_LOGGER

    logger = logging.getLogger(CONSUMER_LOGGER)
    assert any(isinstance(f, BrokerGoneIsOneLine) for f in logger.filters)
    try:
        raise redis.exceptions.ConnectionError("Connection closed by server.")
    except redis.exceptions.ConnectionError:
        import sys

        record = logger.makeRecord(CONSUMER_LOGGER, logging.WARNING, __file__, 1,
                                   "consumer: Connection to broker lost. Trying to re-establish the connection...",
                                   (), sys.exc_info())
    for f in logger.filters:
        f.filter(record)
    assert record.exc_info is None and record.levelname == "WARNING"
