"""Dashboard upload cost: how fast `POST /api/v1/batches` accepts pages (safe decode, storage, rows,
enqueue) and how fast the first thumbnail of a page is made, on the app itself (Flask test client,
SQLite, queue stubbed so only the web's own work is timed). Prints its figures.

    python -m bench.web_upload --pages 8 --dpi 300
"""
from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image

from tests.panelpaint.comic_pages import sparse_a4_page


def a4_page(dpi: int, seed: int) -> bytes:
    """A line-art page of A4 at `dpi`."""
    return sparse_a4_page(int(8.27 * dpi) * int(11.69 * dpi), seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=8)
    parser.add_argument("--dpi", type=int, default=300)
    args = parser.parse_args()

    from panelpaint import queue
    from panelpaint.settings import load_settings
    from migrations import runner as migrate
    from panelpaint.store import accounts, styles
    from panelpaint.store.db import Store
    from web import create_app

    queue.enqueue_render = lambda settings, render_id, task_id=None, countdown=None: task_id or f"task-{render_id}"
    queue.enqueue_ingest = lambda settings, page_id: f"ingest-{page_id}"
    tmp = Path(tempfile.mkdtemp(prefix="pp-bench-web-"))
    url = f"sqlite:///{tmp / 'db.sqlite'}"
    migrate.upgrade(url)
    settings = load_settings(var_dir=tmp, database_url=url, secret_key="bench", redis_url="redis://127.0.0.1:1/0")
    app = create_app(settings, {"RATELIMIT_STORAGE_URI": "memory://"})
    store = Store(url)
    with store.session() as s:
        studio = accounts.create_studio(s, "Bench")
        user = accounts.create_user(s, studio.id, "bench@bench.test", "bench-password", "admin")
        _, token = accounts.create_api_token(s, user.id, "bench")
        key = app.extensions["panelpaint"].storage.put_bytes(a4_page(72, 0), ".png")
        style_id = styles.add_style_reference(s, studio.id, "S", [], key, 10, 10).id
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()

    pages = [a4_page(args.dpi, i) for i in range(args.pages)]
    mb = sum(map(len, pages)) / 1e6
    w, h = Image.open(io.BytesIO(pages[0])).size
    t = time.perf_counter()
    response = client.post("/api/v1/batches", headers=headers, content_type="multipart/form-data", data={
        "name": "bench", "style_id": str(style_id),
        "pages": [(io.BytesIO(p), f"{i:03d}.png") for i, p in enumerate(pages)]})
    elapsed = time.perf_counter() - t
    assert response.status_code == 201, response.get_data(as_text=True)[:500]
    page_ids = [p["id"] for p in response.get_json()["pages"]]

    thumbs = []
    for page_id in page_ids:
        t = time.perf_counter()
        r = client.get(f"/api/v1/pages/{page_id}/image/source?size=360", headers=headers)
        thumbs.append(time.perf_counter() - t)
        assert r.status_code == 200
    t = time.perf_counter()
    client.get(f"/api/v1/pages/{page_ids[0]}/image/source?size=360", headers=headers)
    cached = time.perf_counter() - t

    print(f"pages: {args.pages} A4 at {args.dpi} dpi ({w}x{h}, {w * h / 1e6:.1f} Mpx), {mb:.1f} MB of PNG")
    print(f"upload POST /api/v1/batches: {elapsed:.2f} s total, {elapsed / args.pages:.3f} s/page, "
          f"{args.pages / elapsed:.2f} pages/s")
    print(f"first thumbnail (360 px) of a page: median {statistics.median(thumbs):.3f} s; cached: {cached * 1000:.1f} ms")
    store.dispose()


if __name__ == "__main__":
    main()
