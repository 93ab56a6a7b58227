"""A channel that lost its broker connection still acknowledges and restores its messages
(`worker.lost_broker`): kombu 5.7 raised AttributeError there, and the worker exited."""
from __future__ import annotations

import logging

import kombu
import pytest
import redis

import worker.celery_app  # noqa: F401 - making the worker's app installs the repairs

pytestmark = pytest.mark.redis

QUEUE = kombu.Queue("lost-broker", exchange=kombu.Exchange("lost-broker"), routing_key="lost-broker")


def delivered(url: str):
    """(connection, channel, a message taken from the queue and not yet acknowledged)."""
    connection = kombu.Connection(url)
    channel = connection.channel()
    with kombu.Producer(channel) as producer:
        producer.publish({"page": 7}, exchange=QUEUE.exchange, routing_key=QUEUE.routing_key, declare=[QUEUE])
    message = QUEUE(channel).get(no_ack=False)
    assert message is not None and message.payload == {"page": 7}
    return connection, channel, message


def lose_the_connection(connection: kombu.Connection, channel) -> None:  # noqa: ANN001 - kombu's Redis channel
    """What the consumer's connection loss leaves before it closes the channel: the channel's pools
    dropped, the transport without its connection."""
    channel._disconnect_pools()
    connection.transport.client = None


def test_a_page_finished_after_the_reconnection_is_acknowledged_on_its_old_channel(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    connection, channel, message = delivered(redis_server.url)
    assert client.hlen("unacked") == 1
    redis_server.kill()
    lose_the_connection(connection, channel)
    channel.close()  # the broker is down: its messages stay unacknowledged in Redis
    redis_server.start()
    message.ack()  # kombu 5.7.0: AttributeError: 'NoneType' object has no attribute 'client'
    assert client.hlen("unacked") == 0 and client.zcard("unacked_index") == 0
    assert client.llen(QUEUE.name) == 0, "an acknowledged message is not delivered again"


def test_an_acknowledgement_while_the_broker_is_down_fails_as_a_connection_error(redis_server):
    """Celery catches connection errors around an acknowledgement (one warning line, `worker.logs`);
    the message stays unacknowledged in Redis and comes back after the visibility timeout."""
    connection, channel, message = delivered(redis_server.url)
    redis_server.kill()
    lose_the_connection(connection, channel)
    channel.close()
    with pytest.raises(redis.ConnectionError):
        message.ack()
    redis_server.start()
    assert redis.Redis.from_url(redis_server.url).hlen("unacked") == 1


def test_closing_a_channel_after_the_loss_puts_its_messages_back(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    connection, channel, _message = delivered(redis_server.url)
    lose_the_connection(connection, channel)
    channel.close()  # kombu 5.7.0: AttributeError: 'NoneType' object has no attribute 'hostname'
    assert client.llen(QUEUE.name) == 1 and client.hlen("unacked") == 0


def test_closing_it_while_the_broker_is_down_is_one_warning(redis_server, caplog):
    connection, channel, _message = delivered(redis_server.url)
    redis_server.kill()
    lose_the_connection(connection, channel)
    with caplog.at_level(logging.WARNING, logger="worker.lost_broker"):
        channel.close()
    assert "not restored at once" in caplog.text
    redis_server.start()
    assert redis.Redis.from_url(redis_server.url).hlen("unacked") == 1, "left for kombu to restore later"
