"""HMAC-signed per-subscriber tokens for unsubscribe and confirmation links.

An unsubscribe token is `<id>.<signature>` and works for as long as the reader is subscribed
(RFC 8058 links must keep working in old emails). A confirmation token also carries the day it
was issued, `<id>.<YYYYMMDD>.<signature>`, signed too, so a confirmation link expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import date, datetime

PURPOSES = ("unsubscribe", "confirm")


class TokenError(ValueError):
    """A token that is malformed (it cannot name a subscriber)."""


def _signature(
    secret: bytes, purpose: str, subscriber_id: int, email: str, issued: str = ""
) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    # The address is signed too: a token stays bound to one person even if an id were reused.
    msg = f"{purpose}\0{subscriber_id}\0{email.casefold()}".encode()
    if issued:
        msg += f"\0{issued}".encode()
    digest = hmac.new(secret, msg, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign(
    secret: bytes, purpose: str, subscriber_id: int, email: str, issued: date | None = None
) -> str:
    """A URL-safe token for one subscriber and one purpose: `<id>.<signature>`, or with the
    day it was `issued` (`<id>.<YYYYMMDD>.<signature>`) for a link that expires."""
    if issued is None:
        return f"{subscriber_id}.{_signature(secret, purpose, subscriber_id, email)}"
    day = issued.strftime("%Y%m%d")
    return f"{subscriber_id}.{day}.{_signature(secret, purpose, subscriber_id, email, day)}"


def issued_on(token: str) -> date | None:
    """The day a token says it was issued (None for a token without one, or a bad day);
    trust it only after `verify`."""
    parts = token.split(".")
    if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()):
        return None
    try:
        return datetime.strptime(parts[1], "%Y%m%d").date()
    except ValueError:
        return None


def subscriber_id(token: str) -> int:
    """The subscriber id a token claims (not yet verified); raises TokenError if malformed."""
    head, dot, sig = token.partition(".")
    # isascii: str.isdigit also accepts digits such as '²' that int() refuses
    if not dot or not (head.isascii() and head.isdigit()) or len(head) > 18 or not sig:
        raise TokenError("malformed token")
    return int(head)


def verify(secret: bytes, purpose: str, token: str, email: str) -> bool:
    """True when the token was signed with `secret` for this purpose, id and address."""
    try:
        sid = subscriber_id(token)
    except TokenError:
        return False
    expected = sign(secret, purpose, sid, email, issued_on(token))
    return hmac.compare_digest(expected.encode(), token.encode())
