"""Signed per-subscriber tokens for unsubscribe and confirmation links (itsdangerous).

A token is an itsdangerous URL-safe signed payload: the subscriber id, signed with
DIGEST_SECRET (HMAC-SHA256) and a salt made of the purpose and the subscriber's address, so a
token works for one purpose and one person only. An unsubscribe token never expires (RFC 8058
links must keep working in old emails); a confirmation token carries its signed issue time and
is refused after `max_age`.

Links sent before the switch to itsdangerous (`<id>.<HMAC-SHA256>`, hand-written) are still in
readers' mailboxes: unsubscribe accepts that old form too (it is verified, never issued).
Old confirmation links are reported as expired: they lived 7 days, the reader subscribes again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from datetime import datetime, timedelta

from itsdangerous import (
    BadData,
    SignatureExpired,
    TimestampSigner,
    URLSafeSerializer,
    URLSafeTimedSerializer,
)

PURPOSES = ("unsubscribe", "confirm")
TIMED = frozenset({"confirm"})  # purposes whose tokens carry a signed time and expire
MAX_TOKEN_LENGTH = 200  # ours are < 100 characters; anything longer is refused unread

# The hand-written format before itsdangerous: decimal id, then a 43-character HMAC-SHA256
# (an itsdangerous payload is base64 of JSON, which never reads as a decimal number).
_LEGACY_RE = re.compile(r"([0-9]{1,18})\.(?:([0-9]{8})\.)?([A-Za-z0-9_-]{43})")
_SIGNER_KWARGS = {"digest_method": hashlib.sha256}


class TokenError(ValueError):
    """A token that is malformed, forged, or signed for another purpose or person."""


class TokenExpired(TokenError):
    """A genuine confirmation token older than its `max_age`."""


def _salt(purpose: str, email: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    # The address is part of the salt: a token stays bound to one person even if an id were
    # reused, and an unsubscribe token is no confirmation token.
    return f"arxiv-digest {purpose}\0{email.casefold()}"


def _serializer(
    secret: bytes, purpose: str, email: str, now: Callable[[], datetime] | None
) -> URLSafeSerializer | URLSafeTimedSerializer:
    salt = _salt(purpose, email)
    if purpose not in TIMED:
        return URLSafeSerializer(secret, salt=salt, signer_kwargs=_SIGNER_KWARGS)

    class Signer(TimestampSigner):
        """Reads the time from the runtime's clock, so expiry follows the injected clock."""

        def get_timestamp(self) -> int:
            return int(now().timestamp()) if now is not None else super().get_timestamp()

    return URLSafeTimedSerializer(secret, salt=salt, signer=Signer, signer_kwargs=_SIGNER_KWARGS)


def sign(
    secret: bytes, purpose: str, subscriber_id: int, email: str,
    now: Callable[[], datetime] | None = None,
) -> str:
    """A URL-safe token for one subscriber and one purpose (a confirmation token is stamped
    with `now()`, default the system clock)."""
    return str(_serializer(secret, purpose, email, now).dumps(subscriber_id))


def subscriber_id(token: str) -> int:
    """The subscriber id a token claims (not yet verified); raises TokenError if malformed."""
    if not token.isascii() or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("malformed token")
    legacy = _LEGACY_RE.fullmatch(token)
    if legacy:
        return int(legacy.group(1))
    head = token.split(".", 1)[0]
    try:
        # `load_payload` would also inflate a compressed ('.'-prefixed) payload: ours never are
        value = URLSafeSerializer(b"").load_payload(head.encode()) if head else None
    except BadData:
        value = None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 10**18:
        raise TokenError("malformed token")
    return value


def check(
    secret: bytes, purpose: str, token: str, email: str, *,
    now: Callable[[], datetime] | None = None, max_age: timedelta | None = None,
    not_before: datetime | None = None,
) -> None:
    """Raise TokenError unless the token was signed with `secret` for this purpose, id and
    address; TokenExpired when a timed token is older than `max_age`, or was signed before
    `not_before` (the address's subscription changed since)."""
    sid = subscriber_id(token)
    if _LEGACY_RE.fullmatch(token):
        _check_legacy(secret, purpose, token, sid, email)
        return
    serializer = _serializer(secret, purpose, email, now)
    try:
        if isinstance(serializer, URLSafeTimedSerializer):
            age = int(max_age.total_seconds()) if max_age is not None else None
            value, signed = serializer.loads(token, max_age=age, return_timestamp=True)
            # itsdangerous keeps whole seconds: a link signed in the second the address
            # became pending is the new one
            if not_before is not None and signed.timestamp() < int(not_before.timestamp()):
                raise TokenExpired("signed before the address was subscribed again")
        else:
            value = serializer.loads(token)
    except SignatureExpired as exc:
        raise TokenExpired("expired token") from exc
    except BadData as exc:
        raise TokenError("bad signature") from exc
    if value != sid:  # cannot happen for a good signature; a guard all the same
        raise TokenError("bad token")


def verify(secret: bytes, purpose: str, token: str, email: str, **kwargs: object) -> bool:
    """True when `check` passes (a genuine, unexpired token for this purpose and address)."""
    try:
        check(secret, purpose, token, email, **kwargs)  # type: ignore[arg-type]
    except TokenError:
        return False
    return True


def _check_legacy(secret: bytes, purpose: str, token: str, sid: int, email: str) -> None:
    """The pre-itsdangerous token: `<id>.<HMAC-SHA256 over purpose, id, address>`, verified
    in constant time; accepted for unsubscribe only."""
    if purpose != "unsubscribe":
        # an old confirmation link is at least a week old by now, or will be soon: expired
        raise TokenExpired("a confirmation link of the old format")
    expected = legacy_sign(secret, purpose, sid, email)
    if not hmac.compare_digest(expected.encode(), token.encode()):
        raise TokenError("bad signature")


def legacy_sign(secret: bytes, purpose: str, subscriber_id: int, email: str) -> str:
    """The old hand-written format, as links already in mailboxes carry it (tests use it to
    prove those links still work; new links never use it)."""
    msg = f"{purpose}\0{subscriber_id}\0{email.casefold()}".encode()
    digest = hmac.new(secret, msg, hashlib.sha256).digest()
    return f"{subscriber_id}." + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
