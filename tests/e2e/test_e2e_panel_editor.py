"""The panel editor end to end in headless Chromium, on the real stack (`dashboard.Stack`): a batch
sent with "check panels first" waits after panel detection; in the review screen the reviewer sees
each box's confidence, resizes a box, is told why a box too small is refused, saves and confirms;
the page is then coloured with the edited boxes. On the finished page a box is split in two and
only those two panels are coloured again. Screenshots go to test-artifacts/screenshots/.
"""
from __future__ import annotations

import time

import pytest

from tests.e2e.dashboard import shoot, signed_in_page
from tests.panelpaint.comic_pages import style_png, two_panel_page

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def add_style(stack) -> None:  # noqa: ANN001
    """A style in the studio's library, stored as an upload would be (the style screens have their own test)."""
    from panelpaint.store import styles
    from panelpaint.store.db import Store
    from panelpaint.store.storage import storage_from_settings

    key = storage_from_settings(stack.settings).put_bytes(style_png(), ".png")
    store = Store(stack.db_url)
    with store.session() as s:
        styles.add_style_reference(s, 1, "Sunny", [], key, 96, 96)
    store.dispose()


def stored(stack, page_id: int):  # noqa: ANN001
    """The page's panels (position, bbox) and its renders (panel_id, status), read from the job store."""
    from panelpaint.store.db import Store
    from panelpaint.store.schema import Page, Render

    store = Store(stack.db_url)
    with store.session() as s:
        page = s.get(Page, page_id)
        panels = [(p.position, [p.x, p.y, p.w, p.h]) for p in page.panels]
        renders = [(r.panel_id, r.status.value) for r in s.query(Render).filter_by(page_id=page_id).order_by(Render.id)]
        ids = [p.id for p in page.panels]
    store.dispose()
    return panels, renders, ids


def drag(page, box, dx: float, dy: float) -> None:  # noqa: ANN001
    """Drag with the mouse from the middle of `box` (a bounding box) by (dx, dy) CSS pixels."""
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx / 2, y + dy / 2, steps=4)
    page.mouse.move(x + dx, y + dy, steps=4)
    page.mouse.up()


def wait_for(what: str, check, stack, timeout: float = 120) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen; worker log:\n{stack.worker_output()}")
        time.sleep(0.5)


def test_check_panels_first_then_edit_boxes_in_the_review_screen(stack, browser):
    from playwright.sync_api import expect

    add_style(stack)
    base = stack.start_web()
    page, errors = signed_in_page(browser, base, height=1400)
    expect(page).to_have_url(f"{base}/batches")

    # A batch whose pages wait after panel detection.
    page.goto(f"{base}/batches/new")
    page.fill("#name", "Checked chapter")
    page.select_option("#style_id", label="Sunny")
    page.check("#check_panels")
    page.set_input_files("#pages", files=[{"name": "page-01.png", "mimeType": "image/png", "buffer": two_panel_page()}])
    page.click("text=Start colouring")
    expect(page.locator("h1")).to_contain_text("Checked chapter")
    card = page.locator(".thumb").nth(0)
    expect(card.locator("[data-check]")).to_be_visible()
    page_id = int(card.get_attribute("data-page"))
    wait_for("panel detection", lambda: len(stored(stack, page_id)[0]) == 2, stack)
    time.sleep(2)  # the render message arrives too, and must leave the page uncoloured
    assert [status for _, status in stored(stack, page_id)[1]] == ["queued"]
    expect(card.locator("[data-status]")).to_have_text("queued")

    # The review screen: the boxes over the line art, each with its confidence.
    card.locator("[data-check]").click()
    editor = page.locator("#panel-editor")
    expect(editor.locator("#panel-check-note")).to_contain_text("Colouring waits")
    boxes = editor.locator(".ebox")
    expect(boxes).to_have_count(2)
    expect(boxes.nth(0).locator("span")).to_have_text("1 · 1.00")
    shoot(page, "panel_editor_held")

    # A box drawn too small is refused with the reason, and nothing is added.
    page.click("[data-tool=draw]")
    editor.locator(".editor-stage").scroll_into_view_if_needed()  # the mouse works in the viewport
    stage = editor.locator(".editor-stage").bounding_box()
    page.mouse.move(stage["x"] + 5, stage["y"] + 5)
    page.mouse.down()
    page.mouse.move(stage["x"] + 8, stage["y"] + 8, steps=2)
    page.mouse.up()
    expect(page.locator("#panel-editor-status")).to_contain_text("A panel is at least 16×16 pixels")
    expect(boxes).to_have_count(2)
    page.click("[data-tool=draw]")

    # Resize the first box from its bottom-right corner: 40 CSS pixels higher up.
    boxes.nth(0).click(position={"x": 30, "y": 30})
    expect(boxes.nth(0)).to_have_class("ebox selected")
    drag(page, boxes.nth(0).locator(".handle.se").bounding_box(), 0, -40)
    expect(boxes.nth(0).locator("span")).to_have_text("new · 1.00")
    before = stored(stack, page_id)[0]
    page.click("[data-tool=confirm]")
    expect(page.locator(".flash.success")).to_contain_text("Panels saved (1 changed). Panels confirmed")
    after = stored(stack, page_id)[0]
    assert after[1] == before[1] and after[0][1][:3] == before[0][1][:3] and after[0][1][3] < before[0][1][3] - 10
    expect(page.locator("#panel-check-note")).to_have_count(0)

    # Confirmed: the page is coloured with the edited boxes.
    wait_for("colouring", lambda: [s for _, s in stored(stack, page_id)[1]] == ["succeeded"], stack)

    # On the finished page, split the second box into a left and a right half: only they are coloured again.
    page.reload()
    expect(page.locator("#review-status")).to_have_text("pending")
    boxes.nth(1).click(position={"x": 30, "y": 30})
    page.click("[data-tool=split-x]")
    expect(boxes).to_have_count(3)
    # The keyboard: nudging the right half and back leaves it where it was; Delete would remove it.
    boxes.nth(2).click(position={"x": 30, "y": 30})
    for key in ("ArrowRight", "Shift+ArrowLeft", "Shift+ArrowRight", "ArrowLeft", "ArrowLeft", "ArrowRight"):
        page.keyboard.press(key)
    expect(page.locator("#panel-editor-status")).to_have_text("Box moved; save to keep it.")
    shoot(page, "panel_editor_split")
    page.click("[data-tool=save]")
    expect(page.locator(".flash.success")).to_contain_text("2 added, 1 removed")
    expect(page.locator(".flash.success")).to_contain_text("2 panel re-render(s) queued")
    panels, renders, ids = stored(stack, page_id)
    assert [pos for pos, _ in panels] == [0, 1, 2] and panels[1][1][2] + panels[2][1][2] == after[1][1][2]
    assert renders[0] == (None, "succeeded") and sorted(pid for pid, _ in renders[1:]) == sorted(ids[1:])
    wait_for("the two panel re-renders",
             lambda: [s for _, s in stored(stack, page_id)[1]] == ["succeeded"] * 3, stack)
    # While nothing is being coloured, a save that changes nothing is fine; the console stayed clean.
    page.reload()
    page.click("[data-tool=save]")
    expect(page.locator(".flash.success")).to_contain_text("nothing changed")
    assert errors == []
