"""Reversible review end to end in headless Chromium (the real stack of `tests/e2e/dashboard.py`):
a reviewer rejects a page with `r`, lands on the next page and takes it back with `u`; a page whose
panel is rejected cannot be approved and the batch's download buttons wait for approved work; every
rejected page and panel is re-rendered in one action with another seed; the 100% view shows the
result beside the line art at native size, both panned together. Screenshots go to
test-artifacts/screenshots/.
"""
from __future__ import annotations

import io
import re
import time

import pytest
from PIL import Image

from tests.panelpaint.comic_pages import style_png, two_panel_page
from tests.e2e.dashboard import shoot, signed_in_page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def big_page() -> bytes:
    """The two-panel page at three times its size (960x1320): larger than the 100% view, so it pans."""
    img = Image.open(io.BytesIO(two_panel_page())).resize((960, 1320), Image.NEAREST)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def test_undo_rerender_rejected_and_zoom(stack, browser):
    from playwright.sync_api import expect

    base = stack.start_web()
    page, errors = signed_in_page(browser, base, height=900)
    page.goto(f"{base}/styles")
    page.fill("#style-name", "Sunny")
    page.set_input_files("#image", files=[{"name": "sunny.png", "mimeType": "image/png", "buffer": style_png()}])
    page.click("text=Upload style")
    expect(page.locator("h1")).to_have_text("Sunny")

    page.goto(f"{base}/batches/new")
    page.fill("#name", "Week one")
    page.select_option("#style_id", label="Sunny")
    page.set_input_files("#pages", files=[{"name": f"p{i}.png", "mimeType": "image/png", "buffer": big_page()}
                                          for i in (1, 2)])
    page.click("text=Start colouring")
    expect(page.locator("h1")).to_contain_text("Week one")
    batch_url = page.url
    for i in (0, 1):
        try:
            expect(page.locator(".thumb").nth(i).locator("[data-status]")).to_have_text("succeeded", timeout=180_000)
        except AssertionError:
            raise AssertionError(f"the pages were not coloured; worker log:\n{stack.worker_output()}") from None
    # Nothing approved yet: the download buttons say so instead of leading to an empty archive.
    expect(page.locator("#download-cbz")).to_be_disabled()

    # `r` rejects page 1 and moves on; the next page offers to take it back, and `u` does.
    page.click("text=Review")
    expect(page.locator("h1")).to_contain_text("p1.png")
    first_review = page.url
    page.wait_for_selector("body[data-ready]")  # the shortcuts are wired
    page.locator("body").press("r")
    expect(page.locator("h1")).to_contain_text("p2.png")
    expect(page.locator("form.undo-last")).to_contain_text("You rejected p1.png")
    shoot(page, "review_undo_offer")
    page.locator("body").press("u")
    expect(page).to_have_url(first_review)
    expect(page.locator("#review-status")).to_have_text("pending")
    expect(page.locator(".flash.success")).to_contain_text("decision undone")
    expect(page.locator(".comments")).to_contain_text("undone")  # the history keeps the decision
    page.locator("body").press("r")  # rejected for good this time

    # Page 2: its panel 1 is rejected, so the page cannot be approved.
    expect(page.locator("h1")).to_contain_text("p2.png")
    page.click("button[aria-label='Reject panel 1']")
    expect(page.locator("#approve-button")).to_be_disabled()
    expect(page.locator("#approve-blocked")).to_contain_text("Panel 1 rejected")
    shoot(page, "review_panel_rejected")

    # The 100% view: result and line art at native size, panned together.
    page.locator("body").press("z")
    expect(page.locator("#zoom")).to_be_visible()
    after = page.locator('#zoom [data-zoom="after"]')
    before = page.locator('#zoom [data-zoom="before"]')
    deadline = time.monotonic() + 20
    while page.evaluate("() => document.querySelector('#zoom [data-zoom=after] img').naturalWidth") != 960:
        assert time.monotonic() < deadline, "the result did not load at full size"
        time.sleep(0.1)
    assert page.evaluate("() => document.querySelector('#zoom [data-zoom=after] img').clientWidth") == 960  # 100%
    box = after.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 - 150, box["y"] + box["height"] / 2 - 200, steps=5)
    page.mouse.up()
    moved = after.evaluate("(v) => [v.scrollLeft, v.scrollTop]")
    assert moved[0] > 100 and moved[1] > 150, moved
    assert before.evaluate("(v) => [v.scrollLeft, v.scrollTop]") == moved  # both sides show the same lines
    page.select_option("#zoom-panel", label="Panel 2")
    assert after.evaluate("(v) => v.scrollTop") > moved[1]
    shoot(page, "review_zoom")
    page.locator("body").press("Escape")
    expect(page.locator("#zoom")).to_be_hidden()

    # Everything rejected in the batch, re-rendered in one action with another seed.
    page.goto(batch_url)
    expect(page.locator("#rerender-rejected")).to_contain_text("2 rejected")
    page.fill("#rj-seed", "4242")
    shoot(page, "batch_rerender_rejected")
    page.click("#rerender-rejected-button")
    expect(page.locator(".flash.success")).to_contain_text("2 rejected page(s) or panel(s) queued again")
    expect(page.locator("#rerender-rejected")).to_have_count(0)
    for i in (0, 1):
        expect(page.locator(".thumb").nth(i).locator("[data-status]")).to_have_text("succeeded", timeout=180_000)
    page.goto(first_review)
    expect(page.locator("#page-version")).to_contain_text("version 2 · variant seed 4242", timeout=180_000)
    page.locator("#next-page").click()
    # Page 2's panel 1 came back coloured anew; the header keeps the page's own version apart.
    deadline = time.monotonic() + 180
    while not page.locator("#panel-version").count():
        assert time.monotonic() < deadline, f"the panel re-render did not finish; worker log:\n{stack.worker_output()}"
        time.sleep(1)
        page.reload()
    expect(page.locator("#panel-version")).to_contain_text("panel 1 re-rendered (v1, seed 4242)")
    expect(page.locator("#page-version")).to_contain_text("version 1 · canonical colouring")
    expect(page.locator("#renders-table")).to_contain_text("panel 1")
    # Nothing is rejected now: page 2 can be approved, and the download buttons come alive.
    expect(page.locator("#approve-button")).to_be_enabled()
    page.wait_for_selector("body[data-ready]")
    page.locator("body").press("a")
    page.goto(batch_url)
    expect(page.locator("#download-cbz")).to_have_attribute("href", re.compile(r"/download\.cbz$"))
    assert not errors, errors
    page.context.close()
