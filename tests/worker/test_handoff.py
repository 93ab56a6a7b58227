"""The files passed between workers keep their readable keys, and the worker's triage and outcomes are plain values."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from celery.exceptions import Retry, SoftTimeLimitExceeded
from PIL import Image

from panelpaint import pages
from panelpaint.images import ImageError
from panelpaint.panels import Panel
from panelpaint.palette import Palette
from panelpaint.reference_match import Reference
from panelpaint.store.errors import StaleAttempt
from panelpaint.store.storage import LocalStorage
from worker import faults, handoff
from worker.faults import COLOURING, FINISHING, BadInput, Fault
from worker.outcome import Outcome

PANELS = [Panel((0, 0, 40, 30), [[0, 0], [39, 0], [39, 29], [0, 29]], 0),
          Panel((40, 0, 40, 30), [[40, 0], [79, 0], [79, 29], [40, 29]], 1)]


def prepared_page() -> pages.PreparedPage:
    sketches = [Image.new("L", (32, 24), 200 + i) for i in range(2)]
    page = pages.PreparedPage((80, 30), PANELS, [(0, 0, 40, 30), (40, 0, 80, 30)], sketches, [], [], "rtl")
    page.finishes = [pages.PanelFinish(Palette.from_json([{"color": "#ff0000", "share": 1.0}]), "coloured",
                                       [{"x": 3, "y": 4, "color": "#00ff00"}]), pages.PanelFinish()]
    return page


def test_a_hand_off_keeps_its_json_keys_and_round_trips(tmp_path):
    storage = LocalStorage(tmp_path)
    prepared = prepared_page()
    merge = handoff.PanelMerge(7, PANELS[1], PANELS)
    sent = handoff.Handoff(12, 2, "s" * 64 + ".png", "p1.png", handoff.Geometry.of(prepared), 99, "tiny+abc",
                           {"model": 0.5}, "cuda oom: smaller batches", merge)
    colours = [Image.new("RGB", (32, 24), (i, 2, 3)) for i in range(2)]
    key = handoff.save_handoff(storage, sent, colours)
    with np.load(io.BytesIO(storage.read_bytes(key))) as z:
        meta = json.loads(z["meta"].tobytes())
        assert sorted(z.files) == ["c0", "c1", "meta"]
    assert list(meta) == ["render_id", "attempt", "source_key", "name", "size", "direction", "panels", "boxes",
                          "finishes", "seed", "model_version", "timings", "degraded", "merge", "references"]
    assert meta["seed"] == 99 and meta["finishes"][0]["background"] == "coloured"
    assert set(meta["merge"]) == {"based_on", "panel", "page_panels"}
    got, arrays, refs = handoff.load_handoff(storage, key)
    assert got == sent and refs == [None, None]
    assert [a[0, 0].tolist() for a in arrays] == [[0, 2, 3], [1, 2, 3]]


def test_the_style_references_travel_once_per_painting(tmp_path):
    storage = LocalStorage(tmp_path)
    prepared = prepared_page()
    sent = handoff.Handoff(3, 1, "k", "p.png", handoff.Geometry.of(prepared), None, "v", {})
    painting = np.random.default_rng(0).integers(0, 256, (40, 50, 3)).astype(np.uint8)
    ref = Reference.of(painting)
    colours = [Image.new("RGB", (32, 24)) for _ in range(3)]
    key = handoff.save_handoff(storage, sent, colours, [ref, None, ref])
    with np.load(io.BytesIO(storage.read_bytes(key))) as z:
        assert sorted(z.files) == ["c0", "c1", "c2", "meta", "r0"]
        assert json.loads(z["meta"].tobytes())["references"] == [0, None, 0]
    _, _, refs = handoff.load_handoff(storage, key)
    assert refs[1] is None and refs[0] is refs[2]
    assert np.array_equal(refs[0].rgb, painting)
    with pytest.raises(ValueError, match="references"):
        handoff.save_handoff(storage, sent, colours, [ref])


def test_a_hand_off_without_finishes_seed_or_merge_reads_as_the_defaults(tmp_path):
    storage = LocalStorage(tmp_path)
    meta = {"render_id": 1, "attempt": 1, "source_key": "k", "name": "p.png", "size": [80, 30], "direction": "ltr",
            "panels": [p.to_dict() for p in PANELS], "boxes": [[0, 0, 40, 30], [40, 0, 80, 30]],
            "model_version": "v", "timings": {}, "merge": {}}
    buf = io.BytesIO()
    np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
             c0=np.zeros((24, 32, 3), np.uint8), c1=np.zeros((24, 32, 3), np.uint8))
    got, _, refs = handoff.load_handoff(storage, storage.put_bytes(buf.getvalue(), ".npz"))
    assert refs == [None, None]
    assert got.seed is None and got.merge is None and got.degraded is None
    assert got.geometry.finishes == [pages.PanelFinish(), pages.PanelFinish()]


def test_a_cut_round_trips_as_the_page_pipeline_takes_it(tmp_path):
    storage = LocalStorage(tmp_path)
    prepared = prepared_page()
    cut = handoff.load_cut(storage, handoff.save_cut(storage, prepared))
    assert (cut.size, cut.direction, cut.boxes) == ((80, 30), "rtl", prepared.boxes)
    assert [p.to_dict() for p in cut.panels] == [p.to_dict() for p in PANELS]
    assert [np.asarray(s).tolist() for s in cut.sketches] == [np.asarray(s).tolist() for s in prepared.sketches]
    assert cut.styles == cut.hints == cut.finishes == []


@pytest.mark.parametrize(("exc", "colouring", "finishing"), [
    (pages.Cancelled("stop"), Fault.CANCELLED, Fault.CANCELLED),
    (StaleAttempt(1, 1, 2, "running"), Fault.STALE, Fault.STALE),
    (BadInput("no style"), Fault.BAD_INPUT, Fault.BAD_INPUT),
    (ImageError("p.png: not a recognised image"), Fault.BAD_INPUT, Fault.BAD_INPUT),
    (ValueError("odd panel"), Fault.BAD_INPUT, Fault.UNEXPECTED),
    (ConnectionError("redis down"), Fault.TRANSIENT, Fault.TRANSIENT),
    (SoftTimeLimitExceeded(), Fault.TIME_LIMIT, Fault.TIME_LIMIT),
    (RuntimeError("bug"), Fault.UNEXPECTED, Fault.UNEXPECTED),
    (Retry(), None, None),
])
def test_one_triage_for_every_stage(exc, colouring, finishing):
    assert faults.classify(exc, COLOURING.bad_input) is colouring
    assert faults.classify(exc, FINISHING.bad_input) is finishing


def test_messages_and_outcomes_are_plain_strings(settings):
    assert FINISHING.message(Fault.UNEXPECTED, KeyError("x"), settings) == "finishing failed: KeyError: 'x'"
    assert COLOURING.message(Fault.TIME_LIMIT, SoftTimeLimitExceeded(), settings) == \
        f"took longer than {settings.task_soft_time_limit} s"
    assert json.dumps({"status": Outcome.HANDED_OFF}) == '{"status": "handed_off"}'
    assert Outcome.REQUEUED == "requeued" and f"{Outcome.STALE}" == "stale"
