"""End to end in headless Chromium (Playwright, the system browser): the real stack — a private Redis,
a SQLite job store and storage in a temporary folder, a real Celery worker started with
`panelpaint worker` on tiny random weights, and the dashboard served on a free port — driven like a
studio would: log in, upload a style and edit its colour key, upload a page, watch progress reach
done, review with the keyboard, approve, download the CBZ, place a colour hint on a panel and see it
fill its region in the re-render, ask for variants and pick one of them side by side, add a CBZ
chapter that a worker unpacks. A screenshot of every screen goes to test-artifacts/screenshots/.
"""
from __future__ import annotations

import io
import json
import re
import time
import xml.etree.ElementTree as ET
import zipfile

import pytest
from PIL import Image

from tests.panelpaint.comic_pages import style_png, two_panel_page
from tests.e2e.dashboard import PASSWORD, shoot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

def test_studio_day_in_the_browser(stack, browser, tmp_path):
    from playwright.sync_api import expect

    base = stack.start_web()
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True,
                                  permissions=["notifications"])
    context.set_default_timeout(20_000)
    # Browser notifications are recorded (in the tab's session storage, kept across reloads)
    # instead of shown: what the sender would see when a batch ends.
    context.add_init_script("""
        window.Notification = class {
          static permission = "granted";
          static requestPermission() { return Promise.resolve("granted"); }
          constructor(title, options) {
            const shown = JSON.parse(sessionStorage.getItem("notifications") || "[]");
            shown.push({title: title, body: (options || {}).body});
            sessionStorage.setItem("notifications", JSON.stringify(shown));
          }
        };
    """)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # Log in (a wrong password first: the message is shown).
    page.goto(f"{base}/batches")
    expect(page).to_have_url(f"{base}/login?next=%2Fbatches")
    page.fill("#email", "admin@e2e.test")
    page.fill("#password", "wrong-password")
    page.click("button[type=submit]")
    expect(page.locator(".flash.error")).to_contain_text("Wrong e-mail or password")
    shoot(page, "login")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/batches")
    expect(page.locator(".empty")).to_contain_text("No batches yet")
    errors.clear()  # the wrong password's 401 was expected; from here on the console must stay clean

    # Upload a style to the library.
    page.goto(f"{base}/styles")
    page.fill("#style-name", "Sunny")
    page.fill("#style-tags", "warm, day")
    page.set_input_files("#image", files=[{"name": "sunny.png", "mimeType": "image/png", "buffer": style_png()}])
    page.click("text=Upload style")
    expect(page.locator("h1")).to_have_text("Sunny")
    # Its preview started by itself: the sample sketch is being coloured with the new style.
    expect(page.locator(".flash.info")).to_contain_text("Preview queued")
    # Its colour key was extracted at upload: swatches with their shares; edit one swatch's colour.
    expect(page.locator("#colour-key .palette-strip rect").first).to_be_attached()
    assert page.locator("#colour-key .palette-strip rect").count() >= 3
    page.locator("#swatch-1").fill("#00aa00")
    page.click("#save-key")
    expect(page.locator(".flash.success")).to_contain_text("Colour key saved")
    expect(page.locator("#swatch-1")).to_have_value("#00aa00")
    expect(page.locator('#colour-key .palette-strip rect[fill="#00aa00"]')).to_have_count(1)
    shoot(page, "style_colour_key")

    # The live progress revalidates its status JSON (ETag, If-None-Match): recorded from here on.
    polls: list[tuple[str | None, int, str | None]] = []  # (If-None-Match sent, status, ETag answered)
    page.on("response", lambda r: polls.append((r.request.headers.get("if-none-match"), r.status,
                                                r.headers.get("etag"))) if "/batches/" in r.url and r.url.endswith("/status.json") else None)

    # A new batch: one good page and one renamed non-image, which must fail alone with its message.
    page.goto(f"{base}/batches/new")
    page.fill("#name", "Chapter 1")
    page.select_option("#style_id", label="Sunny (warm, day)")
    page.set_input_files("#pages", files=[
        {"name": "page-01.png", "mimeType": "image/png", "buffer": two_panel_page()},
        {"name": "page-02.png", "mimeType": "image/png", "buffer": b"this is a text file, not a page"},
    ])
    page.check('input[name="layers"][value="psd"]')  # every page gets a PSD: one ZIP of them below
    shoot(page, "new_batch")
    page.click("text=Start colouring")
    expect(page.locator("h1")).to_contain_text("Chapter 1")
    batch_url = page.url
    expect(page.locator(".flash.error")).to_contain_text("page-02.png: not a recognised image")

    # Live progress: the page's badge turns to succeeded by polling, without reloading.
    good = page.locator(".thumb").nth(0)
    bad = page.locator(".thumb").nth(1)
    expect(bad.locator("[data-status]")).to_have_text("failed")
    expect(bad.locator("[data-error]")).to_contain_text("not a recognised image")
    try:
        expect(good.locator("[data-status]")).to_have_text("succeeded", timeout=120_000)
    except AssertionError:
        raise AssertionError(f"the page was not coloured; worker log:\n{stack.worker_output()}") from None
    expect(page.locator(".spread [data-state]")).to_have_text("done")
    # The sender was told, once, by a browser notification.
    notes = "JSON.parse(sessionStorage.getItem('notifications') || '[]')"
    page.wait_for_function(f"{notes}.length > 0")
    shown = page.evaluate(notes)
    assert [n["title"] for n in shown] == ["Chapter 1: done"] and "1/2 done" in shown[0]["body"]
    expect(good.locator("img[data-thumb]")).to_have_attribute("src", re.compile(r"/image/result\?size=360$"))
    shoot(page, "batch")
    # Each poll after a page's first sent back the last ETag (a page drawn again starts afresh);
    # the server answered 304 exactly when the batch had not changed since.
    assert any(sent for sent, _, _ in polls), polls
    for (_, _, last_tag), (sent, status, tag) in zip(polls, polls[1:]):
        assert sent is None or sent == last_tag, polls
        assert (status == 304) == (sent is not None and sent == tag), polls

    page.goto(f"{base}/batches")
    expect(page.locator("[data-batch] [data-counts]")).to_contain_text("1/2 done")
    shoot(page, "batches")

    # Review with the keyboard: place a hint dot, then approve with "a".
    page.goto(batch_url)
    page.click("text=Review")
    expect(page.locator("#review-status")).to_have_text("pending")
    page.wait_for_selector("body[data-ready]")  # app.js has wired the controls (a slow machine parses first)
    page.locator("#compare").click(position={"x": 60, "y": 80})
    expect(page.locator("#hint-count")).to_have_text("1 hint(s) on panel 1")
    page.locator("input.slider").fill("30")
    shoot(page, "review")
    page.locator("body").press("a")
    expect(page.locator(".flash.success")).to_contain_text("approved")
    expect(page.locator("#review-status")).to_have_text("approved")
    expect(page.locator(".box")).to_have_count(2)  # the worker's panel detection outlined both panels
    page.locator("body").press("j")  # next page: the unreadable upload, with its message
    expect(page.locator("h1")).to_contain_text("page-02.png")
    expect(page.locator(".flash.error")).to_contain_text("not a recognised image")
    page.locator("body").press("k")
    expect(page.locator("h1")).to_contain_text("page-01.png")

    # Download the approved pages as CBZ and check it holds the coloured composite.
    page.goto(batch_url)
    with page.expect_download() as download_info:
        page.click("text=Download CBZ")
    target = tmp_path / "chapter.cbz"
    download_info.value.save_as(target)
    with zipfile.ZipFile(target) as cbz:
        assert cbz.namelist() == ["001-page-01.png", "ComicInfo.xml"]
        info = ET.fromstring(cbz.read("ComicInfo.xml"))  # what comic readers read: docs/api.md
        assert info.findtext("PageCount") == "1" and info.findtext("Manga") == "No"
        composite = Image.open(io.BytesIO(cbz.read("001-page-01.png")))
        assert composite.size == (320, 440) and composite.mode == "RGB"
    # The batch's layered files: every approved page's PSD in one ZIP, a group per panel.
    with page.expect_download() as download_info:
        page.click("text=PSD files (ZIP)")
    target = tmp_path / "chapter-psd.zip"
    download_info.value.save_as(target)
    with zipfile.ZipFile(target) as layered:
        assert layered.namelist() == ["001-page-01.psd"]
        from psd_tools import PSDImage

        psd = PSDImage.open(io.BytesIO(layered.read("001-page-01.psd")))
        assert [layer.name for layer in psd] == ["Gutters", "Panel 1", "Panel 2", "Lines"]
        assert [layer.name for layer in psd[1]] == ["Flats", "Shading"]

    # A colour hint placed on a panel: the re-render colours that panel, the hint's region is filled
    # with its colour exactly, and the page says which hints its result used.
    page.goto(batch_url)
    page.click("text=Review")
    review_url = page.url
    page_id = int(review_url.rsplit("/", 1)[1])
    expect(page.locator("#used-hints")).to_contain_text("used no colour hints")
    page.locator("#hint-color").fill("#1c7ed6")
    page.locator("#compare").click(position={"x": 60, "y": 80})
    expect(page.locator("#hint-count")).to_have_text("1 hint(s) on panel 1")
    expect(page.locator("#rr-panel option:checked")).to_have_text("Panel 1")
    (hint,) = json.loads(page.input_value("#hints"))
    page.click("#rerender-button")
    expect(page.locator(".flash.success")).to_contain_text("Re-render queued")
    deadline = time.monotonic() + 120
    while "used 1 colour hint(s)" not in page.locator("#used-hints").inner_text():
        assert time.monotonic() < deadline, f"the hint re-render did not finish; worker log:\n{stack.worker_output()}"
        time.sleep(1)
        page.reload()
    expect(page.locator("#used-hints")).to_contain_text("#1c7ed6")
    # What the browser shows (not a cached older result): blue where the dot is.
    shown = page.evaluate("""([x, y, width]) => {
        const img = document.querySelector("#compare .after img");
        const canvas = document.createElement("canvas");
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const g = canvas.getContext("2d");
        g.drawImage(img, 0, 0);
        const s = img.naturalWidth / width;
        return Array.from(g.getImageData(Math.floor(x * s), Math.floor(y * s), 1, 1).data);
    }""", [hint["x"], hint["y"], 320])
    assert shown[2] > shown[0] + 40 and shown[2] > shown[1] + 20, shown
    expect(page.locator("#compare .dot.used")).to_have_count(1)
    flats = Image.open(io.BytesIO(context.request.get(f"{base}/pages/{page_id}/image/flats").body())).convert("RGB")
    assert flats.getpixel((hint["x"], hint["y"])) == (0x1c, 0x7e, 0xd6)
    panel_one = flats.crop((19, 19, 301, 204))
    filled = sum(n for n, rgb in panel_one.getcolors(1 << 16) if rgb == (0x1c, 0x7e, 0xd6)) / (282 * 185)
    assert filled > 0.3, filled  # the whole region under the dot, not a dab around it
    shoot(page, "review_hint")

    # Variants: three re-renders with random seeds appear side by side as they finish; one is picked.
    before = context.request.get(f"{base}/pages/{page_id}/image/result").body()
    page.fill("#variant-count", "3")
    page.click("#variants-button")
    expect(page.locator(".flash.success")).to_contain_text("3 variants queued")
    cells = page.locator("#variant-set .variant")
    expect(cells).to_have_count(3)
    for i in range(3):
        expect(cells.nth(i).locator("[data-status]")).to_have_text("succeeded", timeout=120_000)
        expect(cells.nth(i).locator("img")).to_be_visible()
    boxes = [cells.nth(i).bounding_box() for i in range(3)]
    assert boxes[0]["y"] == boxes[1]["y"] == boxes[2]["y"] and boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]
    shoot(page, "review_variants")
    cells.nth(1).locator("button", has_text="Pick").click()
    expect(page.locator(".flash.success")).to_contain_text("is now this page's result")
    expect(page.locator("#variant-set .variant.current")).to_have_count(1)
    expect(page.locator("#variant-set .variant").nth(1)).to_have_class(re.compile(r"\bcurrent\b"))
    assert context.request.get(f"{base}/pages/{page_id}/image/result").body() != before
    expect(page.locator("#review-status")).to_have_text("pending")

    # A CBZ added to the batch: the request only checks and stores it, an io worker unpacks it. The
    # batch page says so, shows the new pages in reading order once they are in (it draws itself
    # again), and they are coloured like the others.
    page.goto(batch_url)
    chapter = io.BytesIO()
    with zipfile.ZipFile(chapter, "w") as zf:
        zf.writestr("ch2/10.png", two_panel_page())
        zf.writestr("ch2/9.png", two_panel_page())
    page.set_input_files("input[name=pages]", files=[
        {"name": "chapter-2.cbz", "mimeType": "application/zip", "buffer": chapter.getvalue()}])
    page.click("form[action$='/pages'] button[type=submit]")
    expect(page.locator(".flash.success")).to_contain_text("chapter-2.cbz: unpacking 2 page(s)")
    expect(page.locator(".thumb")).to_have_count(4, timeout=60_000)
    expect(page.locator(".thumb").nth(2)).to_contain_text("chapter-2.cbz/9.png")
    expect(page.locator(".thumb").nth(3)).to_contain_text("chapter-2.cbz/10.png")
    # The page drew itself again to show them, and kept its message.
    expect(page.locator(".flash.success")).to_contain_text("chapter-2.cbz: unpacking 2 page(s)")
    for i in (2, 3):
        expect(page.locator(".thumb").nth(i).locator("[data-status]")).to_have_text("succeeded", timeout=120_000)
    shoot(page, "batch_archive")

    page.goto(f"{base}/styles")
    expect(page.locator(".style-card")).to_have_count(1)
    expect(page.locator(".style-card")).to_contain_text("preview ready")
    shoot(page, "styles")
    page.click("text=Sunny")
    expect(page.locator("img[alt=preview]")).to_be_visible()
    shoot(page, "style")
    page.goto(f"{base}/workers")
    expect(page.locator("table").nth(1)).to_contain_text("e2e@")
    # The screen refreshes itself: the live worker is still listed after a refresh by polling.
    with page.expect_response(lambda r: r.url.endswith("/workers/status.json"), timeout=15_000):
        pass
    expect(page.locator("#worker-rows")).to_contain_text("e2e@")
    expect(page.locator("#broker-error")).to_be_hidden()
    shoot(page, "workers")
    page.goto(f"{base}/account")
    shoot(page, "account")
    assert not errors, errors
    context.close()
