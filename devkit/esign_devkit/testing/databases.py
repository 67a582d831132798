"""Which Redis database a test run owns: the one given explicitly in $ESIGN_TEST_REDIS_URL,
one per pytest-xdist worker. Importable without pytest (conftest files, subprocesses)."""
from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

URL_VARIABLE = "ESIGN_TEST_REDIS_URL"


def for_this_worker(url: str) -> str:
    """Under pytest-xdist each worker gets a database of its own: the URL's + the worker's index."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not url.startswith(("redis://", "rediss://")):
        return url
    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0) + int(worker[2:])
    return urlunsplit(parts._replace(path=f"/{db}"))


def given_redis_url() -> str | None:
    """$ESIGN_TEST_REDIS_URL for this worker, or None when none was given."""
    url = os.environ.get(URL_VARIABLE)
    return for_this_worker(url) if url else None
