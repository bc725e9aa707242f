"""Bounces and complaints (issue #22): provider webhooks on the real `digest serve`
(waitress, in its own process), each authenticated as its provider documents — an SNS
message signed with a test key whose certificate a local server hands out, Mailgun's HMAC,
Postmark's basic auth, SendGrid's ECDSA signature — and RFC 3464 / RFC 5965 reports read
by `digest bounces` from a maildir or from a real IMAP server on loopback (pymap, implicit
TLS); SQLite on disk; the stopped readers get no more mail."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import mailbox
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from pipeline import services, store
from pipeline.core.config import Settings
from pipeline.core.errors import DeliveryError
from pipeline.deliver import bounces
from pipeline.interfaces.webhooks import sns_string_to_sign
from tests.deliver_support import DAY, SECRET, add_subscribers, build_issue, newsletter, serving
from tests.imap_support import IMAP_PASSWORD, IMAP_USER, Mailbox, imap_server
from tests.test_store_failures import digest, one_line_error

READERS = [f"reader{i:05d}@example.org" for i in range(6)]


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SECRET", SECRET)  # `digest serve` needs it


def _settings(tmp_path: Path, **bounces: Any) -> Settings:
    settings = newsletter(tmp_path, transport="outbox", bounces={
        "soft_limit": 2, "sns_cert_host": r"127\.0\.0\.1", **bounces})
    add_subscribers(settings, len(READERS))
    return settings


def statuses(settings: Settings) -> dict[str, str]:
    with closing(services.open_store(settings)) as conn:
        return {s.email: s.status for s in store.iter_subscribers(conn, None)}


# --- SNS (Amazon SES) ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signing() -> tuple[rsa.RSAPrivateKey, bytes]:
    """A test RSA key and its self-signed certificate (PEM), as SNS's signing cert."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.test")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=2))
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


@contextmanager
def cert_server(pem: bytes) -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server handing out the certificate (and counting every request)."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(pem)))
            self.end_headers()
            self.wfile.write(pem)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def sns_message(key: rsa.RSAPrivateKey, cert_url: str, notification: dict[str, Any],
                message_id: str, version: str = "2") -> dict[str, Any]:
    message: dict[str, Any] = {
        "Type": "Notification", "MessageId": message_id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-bounces",
        "Message": json.dumps(notification), "Timestamp": "2024-12-05T12:00:00.000Z",
        "SignatureVersion": version, "SigningCertURL": cert_url + "/SimpleNotificationService.pem",
    }
    algorithm = hashes.SHA256() if version == "2" else hashes.SHA1()
    signature = key.sign(sns_string_to_sign(message), padding.PKCS1v15(), algorithm)
    message["Signature"] = base64.b64encode(signature).decode()
    return message


def ses_bounce(email: str, kind: str, feedback: str) -> dict[str, Any]:
    return {"notificationType": "Bounce", "bounce": {
        "bounceType": kind, "bounceSubType": "General", "feedbackId": feedback,
        "bouncedRecipients": [{"emailAddress": email, "diagnosticCode": "smtp; 550 5.1.1"}]},
        "mail": {"messageId": "x"}}


