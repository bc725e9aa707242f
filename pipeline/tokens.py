"""HMAC-signed per-subscriber tokens for unsubscribe and confirmation links."""

from __future__ import annotations

import base64
import hashlib
import hmac

PURPOSES = ("unsubscribe", "confirm")


class TokenError(ValueError):
    """A token that is malformed (it cannot name a subscriber)."""


def _signature(secret: bytes, purpose: str, subscriber_id: int, email: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    # The address is signed too: a token stays bound to one person even if an id were reused.
    msg = f"{purpose}\0{subscriber_id}\0{email.casefold()}".encode()
    digest = hmac.new(secret, msg, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign(secret: bytes, purpose: str, subscriber_id: int, email: str) -> str:
    """A URL-safe token `<id>.<signature>` for one subscriber and one purpose."""
    return f"{subscriber_id}.{_signature(secret, purpose, subscriber_id, email)}"


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
    expected = sign(secret, purpose, sid, email)
    return hmac.compare_digest(expected.encode(), token.encode())
