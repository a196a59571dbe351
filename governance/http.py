"""One HTTP policy for every external call: pooled sessions, timeouts always, bounded retries with backoff.

Retries happen on connection errors and 5xx only (never on 4xx, which will not change on retry).
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEFAULT_TIMEOUT = (5.0, 60.0)  # (connect, read) seconds
RETRY_STATUSES = (500, 502, 503, 504)


class TimeoutSession(requests.Session):
    """A Session that applies a default timeout to every request that does not set one."""

    def __init__(self, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT):
        super().__init__()
        self.default_timeout = timeout

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, url, **kwargs)


def build_session(*, retries: int = 3, backoff: float = 0.5, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                  retry_methods: frozenset[str] | None = None, pool_size: int = 10) -> TimeoutSession:
    """A pooled session with retries on connection errors and 5xx.

    ``retry_methods`` limits which HTTP methods are retried on a 5xx; default: all, since the callers
    here (Atlas upserts, MLServer load, WebHDFS ops) are idempotent. Non-idempotent callers pass a set.
    """
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=retry_methods,  # None = retry any method
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    adapter = HTTPAdapter(max_retries=retry, pool_connections=pool_size, pool_maxsize=pool_size)
    session = TimeoutSession(timeout)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
