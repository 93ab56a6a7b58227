"""Peak memory of each process kind on the largest page and archive the settings allow (issue #14):
the service laid out as `panelpaint up` runs it, each working process's VmHWM read per step (the
steps and the figures: docs/benchmarks.md, "Memory"). Linux only (/proc).

    python -m bench.memory                      # a 60 Mpx page, as shipped: several minutes
    python -m bench.memory --pixels 20000000"""
from __future__ import annotations

import argparse
import http.cookiejar
import io
import json
import os
import platform
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from cli.service import Supervisor, web_argv, worker_argv
from panelpaint import queue
from panelpaint.images import page_file_bytes_limit
from panelpaint.settings import Settings, load_settings
from tests.panelpaint.comic_pages import sparse_a4_page
from tests.testkit import ROOT, RedisServer, free_port, wait_for, wait_port, write_zip

MB = 1_000_000


# --- inputs ------------------------------------------------------------------------------------

# --- processes ---------------------------------------------------------------------------------

def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


class Watched:
    """One working process whose peak RSS is read per step."""

    def __init__(self, name: str, pid: int):
        self.name, self.pid = name, pid

    def rss(self) -> int:
        return _status_kb(self.pid, "VmRSS") * 1024

    def reset(self) -> int:
        """Set the peak to the current RSS (Linux 4.0+); returns the current RSS."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        return self.rss()

    def peak(self) -> int:
        return _status_kb(self.pid, "VmHWM") * 1024


def only_child(pid: int, what: str) -> int:
    children = wait_for(lambda: psutil.Process(pid).children(), 120, f"the {what}'s child process")
    if len(children) != 1:
        raise SystemExit(f"the {what} has {len(children)} children, expected one")
    return children[0].pid


# --- HTTP --------------------------------------------------------------------------------------

class Client:
    """The dashboard over HTTP: an API token for uploads, a logged-in session for page views."""

    def __init__(self, base: str, token: str):
        self.base, self.token = base, token
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def call(self, method: str, path: str, data: bytes | None = None, headers: dict | None = None,
             api: bool = True) -> tuple[int, bytes]:
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers or {})
        if api:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with self.opener.open(req, timeout=600) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def submit(self, name: str, style_id: int, files: dict[str, bytes]) -> dict:
        fields = {"name": name, "style_id": str(style_id),
                  "pages": [FileStorage(io.BytesIO(data), filename=fname) for fname, data in files.items()]}
        boundary, body = encode_multipart(_multidict(fields))
        status, out = self.call("POST", "/api/v1/batches", body,
                                {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        if status != 201:
            raise SystemExit(f"upload refused: {status} {out[:500]!r}")
        return json.loads(out)

    def login(self, email: str, password: str) -> None:
        _, html = self.call("GET", "/login", api=False)
        csrf = re.search(rb'name="csrf_token" value="([^"]+)"', html).group(1).decode()
        body = urllib.parse.urlencode({"email": email, "password": password, "csrf_token": csrf}).encode()
        status, _ = self.call("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"},
                              api=False)
        if status != 200:
            raise SystemExit(f"login failed: {status}")

    def page_view(self, page_id: int) -> int:
        """The review page and every image it shows, as a browser fetches them; returns the count."""
        status, html = self.call("GET", f"/review/{page_id}", api=False)
        if status != 200:
            raise SystemExit(f"page view failed: {status}")
        srcs = sorted(set(re.findall(rb'<img[^>]+src="(/[^"]+)"', html)))
        for src in srcs:
            self.call("GET", src.decode().replace("&amp;", "&"), api=False)
        return 1 + len(srcs)


def _multidict(fields: dict):
    from werkzeug.datastructures import MultiDict

    md = MultiDict()
    for key, value in fields.items():
        for v in value if isinstance(value, list) else [value]:
            md.add(key, v)
    return md


# --- the service -------------------------------------------------------------------------------

class Service:
    def __init__(self, tmp: Path, pixels: int):
        self.tmp = tmp
        self.redis = RedisServer(tmp / "redis")
        overrides = dict(
            var_dir=tmp / "var", database_url=f"sqlite:///{tmp / 'store.db'}", storage_root=tmp / "storage",
            redis_url="", embedded_redis_port=self.redis.port, web_port=free_port(), secret_key="bench-memory",
            device="cpu", max_image_pixels=pixels, allow_root=True,
            # A 60 Mpx page takes minutes on two cores; the shipped limits are for a GPU host.
            task_soft_time_limit=1800, task_time_limit=1900, visibility_timeout=3800, render_lease_seconds=600,
        )
        self.settings: Settings = load_settings(**overrides)
        s = self.settings
        self.env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "STORAGE_ROOT")}
        self.env.update({"REDIS_URL": s.effective_redis_url(), "DATABASE_URL": s.database_url,
                         "STORAGE_ROOT": str(s.storage_root), "PANELPAINT_VAR_DIR": str(s.var_dir),
                         "SECRET_KEY": s.secret_key, "PANELPAINT_DEVICE": "cpu",
                         "PANELPAINT_MAX_IMAGE_PIXELS": str(pixels), "PANELPAINT_WEB_PORT": str(s.web_port),
                         **{f"PANELPAINT_{k.upper()}": str(v) for k, v in overrides.items()
                            if k.startswith(("task_", "visibility", "render_lease"))}})
        (tmp / "logs").mkdir(parents=True)
        self.sup = Supervisor(tmp / "logs")
        self.redis.start()
        from migrations.runner import upgrade

        upgrade(s.database_url)
        self._accounts()
        render = self.sup.start("worker-render", worker_argv(s, ["render"], 1, "prefork", "render@bench"), self.env,
                                cwd=ROOT)
        io_proc = self.sup.start("worker-io", worker_argv(s, ["io"], 1, "prefork", "io@bench"), self.env, cwd=ROOT)
        web = self.sup.start("web", web_argv(s, 1, 8), self.env, cwd=ROOT)
        wait_port(s.web_port, web, 120, "the dashboard")
        wait_for(lambda: len(queue.live_workers(s)) == 2, 180, "a render and an io worker")
        self.web = Watched("web (gunicorn worker)", only_child(web.pid, "gunicorn master"))
        self.io = Watched("io worker (pool child)", only_child(io_proc.pid, "io worker"))
        self.render = Watched("render worker (pool child)", only_child(render.pid, "render worker"))
        self.client = Client(f"http://{s.web_host}:{s.web_port}", self.token)

    def _accounts(self) -> None:
        from panelpaint.store import accounts, styles
        from panelpaint.store.db import Store
        from panelpaint.store.schema import Role
        from panelpaint.store.storage import storage_from_settings

        self.store = Store(self.settings.database_url)
        self.email, self.password = "bench@example.com", "bench-password-123"
        style_png = (ROOT / "samples" / "style.png").read_bytes()
        with Image.open(io.BytesIO(style_png)) as im:
            size = im.size
        with self.store.session() as s:
            studio = accounts.create_studio(s, "Bench")
            user = accounts.create_user(s, studio.id, self.email, self.password, Role.admin)
            _, self.token = accounts.create_api_token(s, user.id, "bench")
            key = storage_from_settings(self.settings).put_bytes(style_png, ".png")
            self.style_id = styles.add_style_reference(s, studio.id, "sample", [], key, *size).id

    # --- the job store's view ---

    def upload_done(self, batch_id: int) -> bool:
        from panelpaint.store import uploads
        from panelpaint.store.schema import Upload

        with self.store.session() as s:
            rows = s.query(Upload).filter(Upload.batch_id == batch_id).all()
            return bool(rows) and all(u.status not in uploads.UNFINISHED for u in rows)

    def pages(self, batch_id: int) -> list[tuple[int, str, str, str | None]]:
        """(page id, name, status, error) of a batch's pages, in order."""
        from panelpaint.store.schema import Page

        with self.store.session() as s:
            rows = s.query(Page).filter(Page.batch_id == batch_id).order_by(Page.position)
            return [(p.id, p.source_name, p.status.value, p.error) for p in rows]

    def finished(self, batch_id: int) -> bool:
        pages = self.pages(batch_id)
        return bool(pages) and all(status in ("succeeded", "failed", "cancelled") for _, _, status, _ in pages)

    def close(self) -> None:
        self.sup.stop(["web"])
        self.sup.stop()
        self.store.dispose()
        self.redis.stop()