def test_ses_via_sns_signed_messages_only(tmp_path: Path,
                                          signing: tuple[rsa.RSAPrivateKey, bytes]) -> None:
    key, pem = signing
    settings = _settings(tmp_path)
    with cert_server(pem) as (cert_url, fetched), serving(settings) as url:
        hook = url + "/webhooks/ses"
        hard = sns_message(key, cert_url, ses_bounce(READERS[0], "Permanent", "f1"), "m1")
        assert requests.post(hook, data=json.dumps(hard), timeout=10).status_code == 200
        assert requests.post(hook, data=json.dumps(hard), timeout=10).status_code == 200  # resent
        complaint = sns_message(key, cert_url, {"notificationType": "Complaint", "complaint": {
            "feedbackId": "f2", "complainedRecipients": [{"emailAddress": READERS[1]}]}},
            "m2", version="1")
        assert requests.post(hook, data=json.dumps(complaint), timeout=10).status_code == 200
        # forged: the message changed after signing
        forged = sns_message(key, cert_url, ses_bounce(READERS[2], "Permanent", "f3"), "m3")
        forged["Message"] = json.dumps(ses_bounce(READERS[3], "Permanent", "f3"))
        assert requests.post(hook, data=json.dumps(forged), timeout=10).status_code == 403
        # a certificate from a host the config does not allow is never fetched
        elsewhere = sns_message(key, "http://localhost:9", ses_bounce(READERS[4], "Permanent",
                                                                      "f4"), "m4")
        before = len(fetched)
        assert requests.post(hook, data=json.dumps(elsewhere), timeout=10).status_code == 403
        assert len(fetched) == before
        # soft bounces count: the second (soft_limit = 2) stops the reader
        for n in (5, 6):
            soft = sns_message(key, cert_url, ses_bounce(READERS[5], "Transient", f"f{n}"),
                               f"m{n}")
            assert requests.post(hook, data=json.dumps(soft), timeout=10).status_code == 200
            if n == 5:
                assert statuses(settings)[READERS[5]] == "active"
        assert requests.post(hook, data="not json", timeout=10).status_code == 400
    got = statuses(settings)
    assert got[READERS[0]] == "bounced" and got[READERS[1]] == "complained"
    assert got[READERS[2]] == got[READERS[3]] == got[READERS[4]] == "active"
    assert got[READERS[5]] == "bounced"
    with closing(services.open_store(settings)) as conn:  # the resent hard bounce counted once
        assert conn.execute("SELECT COUNT(*) FROM bounce_events WHERE email = ?",
                            (READERS[0],)).fetchone()[0] == 1


# --- Mailgun, Postmark, SendGrid -------------------------------------------------------------


def mailgun_body(key: str, data: dict[str, Any], timestamp: int | None = None) -> dict[str, Any]:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    token = hashlib.sha256(json.dumps(data).encode()).hexdigest()[:50]
    sig = hmac.new(key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": ts, "token": token, "signature": sig},
            "event-data": data}


def test_mailgun_hmac(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path)
    monkeypatch.setenv("DIGEST_MAILGUN_SIGNING_KEY", "key-test-0123456789")
    with serving(settings) as url:
        hook = url + "/webhooks/mailgun"
        hard = {"event": "failed", "severity": "permanent", "recipient": READERS[0], "id": "a"}
        complaint = {"event": "complained", "recipient": READERS[1], "id": "b"}
        for data in (hard, complaint):
            body = mailgun_body("key-test-0123456789", data)
            assert requests.post(hook, json=body, timeout=10).status_code == 200
        wrong = mailgun_body("another-key", {**hard, "recipient": READERS[2], "id": "c"})
        assert requests.post(hook, json=wrong, timeout=10).status_code == 403
        stale = mailgun_body("key-test-0123456789", {**hard, "recipient": READERS[3], "id": "d"},
                             int(time.time()) - 3600)
        assert requests.post(hook, json=stale, timeout=10).status_code == 403
    got = statuses(settings)
    assert (got[READERS[0]], got[READERS[1]], got[READERS[2]], got[READERS[3]]) == (
        "bounced", "complained", "active", "active")


def test_postmark_basic_auth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path)
    monkeypatch.setenv("DIGEST_POSTMARK_WEBHOOK_AUTH", "postmark:s3cret-pass")
    with serving(settings) as url:
        hook = url + "/webhooks/postmark"
        bounce = {"RecordType": "Bounce", "Type": "HardBounce", "ID": 1, "Email": READERS[0]}
        spam = {"RecordType": "SpamComplaint", "Type": "SpamComplaint", "ID": 2,
                "Email": READERS[1]}
        for data in (bounce, spam):
            done = requests.post(hook, json=data, auth=("postmark", "s3cret-pass"), timeout=10)
            assert done.status_code == 200
        denied = requests.post(hook, json={**bounce, "ID": 3, "Email": READERS[2]},
                               auth=("postmark", "wrong"), timeout=10)
        assert denied.status_code == 401 and "WWW-Authenticate" in denied.headers
        assert requests.post(hook, json=bounce, timeout=10).status_code == 401
    got = statuses(settings)
    assert (got[READERS[0]], got[READERS[1]], got[READERS[2]]) == (
        "bounced", "complained", "active")


