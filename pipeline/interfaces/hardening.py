"""The public server's own hardening helpers (`digest serve`): tokens kept out of its log,
whom a rate limit counts, which site/ file a path may name. What it shares with the studio
(security headers, waitress's own error answers, host checks) is in `guard`."""

from __future__ import annotations

import ipaddress
import logging
import re
from pathlib import Path

_TOKEN_IN_PATH = re.compile(r"(/(?:unsubscribe|confirm)/)[^\s/?#\"']+")


def redact(text: str) -> str:
    """`text` with the tokens of unsubscribe and confirm URLs replaced by `[token]`."""
    return _TOKEN_IN_PATH.sub(r"\1[token]", text)


class RedactTokens(logging.Filter):
    """Keeps unsubscribe and confirm tokens out of the server's log (a token unsubscribes
    its reader; logs are read, shipped and kept by more people than the secret)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def configure_logging(*names: str) -> None:
    """Log requests and errors of these loggers (`digest serve`'s) to stderr, tokens
    redacted (idempotent)."""
    handler = logging.StreamHandler()
    handler.addFilter(RedactTokens())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for h in logger.handlers for f in h.filters):
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False


def client_key(address: str | None) -> str:
    """Whom the per-client limit counts: an IPv4 address, or an IPv6 address's /64 (one
    host is given a whole /64 and can use any address in it)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped or ip) if ip.version == 6 else str(ip)


def site_file(site: Path, path: str) -> Path | None:
    """The file under site/ that `path` names (a folder's index.html), or None when there
    is none or it lies outside site/. The root is resolved first (it may be a symlink to
    the published version), then every file must resolve inside it: no `..`, no symlink
    out, no hidden files."""
    try:
        root = site.resolve(strict=True)
        parts = [p for p in path.split("/") if p]
        if any(p.startswith(".") for p in parts):
            return None
        target = root.joinpath(*parts).resolve()
        if target.is_dir():
            target = (target / "index.html").resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return None
    except (OSError, ValueError, RuntimeError):  # too long, NUL byte, symlink loop
        return None
    return target