# --- the run -----------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_pixels = Settings.model_fields["max_image_pixels"].default
    parser.add_argument("--pixels", type=int, default=default_pixels,
                        help=f"the pixel limit, and the largest page (default {default_pixels:,}, as shipped)")
    parser.add_argument("--mode", choices=["L", "RGB", "RGBA"], default="RGB",
                        help="the largest page's pixels: a grey scan (L), a colour scan (RGB, default) or RGBA")
    parser.add_argument("--bomb-bytes", type=int, default=1 << 30, help="the zero-filled entry (default 1 GiB)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="pp-bench-memory-"))
    t0 = time.monotonic()
    page = sparse_a4_page(args.pixels, 1, args.mode)
    with Image.open(io.BytesIO(page)) as im:
        size = im.size
    cap = page_file_bytes_limit(args.pixels)
    archive = write_zip(tmp / "book.cbz", {"001.png": page, "002.png": sparse_a4_page(1_000_000, 2),
                                               "003.png": args.bomb_bytes, "004.png": cap - (1 << 20)}).read_bytes()
    print(f"inputs: a {size[0]}x{size[1]} {args.mode} page ({size[0] * size[1] / 1e6:.1f} Mpx, "
          f"PNG {len(page) / MB:.1f} MB); an archive of {len(archive) / MB:.1f} MB unpacking to "
          f"{(len(page) + args.bomb_bytes + cap) / MB:,.0f} MB (4 entries); made in {time.monotonic() - t0:.0f} s")
    svc = Service(tmp, args.pixels)
    results: list[tuple[str, str, int, int, float]] = []

    def step(what: str, proc: Watched, run: Callable[[], object]) -> object:
        base = proc.reset()
        t = time.monotonic()
        out = run()
        results.append((proc.name, what, base, proc.peak(), time.monotonic() - t))
        return out

    try:
        # Warm every process (imports, model, database engines, templates) with one small page.
        warm = svc.client.submit("warm-up", svc.style_id, {"warm.png": sparse_a4_page(1_000_000, 0)})
        wait_for(lambda: svc.finished(warm["id"]), 600, "the warm-up page")
        svc.client.login(svc.email, svc.password)
        svc.client.page_view(svc.pages(warm["id"])[0][0])
        for proc in (svc.web, svc.io, svc.render):
            proc.reset()

        render_base = svc.render.reset()
        t_render = time.monotonic()
        batch = step("storing the archive upload", svc.web,
                     lambda: svc.client.submit("archive", svc.style_id, {"book.cbz": archive}))
        step("unpacking the archive", svc.io, lambda: wait_for(lambda: svc.upload_done(batch["id"]), 1800, "unpacking"))
        step("panels and finishing the largest page", svc.io,
             lambda: wait_for(lambda: svc.finished(batch["id"]), 3600, "the archive's pages"))
        results.append((svc.render.name, "colouring the archive's pages", render_base, svc.render.peak(),
                        time.monotonic() - t_render))
        pages = svc.pages(batch["id"])
        largest = next(p for p in pages if p[1].endswith("001.png"))
        if largest[2] != "succeeded":
            raise SystemExit(f"the largest page did not succeed: {largest}")
        loose = step("storing the largest page sent as an image", svc.web,
                     lambda: svc.client.submit("loose", svc.style_id, {"big.png": page}))
        svc.client.call("POST", f"/api/v1/batches/{loose['id']}/cancel")  # its render is not measured
        shown = step("a page view of the largest page", svc.web, lambda: svc.client.page_view(largest[0]))
    finally:
        svc.close()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, device cpu; pixel limit {args.pixels:,}, "
          f"largest page file {cap:,} bytes")
    print("pages of the archive: " + "; ".join(f"{name} {status}" + (f" ({err[:90]})" if err else "")
                                               for _, name, status, err in pages))
    print(f"page view: {shown} requests (the review page and the images it shows)")
    print(f"{'process':28} {'step':42} {'before MB':>10} {'peak MB':>9} {'added MB':>9} {'s':>6}")
    for name, what, base, peak, seconds in results:
        print(f"{name:28} {what:42} {base / MB:10.0f} {peak / MB:9.0f} {(peak - base) / MB:9.0f} {seconds:6.1f}")


if __name__ == "__main__":
    main()
