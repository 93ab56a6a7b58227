"""A worker that outlives its broker connection: two repairs to kombu's Redis transport (5.7.0).

When the connection to Redis is lost, kombu closes the consumer's channel and drops what the
channel needed to reach Redis (its kombu connection, its connection pools). Two things still use
that closed channel afterwards, and both raised AttributeError, which Celery treats as
"Unrecoverable error" and the worker exits:

1. closing it restores its unacknowledged messages ("'NoneType' object has no attribute 'hostname'");
2. a task that was running during the outage ends and its message is acknowledged on the channel it
   came from ("'NoneType' object has no attribute 'client'"), once the worker has reconnected.

A channel now keeps the Redis connection parameters it last used, so both reach the same Redis
through a fresh pool: the acknowledgement is made (the message is not delivered again), and the
restore puts the messages back on their queue. With Redis still down they fail as a connection
error does: the acknowledgement's failure is one warning line (`worker.logs`), and a restore that
cannot be made leaves the messages in Redis's unacked index, from where kombu restores them after
the visibility timeout (the janitor takes a stalled page over sooner).
"""
from __future__ import annotations

import logging

import redis

log = logging.getLogger(__name__)

REMEMBERED = "_panelpaint_connparams"  # on a channel: {asynchronous: the connection parameters it last built}


def survive_a_lost_broker() -> None:
    """Install both repairs (idempotent): called when the worker's Celery app is made."""
    from kombu.transport import redis as kombu_redis

    channel, qos = kombu_redis.Channel, kombu_redis.QoS
    if getattr(channel._connparams, "_panelpaint", False):
        return
    connparams, restore = channel._connparams, qos.restore_unacked

    def _connparams(self, asynchronous=False):  # noqa: ANN001, ANN202 - kombu's signature
        remembered = self.__dict__.setdefault(REMEMBERED, {})
        try:
            params = connparams(self, asynchronous=asynchronous)
        except AttributeError:
            # The channel lost its connection; the same Redis is reached with the same parameters.
            if asynchronous not in remembered:
                raise
            return dict(remembered[asynchronous])
        remembered[asynchronous] = dict(params)
        return params

    def restore_unacked(self, client=None):  # noqa: ANN001, ANN202 - kombu's signature
        try:
            return restore(self, client)
        except (AttributeError, redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("unacknowledged messages not restored at once (%s: %s): kombu restores them after the "
                        "visibility timeout", type(exc).__name__, exc)
            return None

    _connparams._panelpaint = True
    channel._connparams = _connparams
    qos.restore_unacked = restore_unacked
