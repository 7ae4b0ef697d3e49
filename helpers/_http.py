"""Fetch a page from this machine (127.0.0.1 only), waiting briefly for a server that is starting."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from urllib.parse import urlparse

from ._errors import CourseError

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def fetch(url: str, *, timeout: float = 10.0) -> str:
    """GET a page served on this machine and return its text.

    Retries while the server is still starting, up to ``timeout`` seconds.
    CLI: ``curl http://127.0.0.1:8080/``

    >>> fetch("http://127.0.0.1:8080/")   # doctest: +SKIP
    '<!doctype html>...'
    """
    host = urlparse(url).hostname
    if host not in _LOCAL_HOSTS:
        raise CourseError(
            f"The course only fetches from this machine, not {host!r}.",
            hint="Publish the port on 127.0.0.1 and fetch http://127.0.0.1:PORT/ instead.",
        )
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(
                url, timeout=max(1.0, deadline - time.monotonic())
            ) as reply:
                return bytes(reply.read()).decode(errors="replace")
        except urllib.error.HTTPError as error:
            raise CourseError(
                f"{url} answered HTTP {error.code} {error.reason}.",
                hint="The server runs, but has no such page: check the path.",
            ) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            last_error = error
            time.sleep(0.2)
    raise CourseError(
        f"Nothing answered at {url} within {timeout:.0f} s ({last_error}).",
        hint="Is the container running, and is that host port published on 127.0.0.1? "
        "Look at docker.ps() and docker.logs(NAME).",
    )