def test_sendgrid_ecdsa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings(tmp_path)
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    monkeypatch.setenv("DIGEST_SENDGRID_PUBLIC_KEY", base64.b64encode(public).decode())

    def signed(events: list[dict[str, Any]], signer: ec.EllipticCurvePrivateKey = key,
               ) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(events).encode()
        ts = str(int(time.time()))
        sig = signer.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
        return body, {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(sig).decode(),
                      "X-Twilio-Email-Event-Webhook-Timestamp": ts,
                      "Content-Type": "application/json"}

    with serving(settings) as url:
        hook = url + "/webhooks/sendgrid"
        body, headers = signed([
            {"event": "bounce", "type": "bounce", "email": READERS[0], "sg_event_id": "e1"},
            {"event": "spamreport", "email": READERS[1], "sg_event_id": "e2"},
            {"event": "delivered", "email": READERS[2], "sg_event_id": "e3"},
            {"event": "bounce", "type": "blocked", "email": READERS[3], "sg_event_id": "e4"},
        ])
        assert requests.post(hook, data=body, headers=headers, timeout=10).status_code == 200
        other = ec.generate_private_key(ec.SECP256R1())
        body, headers = signed([{"event": "bounce", "type": "bounce", "email": READERS[4],
                                 "sg_event_id": "e5"}], other)
        assert requests.post(hook, data=body, headers=headers, timeout=10).status_code == 403
    got = statuses(settings)
    assert [got[r] for r in READERS[:5]] == ["bounced", "complained", "active", "active",
                                             "active"]


