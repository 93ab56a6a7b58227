"""ZIP helpers shared by the test folders: archives of zero-filled entries written as streams (so a
1 GB entry costs no memory to make) and directories that lie about sizes.

A plain module (not a conftest) so that any test folder can import it by name, like `servicekit`.
"""
from __future__ import annotations

import struct
import zipfile
from pathlib import Path

CHUNK = b"\0" * (1 << 20)


def write_zip(path: Path, entries: dict[str, bytes | int], level: int = 1) -> Path:
    """A deflated ZIP of `entries`: bytes as given, or an int for that many zero bytes, streamed."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for name, content in entries.items():
            if isinstance(content, bytes):
                zf.writestr(name, content)
                continue
            with zf.open(name, "w", force_zip64=content >= 0xFFFFFFFF) as out:
                left = content
                while left > 0:
                    out.write(CHUNK[:min(left, len(CHUNK))])
                    left -= len(CHUNK)
    return path


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
