#!/usr/bin/env python3
"""Container health probe: exit 0 when the HTTP service at the given URL answers below 500.

Used by the images' HEALTHCHECK and by compose.yaml (web at /readyz, Flower at /healthcheck).
Standard library only, so it runs in either image without adding curl to it. Any answer under
500 means the server process is up and serving (a 404 from an older build still counts, and so
does the 401 of Flower's /healthcheck, which needs the login like the rest of Flower); a 5xx
(the dashboard's /readyz answers 503 while its database or broker is unreachable), a refused connection or
a time-out marks the container unhealthy.
"""
from __future__ import annotations

import http.client
import sys
import urllib.parse

DEFAULT_URL = "http://127.0.0.1:8000/readyz"


def probe(url: str, timeout: float = 5.0) -> tuple[bool, str]:
    """(healthy, reason) for one GET of `url`; never raises."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return False, f"not an http:// URL: {url!r}"
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/")
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{url}: {exc}"
    finally:
        conn.close()
    return status < 500, f"{url}: HTTP {status}"


def main(argv: list[str]) -> int:
    healthy, reason = probe(argv[1] if len(argv) > 1 else DEFAULT_URL)
    print(reason, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
