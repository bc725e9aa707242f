"""`digest send` end to end against a real SMTP server (STARTTLS + AUTH) on loopback, and the
unsubscribe link POSTed to the real `digest serve` (waitress)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from pipeline import services, store
from pipeline.core.config import load_config
from pipeline.core.errors import ApprovalError, DeliveryError, LockedError
from pipeline.core.models import UNSUBSCRIBE_PLACEHOLDER, Subscriber
from pipeline.deliver import tokens
from pipeline.interfaces import present
from pipeline.interfaces.cli import main
from pipeline.services.status import DraftStatus, next_step
from tests.deliver_support import (
    DAY,
    SECRET,
    Sink,
    add_subscribers,
    build_issue,
    newsletter,
    quiet_runtime,
    serving,
    store_build,
)
from tests.support import FakeClock

HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe",
           "List-Unsubscribe-Post")


pytestmark = pytest.mark.usefixtures("env")  # tests/conftest.py


@pytest.mark.slow
def test_200_subscribers_each_get_one_message_and_unsubscribe_works(
    tmp_path: Path, server: tuple[Sink, int], clock: FakeClock
) -> None:
    sink, port = server
    settings = newsletter(tmp_path, port=port)
    variants = {v.variant: v for v in build_issue(settings)}
    subs = add_subscribers(settings, 200)
    lines: list[str] = []
    rt = quiet_runtime(echo=lines.append, sleep=clock.sleep, monotonic=clock.monotonic)

    lines += present.lines(services.send(settings, DAY, rt))

    got = sink.by_recipient()
    assert sorted(got) == sorted(s.email for s in subs)
    assert all(len(m) == 1 for m in got.values())
    assert sink.sessions == 4  # delivery.connections, each reused for its share of the 200
    assert lines[-1] == f"issue {DAY}: sent 200, failed 0, skipped 0"
    assert len(clock.sleeps) >= 199  # paced by delivery.rate_per_second on the injected clock
    message_ids = set()
    for sub in subs:
        received = got[sub.email][0]
        head = received.data.split(b"\r\n\r\n", 1)[0].decode("ascii")
        unfolded = [ln for ln in head.split("\r\n") if ln.startswith("List-Unsubscribe:")]
        assert len(unfolded) == 1
        assert "<https://digest.example.org/unsubscribe/" in unfolded[0]
        assert "<mailto:unsubscribe@example.org?subject=unsubscribe%20" in unfolded[0]
        msg = received.parsed()
        for name in HEADERS:
            assert msg[name], name
        assert msg["To"] == sub.email
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg.get_content_type() == "multipart/alternative"
        parts = list(msg.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        variant = variants[sub.language]
        assert msg["Subject"] == variant.subject
        url = unfolded[0].split("<", 1)[1].split(">", 1)[0]
        text, body = parts[0].get_content(), parts[1].get_content()
        assert text.replace("\r\n", "\n") == variant.text.replace(UNSUBSCRIBE_PLACEHOLDER, url)
        assert body == variant.html.replace(UNSUBSCRIBE_PLACEHOLDER, url)
        message_ids.add(msg["Message-ID"])
    assert len(message_ids) == 200

    conn = services.open_store(settings)
    assert store.get_issue(conn, DAY).state == "sent"
    assert store.delivery_counts(conn, DAY) == {"sent": 200}

    # The List-Unsubscribe URL of one reader, POSTed as RFC 8058 says, unsubscribes only them.
    victim = subs[17]
    url = sink.by_recipient()[victim.email][0].parsed()["List-Unsubscribe"]
    path = urlsplit(url.split("<", 1)[1].split(">", 1)[0]).path
    with serving(settings) as base:
        for _ in range(2):  # idempotent
            reply = requests.post(base + path, data={"List-Unsubscribe": "One-Click"},
                                  allow_redirects=False, timeout=10)
            assert reply.status_code == 200
    statuses = {s.email: s.status for s in store.iter_subscribers(conn)}
    conn.close()
    assert statuses.pop(victim.email) == "unsubscribed"
    assert set(statuses.values()) == {"active"}

    # A rerun sends nobody anything.
    services.send(settings, DAY, rt)
    assert sink.count == 200


@pytest.mark.slow
def test_rerun_after_partial_send_sends_only_the_rest(
    tmp_path: Path, server: tuple[Sink, int], clock: FakeClock
) -> None:
    sink, port = server
    settings = newsletter(tmp_path, port=port)
    build_issue(settings)
    add_subscribers(settings, 10)
    rt = quiet_runtime(sleep=clock.sleep, monotonic=clock.monotonic)
    services.send(settings, DAY, rt)
    add_subscribers(settings, 5, start=10)  # joined after the send: the issue was 'sent'
    conn = services.open_store(settings)
    conn.execute("UPDATE issues SET state = 'approved'")  # as if the first run had crashed
    conn.close()
    services.send(settings, DAY, rt)
    counts = {r: len(m) for r, m in sink.by_recipient().items()}
    assert len(counts) == 15 and set(counts.values()) == {1}


@pytest.mark.slow
def test_faults_451_retried_550_failed_drop_reconnects(
    tmp_path: Path, server: tuple[Sink, int], clock: FakeClock
) -> None:
    sink, port = server
    settings = newsletter(tmp_path, port=port)
    build_issue(settings)
    subs = add_subscribers(settings, 30)
    deferred = [subs[3].email, subs[11].email]
    rejected = [subs[5].email, subs[20].email]
    for addr in deferred:
        sink.defer[addr] = 2
    for addr in rejected:
        sink.reject[addr] = "550 5.1.1 No such user here"
    sink.drop_after = 8
    lines: list[str] = []
    rt = quiet_runtime(echo=lines.append, sleep=clock.sleep, monotonic=clock.monotonic)

    lines += present.lines(services.send(settings, DAY, rt))

    got = sink.by_recipient()
    assert set(got) == {s.email for s in subs} - set(rejected)
    assert all(len(m) == 1 for m in got.values())
    assert sink.sessions == 5  # 4 connections; the drop after the 8th message: one reconnect
    assert 2.0 in clock.sleeps and 4.0 in clock.sleeps  # 451 backoff
    assert lines[-1] == f"issue {DAY}: sent 28, failed 2, skipped 0"
    assert f"failed: {rejected[0]}: refused by the server: 550 5.1.1 No such user here" in lines
    conn = services.open_store(settings)
    rows = conn.execute(
        "SELECT s.email, d.status, d.response FROM deliveries d JOIN subscribers s"
        " ON s.id = d.subscriber_id WHERE d.status != 'sent'"
    ).fetchall()
    assert sorted((r[0], r[1], r[2]) for r in rows) == [
        (addr, "failed", "550 5.1.1 No such user here") for addr in sorted(rejected)
    ]
    assert store.get_issue(conn, DAY).state == "sent"
    conn.close()


@pytest.mark.slow
def test_4xx_that_never_clears_is_deferred_and_retried_next_run(
    tmp_path: Path, server: tuple[Sink, int], clock: FakeClock
) -> None:
    sink, port = server
    settings = newsletter(tmp_path, port=port, retries=1)
    build_issue(settings)
    subs = add_subscribers(settings, 3)
    sink.defer[subs[1].email] = 2
    rt = quiet_runtime(sleep=clock.sleep, monotonic=clock.monotonic)
    with pytest.raises(DeliveryError, match="1 messages of the issue of 2024-12-05 were deferred"):
        services.send(settings, DAY, rt)
    assert subs[1].email not in sink.by_recipient()
    services.send(settings, DAY, rt)  # the server has recovered
    assert {r: len(m) for r, m in sink.by_recipient().items()} == {s.email: 1 for s in subs}


@pytest.mark.slow
def test_a_deferred_reader_who_unsubscribes_no_longer_holds_the_issue_back(
    tmp_path: Path, server: tuple[Sink, int], clock: FakeClock
) -> None:
    sink, port = server
    settings = newsletter(tmp_path, port=port, retries=1)
    build_issue(settings)
    subs = add_subscribers(settings, 3)
    sink.defer[subs[1].email] = 2
    rt = quiet_runtime(sleep=clock.sleep, monotonic=clock.monotonic)
    with pytest.raises(DeliveryError, match="deferred"):
        services.send(settings, DAY, rt)
    conn = services.open_store(settings)
    assert subs[1].id is not None
    store.set_subscriber_status(conn, subs[1].id, "unsubscribed")  # before the retry
    conn.close()
    services.send(settings, DAY, rt)  # nobody left to retry: the issue is done
    conn = services.open_store(settings)
    assert store.get_issue(conn, DAY).state == "sent"
    conn.close()
    assert sorted(sink.by_recipient()) == sorted([subs[0].email, subs[2].email])


def test_wrong_password_is_one_clear_line(
    tmp_path: Path, server: tuple[Sink, int], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink, port = server
    settings = newsletter(tmp_path, port=port)
    build_issue(settings)
    add_subscribers(settings, 3)
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "wrong")
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(settings.source), "send", "--date", str(DAY)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("digest: error: SMTP server 127.0.0.1:")
    assert "refused the login of 'digest-sender' (535" in err
    assert "check smtp.username and DIGEST_SMTP_PASSWORD" in err
    assert sink.count == 0
    conn = services.open_store(settings)
    assert store.delivery_counts(conn, DAY) == {}
    conn.close()


@pytest.mark.parametrize(
    ("approve", "change", "message"),
    [
        (False, False, "is not approved: check outbox/2024-12-05/preview.*.html"),
        (True, True, "changed since the issue was built"),
    ],
)
def test_refuses_unapproved_or_changed_issue(
    tmp_path: Path, server: tuple[Sink, int], capsys: pytest.CaptureFixture[str],
    approve: bool, change: bool, message: str,
) -> None:
    sink, port = server
    settings = newsletter(tmp_path, port=port)
    build_issue(settings, approve=approve)
    add_subscribers(settings, 3)
    if change:
        draft = services.draft_path(settings, DAY)
        draft.write_text(draft.read_text(encoding="utf-8") + "\n#late-edit\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(settings.source), "send", "--date", str(DAY)])
    assert exit_info.value.code == 1
    assert message in capsys.readouterr().err
    assert sink.count == 0


def test_changed_rendering_after_approval_is_refused(
    tmp_path: Path, server: tuple[Sink, int]
) -> None:
    sink, port = server
    settings = newsletter(tmp_path, port=port)
    variants = build_issue(settings)
    conn = services.open_store(settings)
    sha = services.file_sha(services.draft_path(settings, DAY))
    assert sha is not None
    store_build(conn, DAY, sha, [*variants[:-1], variants[-1].__class__(
        variants[-1].variant, variants[-1].subject + "!", variants[-1].html, variants[-1].text)])
    with pytest.raises(ApprovalError, match="changed since it was approved"):
        services.send(settings, DAY, quiet_runtime())
    conn.close()
    assert sink.count == 0


@pytest.mark.slow
def test_preview_to_one_address_records_nothing(
    tmp_path: Path, server: tuple[Sink, int]
) -> None:
    sink, port = server
    settings = newsletter(tmp_path, port=port)
    build_issue(settings)
    subs = add_subscribers(settings, 3)
    services.send(settings, DAY, quiet_runtime(), to=subs[1].email)
    services.send(settings, DAY, quiet_runtime(), to="curator@example.org")
    assert [m.recipients for m in sink.messages] == [[subs[1].email], ["curator@example.org"]]
    first = sink.messages[0].parsed()
    assert re.match(r"\[TEST\] \[(ko|en|all)\] ML Papers Digest", first["Subject"])
    assert subs[1].id is not None
    token = tokens.sign(SECRET.encode(), "unsubscribe", subs[1].id, subs[1].email)
    assert first["List-Unsubscribe"].startswith(f"<https://digest.example.org/unsubscribe/{token}>")
    stranger = sink.messages[1].parsed()  # not a subscriber: a link that unsubscribes nobody
    assert stranger["List-Unsubscribe"].startswith("<https://digest.example.org/unsubscribe/preview>")
    conn = services.open_store(settings)
    assert store.delivery_counts(conn, DAY) == {}
    assert store.get_issue(conn, DAY).state == "published"
    conn.close()
    # the real send still reaches the previewed subscriber, under another Message-ID
    services.send(settings, DAY, quiet_runtime())
    real = [m for m in sink.messages[2:] if m.recipients == [subs[1].email]]
    assert len(real) == 1 and real[0].parsed()["Message-ID"] != first["Message-ID"]


@pytest.mark.slow
def test_dry_run_writes_outbox_only(tmp_path: Path, server: tuple[Sink, int]) -> None:
    sink, port = server
    settings = newsletter(tmp_path, port=port)
    build_issue(settings)
    subs = add_subscribers(settings, 4)
    services.send(settings, DAY, quiet_runtime(), dry_run=True)
    folder = settings.paths.outbox / DAY.isoformat()
    assert sorted(p.name for p in folder.glob("*.eml")) == sorted(f"{s.email}.eml" for s in subs)
    assert sink.count == 0
    conn = services.open_store(settings)
    assert store.delivery_counts(conn, DAY) == {}
    conn.close()


@pytest.mark.slow
def test_outbox_transport_records_deliveries(tmp_path: Path) -> None:
    settings = newsletter(tmp_path, transport="outbox")
    build_issue(settings)
    subs = add_subscribers(settings, 3)
    services.send(settings, DAY, quiet_runtime())
    folder = settings.paths.outbox / DAY.isoformat()
    assert sorted(p.name for p in folder.glob("*.eml")) == sorted(f"{s.email}.eml" for s in subs)
    conn = services.open_store(settings)
    assert store.delivery_counts(conn, DAY) == {"sent": 3}
    assert store.delivery_counts(conn, DAY, transport="outbox") == {"sent": 3}
    conn.close()


def test_outbox_send_is_a_trial_and_a_later_smtp_send_reaches_every_reader(
    tmp_path: Path, server: tuple[Sink, int]
) -> None:
    """Issue #21: an outbox send marked every reader sent, so the first real send said
    "already sent". The outbox is a trial: it dedupes itself, a real send ignores it."""
    sink, port = server
    settings = newsletter(tmp_path, transport="outbox", port=port)
    build_issue(settings)
    subs = add_subscribers(settings, 5)
    folder = settings.paths.outbox / DAY.isoformat()
    lines: list[str] = []
    report = services.send(settings, DAY, quiet_runtime(echo=lines.append))
    lines += present.lines(report)
    assert report.outbox == folder and report.sent == 5
    assert lines[-1].startswith(f"outbox: the messages are files in {folder}; nothing "
                                "reached a reader")
    files = {p.name: p.read_bytes() for p in folder.glob("*.eml")}
    assert sorted(files) == sorted(f"{s.email}.eml" for s in subs)
    conn = services.open_store(settings)
    try:
        record = store.get_issue_record(conn, DAY)
        assert record is not None and not record.sent  # only a real transport makes it sent
        assert store.issue_outboxed_at(conn, DAY) is not None
    finally:
        conn.close()
    # a second outbox send writes no second copy
    again = services.send(settings, DAY, quiet_runtime())
    assert (again.sent, again.skipped) == (0, 5)
    assert {p.name: p.read_bytes() for p in folder.glob("*.eml")} == files
    assert sink.count == 0

    # the same newsletter switched to SMTP: every reader gets exactly one real message
    assert settings.source is not None
    text = settings.source.read_text(encoding="utf-8")
    settings.source.write_text(text.replace('transport = "outbox"', 'transport = "smtp"'),
                               encoding="utf-8")
    settings = load_config(settings.source)
    report = services.send(settings, DAY, quiet_runtime())
    assert (report.mode, report.sent, report.skipped, report.outbox) == ("sent", 5, 0, None)
    assert {r: len(m) for r, m in sink.by_recipient().items()} == {s.email: 1 for s in subs}
    conn = services.open_store(settings)
    try:
        record = store.get_issue_record(conn, DAY)
        assert record is not None and record.sent
        assert store.delivery_counts(conn, DAY, transport="smtp") == {"sent": 5}
        assert store.delivery_counts(conn, DAY, transport="outbox") == {}
        attempts = {r[0] for r in conn.execute("SELECT attempts FROM deliveries")}
        assert attempts == {1}  # the real send's first attempt, not the trial's second
    finally:
        conn.close()
    # now it is sent: neither SMTP nor the outbox sends it again
    assert services.send(settings, DAY, quiet_runtime()).mode == "already-sent"
    assert sink.count == 5


def test_an_outbox_trial_is_done_for_the_daily_job_only_while_the_outbox_is_configured(
    tmp_path: Path,
) -> None:
    settings = newsletter(tmp_path, transport="outbox")
    build_issue(settings)
    add_subscribers(settings, 2)
    later = DAY + timedelta(days=1)
    assert services.late_approved(settings, later) == [DAY]
    services.send(settings, DAY, quiet_runtime())
    conn = services.open_store(settings)
    try:
        now = services.progress(conn, settings, DAY)
    finally:
        conn.close()
    assert now.outbox_done
    collected = replace(now, collected="collected")
    step = next_step(DAY, collected, DraftStatus("d.txt", exists=True), approval_required=True)
    assert "no reader was mailed" in step
    assert services.late_approved(settings, later) == []  # no daily rewrite of the trial
    assert settings.source is not None
    text = settings.source.read_text(encoding="utf-8")
    settings.source.write_text(text.replace('transport = "outbox"', 'transport = "smtp"'),
                               encoding="utf-8")
    real = load_config(settings.source)
    conn = services.open_store(real)
    try:
        assert not services.progress(conn, real, DAY).outbox_done  # the real send is owed
    finally:
        conn.close()
    assert services.late_approved(real, later) == [DAY]


@pytest.mark.slow
def test_subscribers_get_the_issue_only_when_it_has_their_tags(tmp_path: Path) -> None:
    settings = newsletter(tmp_path, transport="outbox")
    build_issue(settings)
    conn = services.open_store(settings)
    for email, tags in [("a@example.org", ("reward-model",)), ("b@example.org", ("robotics",)),
                        ("c@example.org", ())]:
        store.save_subscriber(conn, Subscriber(email, "all", tags, "active"))
    conn.close()
    lines: list[str] = []
    lines += present.lines(services.send(settings, DAY, quiet_runtime(echo=lines.append)))
    folder = settings.paths.outbox / DAY.isoformat()
    names = sorted(p.name for p in folder.glob("*.eml"))
    assert names == ["a@example.org.eml", "c@example.org.eml"]
    assert lines[-2] == f"issue {DAY}: sent 2, failed 0, skipped 1"
    assert "nothing reached a reader" in lines[-1]


@pytest.mark.slow
def test_second_send_at_once_is_refused(tmp_path: Path) -> None:
    from pipeline.deliver.dispatch import issue_lock

    settings = newsletter(tmp_path, transport="outbox")
    build_issue(settings)
    add_subscribers(settings, 2)
    with issue_lock(settings, DAY), pytest.raises(LockedError, match="another `digest send`"):
        services.send(settings, DAY, quiet_runtime())
    assert not (settings.paths.outbox / DAY.isoformat()).exists()


def test_progress_bar_then_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = newsletter(tmp_path, transport="outbox")
    build_issue(settings)
    add_subscribers(settings, 3)
    lines: list[str] = []
    lines += present.lines(services.send(settings, DAY, quiet_runtime(echo=lines.append),
                                         progress=present.progress_counter("sending")))
    assert "sending" in capsys.readouterr().err
    assert lines[0] == f"issue {DAY}: sent 3, failed 0, skipped 0"
    assert lines[1:] == [f"outbox: the messages are files in {settings.paths.outbox / str(DAY)}"
                         "; nothing reached a reader (a trial: with transport = \"smtp\" "
                         "`digest send` still sends to every reader)"]


@pytest.mark.slow
def test_refused_sender_stops_the_send_and_records_no_failures(
    tmp_path: Path, server: tuple[Sink, int], clock: FakeClock
) -> None:
    sink, port = server
    settings = newsletter(tmp_path, port=port)
    build_issue(settings)
    subs = add_subscribers(settings, 5)
    sink.reject_sender = "553 5.7.1 Sender address rejected: not owned by user"
    rt = quiet_runtime(sleep=clock.sleep, monotonic=clock.monotonic)
    with pytest.raises(DeliveryError, match=r"refused the sender 'digest@example\.org': 553"):
        services.send(settings, DAY, rt)
    conn = services.open_store(settings)
    counts = store.delivery_counts(conn, DAY)
    assert list(counts) == ["sending"]  # nobody marked failed
    assert 1 <= counts["sending"] <= 4  # at most the message each connection had claimed
    conn.close()
    sink.reject_sender = None
    services.send(settings, DAY, rt)
    assert {r: len(m) for r, m in sink.by_recipient().items()} == {s.email: 1 for s in subs}


def test_a_config_naming_no_transport_sends_nothing_to_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue #21: with no [delivery] transport the first send went to the outbox, marked
    every reader sent, and a later switch to SMTP said "already sent"."""
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    settings = newsletter(tmp_path, transport="outbox")
    assert settings.source is not None
    text = settings.source.read_text(encoding="utf-8")
    settings.source.write_text(text.replace('transport = "outbox"\n', ""), encoding="utf-8")
    build_issue(settings)
    add_subscribers(settings, 3)
    with pytest.raises(SystemExit) as info:
        main(["--config", str(settings.source), "send", "--date", DAY.isoformat()])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "delivery.transport" in err
    conn = services.open_store(settings)
    try:
        assert store.delivery_counts(conn, DAY) == {}
    finally:
        conn.close()
    assert not list((settings.paths.outbox / DAY.isoformat()).glob("*.eml"))
    # the test copy and the dry run still work: they send nothing to readers
    assert main_code(["--config", str(settings.source), "send", "--date", DAY.isoformat(),
                      "--dry-run"]) == 0


def main_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return int(info.value.code or 0)
