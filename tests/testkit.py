"""What the tests and the benchmarks share: services (a private Redis, scratch PostgreSQL
databases, ports, waiting), child processes, tiny model weights and ZIP archives. Import it as
`tests.testkit`: pytest puts the repository root on the path (pyproject `pythonpath`), and the
benchmarks run from it (`python -m bench.NAME`). Pages are drawn by tests/panelpaint/comic_pages.py."""
from __future__ import annotations

import glob
import io
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

from cli.service import Supervisor, redis_argv

ROOT = Path(__file__).resolve().parents[1]
# Storage keys of files the job store's tests name but never read.
KEY_A, KEY_B = "a" * 64 + ".png", "b" * 64 + ".png"
# CI sets it: a service the tests need and cannot reach fails them instead of skipping them.
REQUIRE_SERVICES = os.environ.get("PANELPAINT_REQUIRE_SERVICES") == "1"


# --- services ----------------------------------------------------------------------------------

def missing_service(what: str) -> None:
    """Skip the test, or fail it when CI requires every service."""
    import pytest

    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (PANELPAINT_REQUIRE_SERVICES=1) but unavailable")
    pytest.skip(f"{what} unavailable")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    """Nothing listens on the port any more (a server could bind it again with SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_for(pred: Callable[[], object], timeout: float, what: str, state: Callable[[], object] | None = None,
             every: float = 0.2) -> object:
    """Poll `pred` until it gives something true, and return that; after `timeout` seconds fail,
    saying what and, if given, `state()`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}" + (f": {state()}" if state else ""))


def race(n: int, target: Callable[[int], object], timeout: float = 60) -> tuple[list[object], list[Exception]]:
    """Run `target(i)` for i in range(n) in n threads released together: (results by i, errors raised)."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n
    errors: list[Exception] = []

    def run(i: int) -> None:
        try:
            barrier.wait(10)
            results[i] = target(i)
        except Exception as exc:  # noqa: BLE001 - collected for the caller to assert on
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return results, errors


def wait_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 20, what: str = "a server") -> None:
    """Wait until something accepts connections on loopback `port`; fail at once if `proc` exits."""
    def accepting() -> bool:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
            return True
        except OSError:
            return False

    wait_for(accepting, timeout, f"{what} on port {port}", every=0.05)


def postgres_admin_url() -> str | None:
    """DATABASE_URL when it names a PostgreSQL server (CI's), as a psycopg URL; else None."""
    url = os.environ.get("DATABASE_URL", "")
    return url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql") else None


class ScratchDatabase:
    """A new PostgreSQL database on the server `admin_url` names (a copy of `template` when given),
    for one test or run; `drop` removes it. Raises `sqlalchemy.exc.OperationalError` when the
    server cannot be reached."""

    def __init__(self, admin_url: str, prefix: str = "pp_test", template: str | None = None):
        import sqlalchemy as sa

        self.name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self.engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        copy = f' TEMPLATE "{template}"' if template else ""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{self.name}"{copy}'))
        except sa.exc.OperationalError:
            self.engine.dispose()
            raise
        self.url = self.engine.url.set(database=self.name).render_as_string(hide_password=False)

    def drop(self) -> None:
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.engine.dispose()


class RedisServer:
    """A private redis-server (the one `panelpaint up` embeds) that a test may stop and start again
    on the same port and files; with `appendonly`, its queues survive the restart."""

    def __init__(self, directory: Path, *, appendonly: bool = True):
        self.port = free_port()
        self.dir = directory
        self.appendonly = appendonly
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)  # redis-server exits at once without its --dir
        self.proc = subprocess.Popen(redis_argv(self.port, self.dir, appendonly=self.appendonly), cwd=self.dir,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, 10, "redis-server")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # redis-server writes its append-only file on SIGTERM
            self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no shutdown save; what the append-only file had on disk is what comes back."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None


