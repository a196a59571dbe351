"""One HTTP policy for every external call: pooled sessions, timeouts always, bounded retries with backoff.

Retries happen on connection errors and 5xx only (never on 4xx, which will not change on retry). When an
operation runs under a total deadline (``governance.deadlines.running``), the session spends that one budget:
each attempt's timeouts are cut to its share of the time left, the answer's body is read under the clock,
and the retry layer neither retries nor sleeps past it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3 import exceptions as urllib3_errors
from urllib3.exceptions import MaxRetryError
from urllib3.util.retry import Retry

from governance.deadlines import Clock, current_clock
from governance.stops import interruption_point
from governance.tls import session_verify, untrusted_message

DEFAULT_TIMEOUT = (5.0, 60.0)  # (connect, read) seconds
RETRY_STATUSES = (500, 502, 503, 504)


class OutOfTime(requests.Timeout):
    """The running operation's total deadline passed before or while this request ran."""


class ClockedRetry(Retry):
    """urllib3's retries (the one retry layer) that stop once the running operation's clock has run out and
    never back off past it."""

    def increment(self, *args: Any, **kwargs: Any) -> Retry:  # type: ignore[override]
        clock = current_clock()
        if clock is not None and clock.expired():
            pool = kwargs.get("_pool") or (args[4] if len(args) > 4 else None)
            url = kwargs.get("url") or (args[1] if len(args) > 1 else None)
            raise MaxRetryError(pool, url, OutOfTime("the operation's deadline passed"))
        return super().increment(*args, **kwargs)

    def get_backoff_time(self) -> float:
        clock = current_clock()
        wait = super().get_backoff_time()
        return wait if clock is None else max(0.0, min(wait, clock.left()))


def _cut(timeout: Any, clock: Clock, attempts: int) -> tuple[float, float]:
    """``timeout`` (a number or (connect, read)) cut to one attempt's share of the time left."""
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    share = max(clock.left() / attempts, 0.05)
    return (share if connect is None else min(connect, share), share if read is None else min(read, share))


class TimeoutSession(requests.Session):
    """A Session that applies a default timeout to every request that does not set one, and spends the
    running operation's deadline when there is one."""

    def __init__(self, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT, attempts: int = 1,
                 retried_methods: frozenset[str] | None = None):
        super().__init__()
        self.default_timeout = timeout
        self.attempts = attempts  # first try + retries of the mounted adapters: each gets a share of the clock
        self.retried_methods = retried_methods  # None: all; a method not retried gets all the time left
        self.verify = session_verify()  # the company's CA bundle (governance.tls); a caller may narrow it

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """The call, with its TLS failure told as which server and which CA setting (governance.tls)."""
        try:
            return self._request(method, url, **kwargs)
        except requests.exceptions.SSLError as exc:
            if "certificate verify failed" not in str(exc):
                raise
            raise requests.exceptions.SSLError(untrusted_message(url, exc, self.verify),
                                               request=exc.request, response=exc.response) from exc

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        interruption_point()  # a batch's deploy that was asked to stop stops here, before its next call
        kwargs.setdefault("timeout", self.default_timeout)
        # explicit, because requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a session's own verify
        kwargs.setdefault("verify", self.verify)
        clock = current_clock()
        if clock is None:
            return super().request(method, url, **kwargs)
        if clock.expired():
            raise OutOfTime(f"the operation's deadline passed before {method} {url}")
        retried = self.retried_methods is None or method.upper() in self.retried_methods
        kwargs["timeout"] = _cut(kwargs["timeout"], clock, self.attempts if retried else 1)
        if kwargs.get("stream"):
            return super().request(method, url, **kwargs)  # the caller reads the body and checks the clock
        resp = super().request(method, url, stream=True, **{k: v for k, v in kwargs.items() if k != "stream"})
        try:
            resp._content = b"".join(chunks_within(resp.raw, clock, f"the answer to {method} {url}"))
        except BaseException:
            resp.close()
            raise
        return resp  # read to its end, so urllib3 has put the connection back in the pool


def chunks_within(raw: Any, clock: Clock, what: str, size: int = 64 * 1024) -> Iterator[bytes]:
    """The body of a streamed answer (urllib3's raw response) as the pieces that arrive, stopped with OutOfTime
    once ``clock`` has run out. ``read1`` returns whatever has arrived, so a server that trickles one byte at
    a time (each socket read within any read timeout) is stopped at the deadline; ``read(size)`` and
    ``iter_content`` would wait for ``size`` bytes."""
    while True:
        try:  # urllib3's errors as requests' iter_content raises them
            chunk = raw.read1(size, decode_content=True)
        except urllib3_errors.ProtocolError as exc:
            raise requests.exceptions.ChunkedEncodingError(exc) from exc
        except urllib3_errors.DecodeError as exc:
            raise requests.exceptions.ContentDecodingError(exc) from exc
        except (urllib3_errors.ReadTimeoutError, urllib3_errors.SSLError) as exc:
            raise requests.ConnectionError(exc) from exc
        if not chunk:
            return
        yield chunk
        if clock.expired():
            raise OutOfTime(f"{what} did not arrive within the deadline")


def build_session(*, retries: int = 3, backoff: float = 0.5, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                  retry_methods: frozenset[str] | None = None, pool_size: int = 10) -> TimeoutSession:
    """A pooled session with retries on connection errors and 5xx.

    ``retry_methods`` limits which HTTP methods are retried on a 5xx; default: all, since the callers
    here (Atlas upserts, MLServer load, WebHDFS ops) are idempotent. Non-idempotent callers pass a set.
    """
    retry = ClockedRetry(
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
    session = TimeoutSession(timeout, attempts=retries + 1, retried_methods=retry_methods)
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