def test_a_provider_without_its_secret_has_no_endpoint(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for env in ("DIGEST_MAILGUN_SIGNING_KEY", "DIGEST_POSTMARK_WEBHOOK_AUTH",
                "DIGEST_SENDGRID_PUBLIC_KEY"):
        monkeypatch.delenv(env, raising=False)
    settings = _settings(tmp_path)
    with serving(settings) as url:
        for name in ("mailgun", "postmark", "sendgrid"):
            done = requests.post(f"{url}/webhooks/{name}", json={}, timeout=10)
            assert done.status_code == 404
            assert done.headers["X-Content-Type-Options"] == "nosniff"


# --- delivery reports from a maildir ---------------------------------------------------------


def dsn(recipient: str, status: str, action: str = "failed", mid: str = "<r1@mx>") -> bytes:
    """An RFC 3464 delivery status notification, as Postfix writes one."""
    return f"""From: MAILER-DAEMON@mx.example.org
To: digest@example.org
Subject: Undelivered Mail Returned to Sender
Message-ID: {mid}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
Arrival-Date: Thu,  5 Dec 2024 09:00:00 +0000

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {status[0]}50 {status} mailbox problem

--B
Content-Type: text/rfc822-headers

From: digest@example.org
To: {recipient}
Subject: ML Papers Digest

--B--
""".encode()


def arf(recipient: str) -> bytes:
    """An RFC 5965 abuse report (a spam complaint through a feedback loop)."""
    return f"""From: fbl@isp.example.net
To: abuse@example.org
Subject: FW: ML Papers Digest
Message-ID: <fbl-1@isp>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="F"

--F
Content-Type: text/plain

This is an email abuse report.

--F
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: FBL/1.0
Version: 1

--F
Content-Type: text/rfc822-headers

From: digest@example.org
To: {recipient}
Subject: ML Papers Digest

--F--
""".encode()


def test_digest_bounces_reads_a_maildir(tmp_path: Path) -> None:
    settings = _settings(tmp_path, maildir="bounces")
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(dsn(READERS[0], "5.1.1"))
    box.add(dsn(READERS[1], "4.2.2", mid="<r2@mx>"))
    box.add(dsn(READERS[2], "4.4.1", action="delayed", mid="<r3@mx>"))  # still trying
    box.add(arf(READERS[3]))
    box.add(b"From: someone@example.org\nSubject: hello\n\nnot a report\n")
    done = digest(settings, "bounces")
    assert done.returncode == 0, done.stderr
    assert "read 5 messages: hard bounces 1, soft bounces 1, complaints 1" in done.stdout
    assert "not reports 2" in done.stdout and "stopped: " + READERS[0] in done.stdout
    got = statuses(settings)
    assert [got[r] for r in READERS[:4]] == ["bounced", "active", "active", "complained"]
    # read again: nothing new, nothing counted twice
    box.add(dsn(READERS[1], "4.2.2", mid="<r4@mx>"))  # the second soft bounce: limit 2
    again = digest(settings, "bounces", "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["messages"] == 1 and summary["soft"] == 1
    assert summary["stopped"] == [READERS[1]]


def test_a_maildir_marks_what_it_read_only_once_it_is_recorded(tmp_path: Path) -> None:
    """Killed or failed between reading and recording, the reports are read again next time
    (and recording them again counts nothing twice); recorded, they are not."""
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(dsn(READERS[0], "5.1.1"))
    box.add(arf(READERS[3]))
    with pytest.raises(RuntimeError), bounces.read_maildir(tmp_path / "bounces") as scan:
        assert scan.messages == 2
        raise RuntimeError("the store could not record them")
    assert not any("S" in m.get_flags() for m in box)
    with bounces.read_maildir(tmp_path / "bounces") as scan:
        assert sorted(e.email for e in scan.events) == [READERS[0], READERS[3]]
    assert all("S" in m.get_flags() and m.get_subdir() == "cur" for m in box)
    with bounces.read_maildir(tmp_path / "bounces") as scan:
        assert scan.messages == 0


# --- delivery reports from an IMAP mailbox ---------------------------------------------------


@pytest.fixture
def imap(cert: tuple[Path, Path]) -> Iterator[Mailbox]:
    """A real IMAP server (pymap, implicit TLS, LOGIN) on a free loopback port."""
    with imap_server(*cert) as box:
        yield box


def _imap_settings(tmp_path: Path, port: int, **more: Any) -> Settings:
    return _settings(tmp_path, imap_host="127.0.0.1", imap_port=port, imap_user=IMAP_USER,
                     **more)


def test_read_imap_reads_each_unseen_message_once(tmp_path: Path, env: None,
                                                  imap: Mailbox) -> None:
    imap.append(dsn(READERS[0], "5.1.1"))
    imap.append(arf(READERS[3]))
    imap.append(dsn(READERS[4], "5.1.1", mid="<old@mx>"), flags="(\\Seen)")  # read before
    settings = _imap_settings(tmp_path, imap.port)
    with pytest.raises(RuntimeError), bounces.read_imap(settings, IMAP_PASSWORD) as scan:
        raise RuntimeError("the store could not record them")
    assert imap.unseen() == 2  # nothing recorded, nothing marked: the next run reads them
    with bounces.read_imap(settings, IMAP_PASSWORD) as scan:
        assert sorted((e.email, e.kind) for e in scan.events) == [(READERS[0], "hard"),
                                                                  (READERS[3], "complaint")]
        assert (scan.messages, scan.not_reports) == (2, 0)
    assert imap.unseen() == 0  # each one read is marked \Seen on the server
    with bounces.read_imap(settings, IMAP_PASSWORD) as scan:
        assert scan.messages == 0


@pytest.mark.slow
def test_digest_bounces_reads_an_imap_mailbox(tmp_path: Path, env: None, imap: Mailbox,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", IMAP_PASSWORD)
    settings = _imap_settings(tmp_path, imap.port)
    imap.append(dsn(READERS[0], "5.1.1"))
    imap.append(dsn(READERS[1], "4.2.2", mid="<r2@mx>"))
    imap.append(dsn(READERS[2], "4.4.1", action="delayed", mid="<r3@mx>"))  # still trying
    imap.append(arf(READERS[3]))
    imap.append(b"From: someone@example.org\nSubject: hello\n\nnot a report\n")
    imap.append(dsn(READERS[4], "5.1.1", mid="<old@mx>"), flags="(\\Seen)")  # read before
    done = digest(settings, "bounces")
    assert done.returncode == 0, done.stderr
    assert "read 5 messages: hard bounces 1, soft bounces 1, complaints 1" in done.stdout
    assert "not reports 2" in done.stdout and "stopped: " + READERS[0] in done.stdout
    got = statuses(settings)
    assert [got[r] for r in READERS[:5]] == ["bounced", "active", "active", "complained",
                                             "active"]
    assert imap.unseen() == 0
    # read again: only what arrived since
    imap.append(dsn(READERS[1], "4.2.2", mid="<r4@mx>"))  # the second soft bounce: limit 2
    again = digest(settings, "bounces", "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["messages"] == 1 and summary["soft"] == 1
    assert summary["stopped"] == [READERS[1]]


@pytest.mark.slow
def test_digest_bounces_with_a_wrong_imap_password(tmp_path: Path, env: None, imap: Mailbox,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_IMAP_PASSWORD", "not the password")
    settings = _imap_settings(tmp_path, imap.port)
    imap.append(dsn(READERS[0], "5.1.1"))
    done = digest(settings, "bounces")
    one_line_error(done, DeliveryError.exit_code, f"IMAP server 127.0.0.1:{imap.port}",
                   IMAP_USER, "AUTHENTICATIONFAILED", "bounces.imap_user",
                   "DIGEST_IMAP_PASSWORD")
    assert imap.unseen() == 1 and statuses(settings)[READERS[0]] == "active"


def test_read_imap_names_a_missing_folder_and_a_refused_connection(
        tmp_path: Path, env: None, imap: Mailbox) -> None:
    imap.append(dsn(READERS[0], "5.1.1"))
    settings = _imap_settings(tmp_path, imap.port, imap_folder="Bounces")
    with pytest.raises(DeliveryError) as missing, bounces.read_imap(settings, IMAP_PASSWORD):
        pass
    assert missing.value.key == "bounces.imap_folder"
    assert f"127.0.0.1:{imap.port} cannot open the folder 'Bounces'" in str(missing.value)
    assert "NONEXISTENT" in str(missing.value)
    assert imap.unseen() == 1  # INBOX untouched
    with socket.socket() as closed:  # bound, never listening: the connection is refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        settings = _imap_settings(tmp_path / "refused", port)
        with pytest.raises(DeliveryError) as refused, bounces.read_imap(settings, IMAP_PASSWORD):
            pass
    assert str(refused.value).startswith(f"cannot connect to IMAP server 127.0.0.1:{port}: ")
    assert "refused" in str(refused.value)


def test_read_imap_gives_up_on_a_server_that_never_answers(tmp_path: Path, env: None) -> None:
    """A server that takes the connection and says nothing (no TLS handshake, no greeting)
    is an error after the timeout, not a job that hangs."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel completes the connection; nobody ever answers on it
        settings = _imap_settings(tmp_path, silent.getsockname()[1])
        with (pytest.raises(DeliveryError) as stuck,
              bounces.read_imap(settings, IMAP_PASSWORD, timeout=0.3)):
            pass
    assert str(stuck.value).startswith("cannot connect to IMAP server 127.0.0.1:")
    assert "timed out" in str(stuck.value)


def test_stopped_readers_get_no_more_mail_and_status_shows_rates(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    build_issue(settings)
    with closing(services.open_store(settings)) as conn:
        now = datetime.now(UTC)
        bounces.apply_events(conn, settings, [
            bounces.BounceEvent("dsn", "x1", READERS[0], "hard"),
            bounces.BounceEvent("dsn", "x2", READERS[1], "complaint"),
        ], now)
    assert digest(settings, "send", "--date", DAY.isoformat()).returncode == 0
    sent = {p.stem for p in (settings.paths.outbox / DAY.isoformat()).glob("*.eml")}
    assert sent == set(READERS[2:])
    done = digest(settings, "status", "--date", DAY.isoformat(), "--json")
    assert done.returncode == 0, done.stderr
    rates = json.loads(done.stdout)["deliverability"]
    assert rates["sent"] == 4 and rates["bounced"] == 1 and rates["complained"] == 1
    assert rates["complaint_rate"] == pytest.approx(0.25)
    assert any("0.3%" in w for w in rates["warnings"])
    text = digest(settings, "status", "--date", DAY.isoformat())
    assert "complaints 25.00% (limit 0.3%)" in text.stdout
    assert "warning: complaint rate 25.00%" in text.stdout
