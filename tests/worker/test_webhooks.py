"""Webhooks end to end in this process: the janitor announces a batch that ended, the delivery
task POSTs it to a real local HTTP receiver that checks the HMAC-SHA256 signature itself, a
failing endpoint is tried again after the backoff and given up after the last attempt, and the
log on each delivery row says what happened. Real Redis and job store (`harness.Stack`)."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness import Stack
from tests.testkit import free_port, random_weights
from panelpaint.store import batches, renders, webhooks
from panelpaint.store.events import list_events
from panelpaint.store.schema import DeliveryStatus, WebhookDelivery
from worker.sweeps import Janitor

pytestmark = pytest.mark.redis
BACKOFF = 0.3


class Receiver:
    """A local endpoint: answers each POST with the next of `answers` (then 200) and keeps what
    came, with whether its signature is the HMAC-SHA256 of the body under `secret`."""

    def __init__(self):
        self.secret = ""
        self.answers: list[int] = []
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                receiver.received.append({"body": json.loads(body), "signed": hmac.compare_digest(
                    expected, self.headers.get("X-Panelpaint-Signature", "")), "event": self.headers["X-Panelpaint-Event"],
                    "delivery": self.headers["X-Panelpaint-Delivery"]})
                self.send_response(receiver.answers.pop(0) if receiver.answers else 200)
                self.end_headers()

            def log_message(self, *args):  # noqa: ANN002 - quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stack(tmp_path, monkeypatch):
    fast = {"PANELPAINT_WEBHOOK_BACKOFF_SECONDS": str(BACKOFF), "PANELPAINT_WEBHOOK_MAX_ATTEMPTS": "3",
            "PANELPAINT_WEBHOOK_TIMEOUT_SECONDS": "2"}
    st = Stack(tmp_path, random_weights(tmp_path / "tiny.safetensors"), **fast)
    st.bind_settings(monkeypatch, **fast)  # the delivery tasks run here read the same
    try:
        yield st
    finally:
        st.close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def hook(stack, url: str) -> str:
    with stack.store.session() as s:
        return webhooks.add_webhook(s, stack.studio_id, None, url).secret


def end_pages(stack, render_ids, fail: bool = False):
    for rid in render_ids:
        with stack.store.session() as s:
            claim = renders.claim_render(s, rid, "w", 3)
        with stack.store.session() as s:
            if fail:
                renders.fail_render(s, rid, claim.attempt, "boom")
            else:
                renders.complete_render(s, rid, claim.attempt, {"composite": "c" * 64 + ".png"})


def send_due(stack) -> list:
    """A janitor tick, then the delivery tasks it queued, run here; the sends."""
    from worker import tasks

    sends = Janitor(stack.settings).tick().webhooks
    for send in sends:
        tasks.deliver_webhook.apply(args=[send.delivery_id, send.attempt], throw=True)
    return sends


def delivery(stack, delivery_id):
    with stack.store.session() as s:
        return s.get(WebhookDelivery, delivery_id)


def test_a_finished_batch_is_delivered_signed_and_retried_after_a_failure(stack, receiver):
    receiver.secret = hook(stack, receiver.url)
    receiver.answers = [503]  # the first attempt fails
    batch_id, rids = stack.add_batch(["a.png", "b.png"], enqueue=False)
    end_pages(stack, rids[:1])
    assert send_due(stack) == []  # one page still queued: nothing to announce
    end_pages(stack, rids[1:])
    (first,) = send_due(stack)
    assert first.attempt == 1 and len(receiver.received) == 1
    failed = delivery(stack, first.delivery_id)
    assert (failed.status, failed.attempts, failed.last_status_code) == (DeliveryStatus.pending, 1, 503)
    assert send_due(stack) == []  # not before the backoff
    time.sleep(BACKOFF + 0.1)
    (second,) = send_due(stack)
    assert (second.delivery_id, second.attempt) == (first.delivery_id, 2)
    done = delivery(stack, first.delivery_id)
    assert (done.status, done.attempts, done.last_status_code, done.next_attempt_at) == (
        DeliveryStatus.delivered, 2, 200, None)
    assert [r["signed"] for r in receiver.received] == [True, True]
    body = receiver.received[-1]["body"]
    assert body["event"] == receiver.received[-1]["event"] == "batch.finished"
    assert body["batch"]["id"] == batch_id and body["batch"]["pages"]["succeeded"] == 2
    assert body["delivery_id"] == int(receiver.received[-1]["delivery"]) == first.delivery_id
    # Announced once: later ticks send nothing more.
    assert send_due(stack) == [] and len(receiver.received) == 2
    with stack.store.session() as s:
        assert [e.kind for e in list_events(s, stack.studio_id, batch_id=batch_id, kind="batch.finished")] == [
            "batch.finished"]


def test_a_failed_batch_and_an_endpoint_that_never_answers_well(stack, receiver):
    receiver.secret = hook(stack, receiver.url)
    receiver.answers = [500, 500, 500]
    hook(stack, f"http://127.0.0.1:{free_port()}/nobody")  # nothing listens there
    _, rids = stack.add_batch(["a.png"], enqueue=False)
    end_pages(stack, rids, fail=True)
    sends = send_due(stack)
    for _ in range(2):
        time.sleep(BACKOFF * 2 ** _ + 0.1)
        sends += send_due(stack)
    assert sorted(s.attempt for s in sends) == [1, 1, 2, 2, 3, 3]
    with stack.store.session() as s:
        rows = {d.webhook.url: d for d in webhooks.list_deliveries(s, stack.studio_id)}
    ours, nobody = rows[receiver.url], next(d for url, d in rows.items() if url != receiver.url)
    assert (ours.event, ours.status, ours.attempts, ours.last_status_code) == ("batch.failed", DeliveryStatus.failed,
                                                                               3, 500)
    assert nobody.status == DeliveryStatus.failed and nobody.last_status_code is None
    assert nobody.last_error.startswith("not reached")
    assert [r["body"]["batch"]["state"] for r in receiver.received] == ["failed"] * 3


def test_a_batch_that_runs_again_is_announced_again(stack, receiver):
    receiver.secret = hook(stack, receiver.url)
    _, rids = stack.add_batch(["a.png"], enqueue=False)
    end_pages(stack, rids)
    assert len(send_due(stack)) == 1
    page_id = stack.page_of(rids[0]).id
    with stack.store.session() as s:
        again = renders.rerender(s, page_id).id
    assert send_due(stack) == []  # running again: not ended
    end_pages(stack, [again])
    assert len(send_due(stack)) == 1 and len(receiver.received) == 2


def test_signature_helpers_match_a_receivers_own_check():
    body = b'{"event":"batch.finished"}'
    signature = webhooks.sign("s3cret", body)
    assert signature == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert webhooks.verify("s3cret", body, signature) and not webhooks.verify("other", body, signature)
    assert not webhooks.verify("s3cret", body + b" ", signature)


def test_previews_and_cancelled_batches_are_not_announced(stack, receiver):
    receiver.secret = hook(stack, receiver.url)
    _, preview = stack.add_batch(["sample.png"], enqueue=False, options={batches.PREVIEW_OPTION: stack.style_id})
    end_pages(stack, preview)
    cancelled, _ = stack.add_batch(["a.png"], enqueue=False)
    with stack.store.session() as s:
        batches.cancel_batch(s, cancelled)
    assert send_due(stack) == [] and receiver.received == []
