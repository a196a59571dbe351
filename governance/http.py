"""One HTTP policy for every external call: pooled sessions, timeouts always, bounded retries with backoff.

Retries happen on connection errors and 5xx only (never on 4xx, which will not change on retry).
"""

from __future__ import annotations

import time
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


class DeadlineExceeded(Exception):
    """An external call (with its retries) did not finish within its total deadline."""

    def __init__(self, waited: float, attempts: int, cause: BaseException | None):
        self.waited, self.attempts, self.cause = waited, attempts, cause
        super().__init__(f"no answer after {waited:.1f} s ({attempts} attempt(s))"
                         + (f": {cause.__class__.__name__}" if cause else ""))


def request_within(session: requests.Session, method: str, url: str, *, deadline: float, retries: int,
                   backoff: float = 0.5, timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                   **kwargs: Any) -> requests.Response:
    """One HTTP call whose total time, retries and backoff included, stays within ``deadline`` seconds.

    Each attempt's connect/read timeouts are cut to the time left, the body is read under the same clock,
    and connection errors, timeouts and 5xx are retried with exponential backoff while time and ``retries``
    remain. Raises DeadlineExceeded when the clock runs out, else the last connection error; returns the
    last response otherwise (the caller maps its status). The session itself must not retry.
    """
    start = time.monotonic()
    ends = start + deadline
    attempts = 0
    while True:
        left = ends - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(time.monotonic() - start, attempts, None)
        attempts += 1
        try:
            resp = session.request(method, url, timeout=(min(timeout[0], left), min(timeout[1], left)),
                                   stream=True, **kwargs)
            body = bytearray()
            for chunk in resp.iter_content(64 * 1024):
                body += chunk
                if time.monotonic() > ends:
                    raise requests.Timeout("the answer's body did not arrive within the deadline")
            resp._content = bytes(body)  # read under our clock; later .json()/.text use it
        except requests.exceptions.SSLError:
            raise
        except (requests.ConnectionError, requests.Timeout) as exc:
            if time.monotonic() >= ends or attempts > retries:
                if time.monotonic() >= ends or isinstance(exc, requests.Timeout):
                    raise DeadlineExceeded(time.monotonic() - start, attempts, exc) from exc
                raise
        else:
            if resp.status_code not in RETRY_STATUSES or attempts > retries:
                return resp
        pause = backoff * 2 ** (attempts - 1)
        if time.monotonic() + pause >= ends:
            raise DeadlineExceeded(time.monotonic() - start, attempts, None)
        time.sleep(pause)
