"""/healthz reports the database and the broker separately; /readyz is ready only when both answer."""
from __future__ import annotations

import logging

import pytest

from web_helpers import build_app, web_settings

pytestmark = pytest.mark.redis


@pytest.fixture
def app_with_broker(app_settings, redis_server, queue_calls):  # noqa: ANN001
    app = build_app(app_settings.model_copy(update={"redis_url": redis_server.url}))
    yield app
    app.extensions["panelpaint"].store.dispose()


def test_both_answer(app_with_broker):
    client = app_with_broker.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok", "database": "ok", "broker": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_a_broker_outage_is_degraded_not_down_and_not_ready(app_with_broker, redis_server, caplog):
    client = app_with_broker.test_client()
    redis_server.stop()
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            health = client.get("/healthz")
            ready = client.get("/readyz")
    # Pages are still saved (and sent once it answers): alive, but not ready for a load balancer.
    assert health.status_code == 200
    assert health.get_json() == {"status": "degraded", "database": "ok", "broker": "ConnectionError"}
    assert ready.status_code == 503 and ready.headers["Retry-After"] == "5"
    assert ready.get_json()["broker"] == "ConnectionError"
    outage = [r for r in caplog.records if "broker" in r.getMessage()]
    assert len(outage) == 1 and outage[0].exc_info is None  # once per outage, one line
    redis_server.start()
    assert client.get("/readyz").status_code == 200


def test_a_database_outage_is_down(tmp_path, redis_server, queue_calls):  # noqa: ANN001
    app = build_app(web_settings(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:1/nowhere",
                                 redis_url=redis_server.url))
    client = app.test_client()
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.get_json() == {"status": "error", "database": "OperationalError", "broker": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.headers["Retry-After"] == "5"
    app.extensions["panelpaint"].store.dispose()


def test_health_needs_no_login(client):  # noqa: ANN001
    assert client.get("/readyz").status_code == 503  # the test apps' broker answers nothing