class PostgresServer:
    """A private PostgreSQL cluster (initdb in a temporary folder, trust authentication, its own
    port) that a test may stop at once and start again. The server refuses to run as root, so
    under root it runs as the `postgres` user (`runuser`). `start()` raises `RuntimeError` with
    the reason when that is impossible."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        self.bin = Path(found[-1]).parent if found else None
        self.port = free_port()
        self.dir: Path | None = None
        self.user: str | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        result = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed: {(result.stderr or result.stdout).strip()[-500:]}")

    def start(self) -> None:
        if self.bin is None:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
        if self.dir is None:
            if os.geteuid() == 0:
                try:
                    pwd.getpwnam("postgres")
                except KeyError:
                    raise RuntimeError("running as root and there is no postgres user to run the server") from None
                self.user = "postgres"
            # Not under pytest's tmp_path: the server's user must be able to reach the folder.
            self.dir = Path(tempfile.mkdtemp(prefix="pp-pg-"))
            if self.user:
                shutil.chown(self.dir, self.user)
            self._run(str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "-A", "trust",
                      "--no-sync", "-E", "UTF8")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w",
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        wait_port(self.port, None, 30, "postgres")

    @property
    def running(self) -> bool:
        return self.dir is not None and (self.dir / "data" / "postmaster.pid").exists()

    def stop(self, mode: str = "immediate") -> None:
        """`immediate`: every connection is cut at once, as when the database host fails."""
        if self.running:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        import sqlalchemy as sa

        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)

    def remove(self) -> None:
        self.stop("fast")
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


# --- processes ---------------------------------------------------------------------------------

class Processes(Supervisor):
    """`panelpaint up`'s supervisor (each child in its own process group, a log per child), with
    what tests and benchmarks also do to a child: read its log, kill it outright."""

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def proc(self, name: str) -> subprocess.Popen:
        return self._child(name).proc

    def _child(self, name: str):  # noqa: ANN202 - cli.service.Child
        return next(c for c in self.children if c.name == name)

    def stop_child(self, name: str, timeout: float) -> int:
        """SIGTERM the child (a warm shutdown), SIGKILL its group after `timeout`; its exit status."""
        child = self._child(name)
        child.stop_timeout = timeout
        self.stop([name])
        return child.proc.returncode

    def kill(self, name: str) -> None:
        """SIGKILL the child and everything in its group at once (a lost machine)."""
        child = self._child(name)
        try:
            os.killpg(child.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.proc.wait(10)
        self.children.remove(child)


# --- model weights -----------------------------------------------------------------------------

def tiny_nets(seed: int = 0, config: str = "tiny"):  # noqa: ANN201 - (Generator, PaintingStyleEncoder)
    """A randomly initialised generator of `config` and a style encoder to match, in eval mode:
    the tiny ones run a page in milliseconds (the tests check plumbing, not art)."""
    import torch

    from models.generator import Generator
    from models.style_encoders import PaintingStyleEncoder

    torch.manual_seed(seed)
    generator = Generator(config)
    encoder = (PaintingStyleEncoder(widths=(8, 16), image_size=32, hist_bins=4, hist_size=16, hidden=32)
               if config == "tiny" else PaintingStyleEncoder())
    return generator.eval(), encoder.eval()


def random_weights(path: Path, config: str = "tiny", version: str = "test-tiny", seed: int = 0) -> Path:
    """`tiny_nets` saved as a panelpaint weights file."""
    from models.weights_io import save_weights

    return save_weights(path, *tiny_nets(seed, config), version=version)


# --- archives ----------------------------------------------------------------------------------

ZEROS = b"\0" * (1 << 20)


def write_zip(path: Path, entries: dict[str, bytes | int], level: int = 1) -> Path:
    """A deflated ZIP of `entries`: bytes as given, or an int for that many zero bytes, streamed
    (a 1 GB entry costs no memory to make)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for name, content in entries.items():
            if isinstance(content, bytes):
                zf.writestr(name, content)
                continue
            with zf.open(name, "w", force_zip64=content >= 0xFFFFFFFF) as out:
                left = content
                while left > 0:
                    out.write(ZEROS[:min(left, len(ZEROS))])
                    left -= len(ZEROS)
    return path


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """A ZIP (or CBZ) of `entries` in memory."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def lie_about_size(path: Path, name: str, new_size: int) -> Path:
    """Rewrite the uncompressed size of `name` in both its local header and the central directory."""
    raw, enc = bytearray(path.read_bytes()), name.encode()
    # (signature, offset of the name length, of the uncompressed size, header length before the name)
    for sig, name_len_at, size_at, fixed in ((b"PK\x03\x04", 26, 22, 30), (b"PK\x01\x02", 28, 24, 46)):
        at = raw.find(sig)
        while at != -1:
            n = struct.unpack_from("<H", raw, at + name_len_at)[0]
            if raw[at + fixed:at + fixed + n] == enc:
                struct.pack_into("<I", raw, at + size_at, new_size)
            at = raw.find(sig, at + 4)
    path.write_bytes(bytes(raw))
    return path
