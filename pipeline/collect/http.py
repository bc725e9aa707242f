"""A small retrying HTTP GET for arXiv: timeouts, backoff, Retry-After, a pacer, our User-Agent."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import requests

from pipeline.core.errors import FetchError
from pipeline.core.runtime import Runtime, user_agent

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF_BASE = 1.0  # seconds before the first retry; doubles each time
MAX_WAIT = 600.0  # a Retry-After longer than this is a failure, not a nap
CHUNK_SIZE = 8 * 1024  # bytes read at a time, between checks of the request's deadline


@dataclass
class Pacer:
    """Keeps at least `interval` seconds between request starts, on the injected clock."""

    rt: Runtime
    interval: float
    last: float | None = None

    def wait(self) -> None:
        """Sleep until `interval` seconds have passed since the previous request started."""
        now = self.rt.monotonic()
        if self.last is not None and now - self.last < self.interval:
            self.rt.sleep(self.interval - (now - self.last))
            now = self.rt.monotonic()
        self.last = now


def retry_after_seconds(value: str | None, rt: Runtime) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), if any."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - rt.now()).total_seconds(), 0.0)


def get(
    rt: Runtime,
    url: str,
    *,
    contact: str,
    timeout: float,
    retries: int,
    accept: Collection[int] = (200,),
    pacer: Pacer | None = None,
) -> requests.Response:
    """GET `url`, retrying 429/5xx and connection errors with backoff; raise FetchError.

    A status in `accept` is returned as is (callers read error bodies they understand);
    any other final status, or a network failure after `retries` retries, is a FetchError.
    """
    headers = {"User-Agent": user_agent(contact)}
    problem = ""
    for attempt in range(retries + 1):
        if pacer is not None:
            pacer.wait()
        wait = BACKOFF_BASE * 2**attempt
        try:
            deadline = rt.monotonic() + timeout
            resp = rt.http.get(url, headers=headers, timeout=timeout, stream=True)
            _read_body(resp, rt, deadline)
        except requests.Timeout as exc:
            problem = f"timed out after {timeout:g} s ({type(exc).__name__})"
        except requests.ConnectionError as exc:
            problem = f"connection failed ({_reason(exc)})"
        except requests.RequestException as exc:
            raise FetchError(f"request failed: {exc}", url=url) from exc
        else:
            if resp.status_code in accept:
                return resp
            problem = f"HTTP {resp.status_code} {resp.reason}".rstrip()
            if resp.status_code not in RETRY_STATUSES:
                raise FetchError(problem, url=url)
            asked = retry_after_seconds(resp.headers.get("Retry-After"), rt)
            if asked is not None:
                if asked > MAX_WAIT:
                    raise FetchError(f"{problem}, Retry-After {asked:g} s is too long", url=url)
                wait = max(wait, asked)
        if attempt < retries:
            if rt.verbose:
                rt.echo(f"{url}: {problem}; retrying in {wait:g} s")
            rt.sleep(wait)
    tries = "1 attempt" if retries == 0 else f"{retries + 1} attempts"
    raise FetchError(f"{problem} (gave up after {tries})", url=url)


def _read_body(resp: requests.Response, rt: Runtime, deadline: float) -> None:
    """Read the whole body by `deadline` (checked every CHUNK_SIZE bytes, on the injected
    clock), or raise requests.Timeout: requests' own timeout is per socket read, so a server
    sending a little now and then would hold a request for as long as it likes."""
    chunks: list[bytes] = []
    for chunk in resp.iter_content(CHUNK_SIZE):
        chunks.append(chunk)
        if rt.monotonic() > deadline:
            resp.close()
            raise requests.Timeout("the body was still arriving")
    resp._content = b"".join(chunks)  # what `resp.content` returns from now on


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, short enough for one line."""
    inner = exc
    for _ in range(5):  # requests wraps urllib3 wraps http.client: follow the wrapped error
        nested = getattr(inner, "reason", None)
        if not isinstance(nested, BaseException) and inner.args:
            nested = inner.args[-1]
        if not isinstance(nested, BaseException):
            break
        inner = nested
    text = str(inner).splitlines()[0] if str(inner) else ""
    return f"{type(inner).__name__}: {text}"[:160] if text else type(inner).__name__
