"""Bounce and complaint webhooks of the common sending providers, mounted by `digest serve`.

Each is authenticated as its provider documents, and refuses what it cannot verify:

- `POST /webhooks/ses`: Amazon SES through an SNS topic (HTTPS subscription). The SNS
  message signature (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA) is verified with the
  certificate at `SigningCertURL`, fetched only over HTTPS from a host matching
  `bounces.sns_cert_host`; `bounces.sns_topic_arn` pins the topic. A verified
  SubscriptionConfirmation is confirmed by visiting its SubscribeURL (same host rule).
- `POST /webhooks/mailgun`: HMAC-SHA256 of timestamp + token with the webhook signing key
  (env DIGEST_MAILGUN_SIGNING_KEY); a timestamp more than 15 minutes off is refused.
- `POST /webhooks/postmark`: HTTP basic auth, the credentials set in the webhook's URL
  (env DIGEST_POSTMARK_WEBHOOK_AUTH = "user:password").
- `POST /webhooks/sendgrid`: the Signed Event Webhook: ECDSA (P-256, SHA-256) over the
  timestamp header + the raw body, with the public key SendGrid shows (env
  DIGEST_SENDGRID_PUBLIC_KEY, base64 DER as shown, or PEM).

A provider whose secret is not set answers 404 (the endpoint does not exist). Events are
stored once per provider id, so a webhook the provider resends counts once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Blueprint, Response, abort, request

from pipeline.core.config import Settings
from pipeline.core.runtime import Runtime
from pipeline.deliver.bounces import BounceEvent, apply_events

MAILGUN_KEY_ENV = "DIGEST_MAILGUN_SIGNING_KEY"
POSTMARK_AUTH_ENV = "DIGEST_POSTMARK_WEBHOOK_AUTH"
SENDGRID_KEY_ENV = "DIGEST_SENDGRID_PUBLIC_KEY"
MAILGUN_MAX_SKEW = 15 * 60  # seconds between Mailgun's timestamp and our clock
CERT_CACHE = 8  # SNS signing certificates kept (they change rarely)

_SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                "TopicArn", "Type"),
}
_POSTMARK_HARD = {"HardBounce", "BadEmailAddress", "DMARCPolicy"}
_POSTMARK_SOFT = {"SoftBounce", "Transient", "DnsError", "MailboxFull"}

Db = Callable[[], AbstractContextManager[sqlite3.Connection]]


class Unverified(Exception):
    """A webhook request whose authenticity could not be established."""


# --- SNS -------------------------------------------------------------------------------------


def sns_string_to_sign(message: dict[str, Any]) -> bytes:
    """The canonical text SNS signs: the type's fields, in order, `name\\nvalue\\n` each
    (Subject only when present)."""
    names = _SNS_FIELDS.get(str(message.get("Type")))
    if names is None:
        raise Unverified("unknown SNS message type")
    out = ""
    for name in names:
        if name in message and message[name] is not None:
            out += f"{name}\n{message[name]}\n"
        elif name != "Subject":
            raise Unverified(f"SNS message without {name}")
    return out.encode("utf-8")


def _allowed_url(url: str, host_pattern: str) -> bool:
    """HTTPS to a host matching the pattern; plain HTTP only on loopback (local tests)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not re.fullmatch(host_pattern, host):
        return False
    if parts.scheme == "https":
        return True
    try:
        return parts.scheme == "http" and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SnsVerifier:
    """Verifies SNS message signatures with the certificates SNS names (cached)."""

    def __init__(self, host_pattern: str, http: requests.Session, now: Callable[[], datetime],
                 topic_arn: str = "") -> None:
        self.host_pattern = host_pattern
        self.http = http
        self.now = now
        self.topic_arn = topic_arn
        self._certs: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _certificate(self, url: str) -> Any:
        from cryptography import x509

        with self._lock:
            cached = self._certs.get(url)
        if cached is not None:
            return cached
        try:
            answer = self.http.get(url, timeout=10)
            answer.raise_for_status()
            cert = x509.load_pem_x509_certificate(answer.content)
        except (requests.RequestException, ValueError) as exc:
            raise Unverified(f"cannot fetch the signing certificate: {exc}") from exc
        with self._lock:
            if len(self._certs) >= CERT_CACHE:
                self._certs.clear()
            self._certs[url] = cert
        return cert

    def verify(self, message: dict[str, Any]) -> None:
        """Raise Unverified unless `message` is signed by SNS (and of the pinned topic)."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        if self.topic_arn and message.get("TopicArn") != self.topic_arn:
            raise Unverified("a message of another topic")
        url = str(message.get("SigningCertURL", ""))
        if not _allowed_url(url, self.host_pattern):
            raise Unverified("SigningCertURL is not on an allowed SNS host")
        version = str(message.get("SignatureVersion", ""))
        algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(version)  # v1: SNS still uses SHA1
        if algorithm is None:
            raise Unverified("unknown SignatureVersion")
        try:
            signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        except binascii.Error as exc:
            raise Unverified("Signature is not base64") from exc
        cert = self._certificate(url)
        now = self.now()
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise Unverified("the signing certificate is not valid now")
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise Unverified("the signing certificate has no RSA key")
        try:
            key.verify(signature, sns_string_to_sign(message), padding.PKCS1v15(), algorithm)
        except InvalidSignature as exc:
            raise Unverified("bad SNS signature") from exc


def ses_events(notification: dict[str, Any]) -> list[BounceEvent]:
    """The bounces and complaints of one SES notification (or event publishing record)."""
    kind = notification.get("notificationType") or notification.get("eventType")
    out: list[BounceEvent] = []
    if kind == "Bounce":
        bounce = notification.get("bounce") or {}
        hard = bounce.get("bounceType") == "Permanent"
        fid = str(bounce.get("feedbackId", ""))
        for r in bounce.get("bouncedRecipients") or []:
            email = str(r.get("emailAddress", ""))
            detail = f"{bounce.get('bounceType')}/{bounce.get('bounceSubType')} " \
                     f"{r.get('diagnosticCode', '')}".strip()
            out.extend(_event("ses", f"{fid}:{email}", email, "hard" if hard else "soft",
                                   detail))
    elif kind == "Complaint":
        complaint = notification.get("complaint") or {}
        fid = str(complaint.get("feedbackId", ""))
        if complaint.get("complaintFeedbackType") == "not-spam":
            return out
        for r in complaint.get("complainedRecipients") or []:
            email = str(r.get("emailAddress", ""))
            out.extend(_event("ses", f"{fid}:{email}", email, "complaint",
                                   str(complaint.get("complaintFeedbackType") or "")))
    return out


# --- the others ------------------------------------------------------------------------------


def mailgun_verify(key: str, signature: dict[str, Any], now: float) -> None:
    """Raise Unverified unless Mailgun's signature block is genuine and recent."""
    timestamp, token = str(signature.get("timestamp", "")), str(signature.get("token", ""))
    given = str(signature.get("signature", ""))
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise Unverified("bad Mailgun signature")
    try:
        skew = abs(now - float(timestamp))
    except ValueError as exc:
        raise Unverified("bad Mailgun timestamp") from exc
    if skew > MAILGUN_MAX_SKEW:
        raise Unverified("Mailgun timestamp too far from now")


