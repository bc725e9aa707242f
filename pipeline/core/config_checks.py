"""The cross-field checks of a parsed config, and newsletter.from's address."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.core.errors import ConfigError
from pipeline.core.models import ANNOUNCE_TYPES
from pipeline.core.settings import Settings
from pipeline.core.subject import compile_subject

MAX_PORT = 65535
MAX_CONNECTIONS = 64  # delivery.connections
MAX_MESSAGE_BYTES = 9_500_000  # delivery.max_message_bytes: under the common 10 MB limit


def _check_values(s: Settings, path: Path) -> None:
    """Cross-field checks that a type alone cannot express."""
    nl = s.newsletter
    try:
        ZoneInfo(nl.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {nl.timezone!r} (expected e.g. Asia/Seoul)",
            path=path,
            key="newsletter.timezone",
        ) from exc
    from babel import Locale, UnknownLocaleError  # only once a config is read (not on import)

    try:
        Locale.parse(nl.locale)
    except (UnknownLocaleError, ValueError) as exc:
        raise ConfigError(
            f"unknown locale {nl.locale!r} (expected e.g. ko or en)",
            path=path,
            key="newsletter.locale",
        ) from exc
    try:
        compile_subject(nl.subject)
    except ValueError as exc:
        raise ConfigError(str(exc), path=path, key="newsletter.subject") from exc
    if not nl.languages:
        raise ConfigError("expected at least one language", path=path, key="newsletter.languages")
    for lang in nl.languages:
        if lang not in ("ko", "en"):
            raise ConfigError(
                f"unsupported language {lang!r} (expected ko or en)",
                path=path,
                key="newsletter.languages",
            )
        if nl.languages.count(lang) > 1:  # each language is one variant, stored once per issue
            raise ConfigError(f"{lang!r} twice (expected each language once)",
                              path=path, key="newsletter.languages")
    base = urlsplit(nl.base_url)
    # Page names are appended to it: a query or fragment would end up in front of them.
    if base.scheme not in ("http", "https") or not base.netloc or base.query or base.fragment:
        raise ConfigError(
            "expected an http(s) URL of the site's folder, without ?query or #fragment "
            "(e.g. https://digest.example.org/)", path=path, key="newsletter.base_url"
        )
    if "{categories}" not in s.arxiv.rss_url:
        raise ConfigError(
            "expected a URL containing {categories}", path=path, key="arxiv.rss_url"
        )
    if not s.arxiv.categories:
        raise ConfigError("expected at least one category", path=path, key="arxiv.categories")
    for t in s.arxiv.announce_types:
        if t not in ANNOUNCE_TYPES:
            raise ConfigError(
                f"unknown announce type {t!r} (expected new, cross, replace or replace-cross)",
                path=path,
                key="arxiv.announce_types",
            )
    checks: list[tuple[str, float, float]] = [
        ("draft.max_candidates", s.draft.max_candidates, 0),
        ("draft.more_papers", s.draft.more_papers, 0),
        ("arxiv.retries", s.arxiv.retries, 0),
        ("arxiv.timeout", s.arxiv.timeout, 0.001),
        ("arxiv.api_interval", s.arxiv.api_interval, 3.0),
        ("delivery.rate_per_second", s.delivery.rate_per_second, 0),
        ("delivery.connections", s.delivery.connections, 1),
        ("delivery.max_html_kb", s.delivery.max_html_kb, 10),
        ("delivery.max_message_bytes", s.delivery.max_message_bytes, 200_000),
        ("bounces.soft_limit", s.bounces.soft_limit, 1),
        ("bounces.soft_days", s.bounces.soft_days, 1),
        ("bounces.imap_port", s.bounces.imap_port, 1),
        ("smtp.port", s.smtp.port, 1),
        ("smtp.timeout", s.smtp.timeout, 0.001),
        ("smtp.retries", s.smtp.retries, 0),
        ("web.port", s.web.port, 1),
        ("newsletter.feed_items", s.newsletter.feed_items, 1),
        ("schedule.misfire_grace_seconds", s.schedule.misfire_grace_seconds, 1),
    ]
    for key, value, minimum in checks:
        if value < minimum:
            raise ConfigError(f"expected at least {minimum:g}, got {value:g}", path=path, key=key)
    if s.delivery.connections > MAX_CONNECTIONS:  # relays refuse (421) past a handful per client
        raise ConfigError(f"expected at most {MAX_CONNECTIONS}, got {s.delivery.connections}",
                          path=path, key="delivery.connections")
    if s.delivery.max_message_bytes > MAX_MESSAGE_BYTES:
        raise ConfigError(f"expected at most {MAX_MESSAGE_BYTES} (relays commonly refuse "
                          f"messages over 10 MB), got {s.delivery.max_message_bytes}",
                          path=path, key="delivery.max_message_bytes")
    dkim = (s.delivery.dkim_key, s.delivery.dkim_selector)
    if any(dkim) and not all(dkim):
        raise ConfigError("DKIM signing needs both delivery.dkim_key and delivery.dkim_selector",
                          path=path, key="delivery.dkim_selector" if s.delivery.dkim_key
                          else "delivery.dkim_key")
    try:
        re.compile(s.bounces.sns_cert_host)
    except re.error as exc:
        raise ConfigError(f"not a regular expression: {exc}", path=path,
                          key="bounces.sns_cert_host") from exc
    proxy = s.web.trusted_proxy
    if proxy:
        try:
            ipaddress.ip_address(proxy)
        except ValueError as exc:
            raise ConfigError(f"expected the proxy's IP address (e.g. 127.0.0.1), got {proxy!r}",
                              path=path, key="web.trusted_proxy") from exc
    for key, port in (("smtp.port", s.smtp.port), ("web.port", s.web.port)):
        if port > MAX_PORT:
            raise ConfigError(f"expected a port from 1 to {MAX_PORT}, got {port}",
                              path=path, key=key)


def _check_from(value: str, smtputf8: bool, path: Path) -> str:
    """newsletter.from with an address that every mail server takes: a display name is
    optional, an internationalised domain becomes its IDNA form (the From header and the
    envelope are ASCII), and a non-ASCII name before the @ needs smtp.smtputf8."""
    from email.headerregistry import Address
    from email.utils import parseaddr

    from email_validator import EmailNotValidError, validate_email

    name, addr = parseaddr(value)
    key = "newsletter.from"
    if "@" not in addr:
        raise ConfigError(f"expected an address, e.g. \"Digest <digest@example.org>\", "
                          f"got {value!r}", path=path, key=key)
    try:
        valid = validate_email(addr, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise ConfigError(f"not a valid address {addr!r}: {exc}", path=path, key=key) from exc
    if not valid.local_part.isascii() and not smtputf8:
        raise ConfigError(f"{addr!r} has a non-ASCII name before the @, which only a mail "
                          "server with SMTPUTF8 carries (set smtp.smtputf8 = true if yours "
                          "has it, or use an ASCII address)", path=path, key=key)
    ascii_addr = f"{valid.local_part}@{valid.ascii_domain}"
    if ascii_addr == addr:
        return value
    return str(Address(display_name=name, addr_spec=ascii_addr))
