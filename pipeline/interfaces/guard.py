"""What both web apps (`digest serve`, the studio) do at the door: the security headers every
answer carries (those waitress writes itself too), and the checks on host names (the one to
listen on, the Host a request names)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from waitress.channel import HTTPChannel
from waitress.task import ErrorTask
from werkzeug.wrappers import Response

from pipeline.core.errors import InputError

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def security_headers(csp: str, *, frame: str = "DENY", referrer: str = "no-referrer") -> dict[str, str]:
    """The headers every page of ours carries: this CSP, no MIME sniffing, framing as `frame`
    (X-Frame-Options, for browsers without CSP 2's frame-ancestors), and `referrer`."""
    return {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": csp,
        "X-Frame-Options": frame,
        "Referrer-Policy": referrer,
    }


def apply_headers(response: Response, headers: Mapping[str, str], *, override: bool = True) -> Response:
    """Set `headers` on `response`; with `override=False` a header the view set stays."""
    for name, value in headers.items():
        if override:
            response.headers[name] = value
        else:
            response.headers.setdefault(name, value)
    return response


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only."""
    if host.strip("[]") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_allowed(host_header: str, allowed: Collection[str] | None) -> bool:
    """Whether a request's Host header (port and IPv6 brackets dropped) is one of `allowed`
    (None: any). A page served under another name (DNS rebinding) is refused."""
    if allowed is None:
        return True
    return (urlsplit("//" + host_header).hostname or "") in allowed


def check_host(host: str, key: str) -> None:
    """Refuse a host name that does not resolve (one line, exit 2) before serving."""
    try:
        socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError(f"cannot resolve host {host!r}: {exc}", key=key) from exc


def secure_error_pages(server: Any, headers: Mapping[str, str]) -> None:
    """Make `server` (a waitress server) add `headers` to the error answers it writes
    without asking the app (a body or header too large, a malformed request)."""
    extra = list(headers.items())

    class SecureErrorTask(ErrorTask):
        def execute(self) -> None:
            self.response_headers = [*self.response_headers, *extra]
            super().execute()

    class SecureChannel(HTTPChannel):
        error_task_class = SecureErrorTask

    server.channel_class = SecureChannel