def mailgun_events(data: dict[str, Any]) -> list[BounceEvent]:
    """The bounce or complaint of one Mailgun webhook's event-data."""
    event = data.get("event")
    email = str(data.get("recipient", ""))
    eid = str(data.get("id", ""))
    if event == "failed":
        severity = data.get("severity")
        detail = str((data.get("delivery-status") or {}).get("description") or "")[:200]
        return _event("mailgun", eid, email, "hard" if severity == "permanent" else "soft",
                      detail)
    if event == "complained":
        return _event("mailgun", eid, email, "complaint")
    return []


def postmark_events(data: dict[str, Any]) -> list[BounceEvent]:
    """The bounce or complaint of one Postmark webhook."""
    record = data.get("RecordType")
    kind_name = str(data.get("Type", ""))
    email = str(data.get("Email", ""))
    eid = str(data.get("ID", ""))
    if record == "SpamComplaint" or kind_name == "SpamComplaint":
        return _event("postmark", eid, email, "complaint")
    if record == "Bounce" and kind_name in _POSTMARK_HARD | _POSTMARK_SOFT:
        kind = "hard" if kind_name in _POSTMARK_HARD else "soft"
        return _event("postmark", eid, email, kind, kind_name)
    return []


def sendgrid_public_key(text: str) -> Any:
    """SendGrid's verification key, as its settings page shows it (base64 DER) or PEM."""
    from cryptography.hazmat.primitives.serialization import (
        load_der_public_key,
        load_pem_public_key,
    )

    text = text.strip()
    if text.startswith("-----BEGIN"):
        return load_pem_public_key(text.encode())
    return load_der_public_key(base64.b64decode(text))


def sendgrid_verify(key: Any, signature: str, timestamp: str, body: bytes) -> None:
    """Raise Unverified unless SendGrid signed timestamp + body with this key."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, InvalidSignature, ValueError) as exc:
        raise Unverified("bad SendGrid signature") from exc


def sendgrid_events(batch: list[Any]) -> list[BounceEvent]:
    """The bounces and complaints of one SendGrid event batch."""
    out = []
    for ev in batch:
        if not isinstance(ev, dict):
            continue
        email, eid = str(ev.get("email", "")), str(ev.get("sg_event_id", ""))
        if ev.get("event") == "bounce":
            hard = ev.get("type", "bounce") == "bounce"  # 'blocked' is temporary
            out.extend(_event("sendgrid", eid, email, "hard" if hard else "soft",
                                   str(ev.get("reason", ""))[:200]))
        elif ev.get("event") == "spamreport":
            out.extend(_event("sendgrid", eid, email, "complaint"))
    return out


# --- the blueprint ---------------------------------------------------------------------------


def _event(source: str, event_id: str, email: str, kind: str,
           detail: str = "") -> list[BounceEvent]:
    """[the event], or [] when the provider left out the address or the id (skipped, so
    that one odd record does not make the provider resend the whole batch forever)."""
    if "@" not in email or not event_id or event_id.endswith(":"):
        return []
    return [BounceEvent(source, event_id, email, kind, detail)]


def blueprint(settings: Settings, rt: Runtime, db: Db) -> Blueprint:
    """The /webhooks/* routes; `db` opens the store as `digest serve` does."""
    bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
    sns = SnsVerifier(settings.bounces.sns_cert_host, rt.http, rt.now,
                      settings.bounces.sns_topic_arn)

    def record(found: list[BounceEvent]) -> Response:
        if found:
            with db() as conn:
                apply_events(conn, settings, found, rt.now())
        return Response("ok\n", 200, content_type="text/plain; charset=utf-8")

    def json_body() -> Any:
        try:
            return json.loads(request.get_data(cache=True))
        except (ValueError, UnicodeDecodeError):
            abort(400)

    @bp.post("/ses")
    def ses() -> Response:
        message = json_body()
        if not isinstance(message, dict):
            abort(400)
        try:
            sns.verify(message)
        except Unverified:
            abort(403)
        kind = message.get("Type")
        if kind == "SubscriptionConfirmation":
            url = str(message.get("SubscribeURL", ""))
            if not _allowed_url(url, settings.bounces.sns_cert_host):
                abort(403)
            try:
                rt.http.get(url, timeout=10).raise_for_status()
            except requests.RequestException:
                abort(502)
            return Response("confirmed\n", 200, content_type="text/plain; charset=utf-8")
        if kind != "Notification":
            return record([])
        try:
            notification = json.loads(str(message.get("Message", "")))
        except ValueError:
            abort(400)
        return record((ses_events(notification)) if isinstance(notification, dict)
                      else [])

    @bp.post("/mailgun")
    def mailgun() -> Response:
        key = os.environ.get(MAILGUN_KEY_ENV, "").strip()
        if not key:
            abort(404)
        body = json_body()
        if not isinstance(body, dict) or not isinstance(body.get("signature"), dict):
            abort(400)
        try:
            mailgun_verify(key, body["signature"], rt.now().timestamp())
        except Unverified:
            abort(403)
        data = body.get("event-data")
        return record((mailgun_events(data)) if isinstance(data, dict) else [])

    @bp.post("/postmark")
    def postmark() -> Response:
        expected = os.environ.get(POSTMARK_AUTH_ENV, "").strip()
        if ":" not in expected:
            abort(404)
        auth = request.authorization
        given = f"{auth.username}:{auth.password}" if auth and auth.type == "basic" else ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            response = Response("authentication required\n", 401,
                                content_type="text/plain; charset=utf-8")
            response.headers["WWW-Authenticate"] = 'Basic realm="webhooks"'
            return response
        data = json_body()
        return record((postmark_events(data)) if isinstance(data, dict) else [])

    @bp.post("/sendgrid")
    def sendgrid() -> Response:
        text = os.environ.get(SENDGRID_KEY_ENV, "").strip()
        if not text:
            abort(404)
        try:
            key = sendgrid_public_key(text)
        except (ValueError, binascii.Error):
            abort(500)
        try:
            sendgrid_verify(
                key, request.headers.get("X-Twilio-Email-Event-Webhook-Signature", ""),
                request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp", ""),
                request.get_data(cache=True))
        except Unverified:
            abort(403)
        batch = json_body()
        return record((sendgrid_events(batch)) if isinstance(batch, list) else [])

    return bp
