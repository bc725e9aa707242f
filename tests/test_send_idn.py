"""Internationalised addresses (issue #13): `user@exämple.org` used to crash every send with a
UnicodeEncodeError, so every reader after that row missed the issue. Through the real SMTP
server (STARTTLS + AUTH) on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import services, store
from pipeline.core.config import Settings
from pipeline.core.models import Subscriber
from pipeline.interfaces import present
from tests.deliver_support import (
    DAY,
    Sink,
    add_subscribers,
    build_issue,
    newsletter,
    quiet_runtime,
    smtp_server,
)

REPO = Path(__file__).resolve().parent.parent
IDN = "reader@exämple.org"  # an internationalised domain: IDNA on the wire
IDN_WIRE = "reader@xn--exmple-cua.org"
UTF8 = "üser@example.org"  # a non-ASCII local part: only SMTPUTF8 carries it


pytestmark = [pytest.mark.usefixtures("env"), pytest.mark.slow]  # fixtures: tests/conftest.py


def _readers(settings: Settings) -> list[Subscriber]:
    """200 ASCII readers with the two international ones in the middle (ids 101 and 102),
    stored as a newsletter with `smtp.smtputf8 = true` would have accepted them."""
    first = add_subscribers(settings, 100)
    conn = services.open_store(settings)
    try:
        middle = [store.save_subscriber(conn, Subscriber(a, "all", (), "active"))[1]
                  for a in (IDN, UTF8)]
    finally:
        conn.close()
    return first + middle + add_subscribers(settings, 100, start=100)


@pytest.mark.parametrize("smtputf8", [False, True], ids=["no-smtputf8", "smtputf8"])
def test_a_send_to_200_readers_with_international_addresses_in_the_middle(
    tmp_path: Path, cert: tuple[Path, Path], smtputf8: bool
) -> None:
    with smtp_server(*cert, smtputf8=smtputf8) as (sink, port):
        settings = newsletter(tmp_path, port=port)
        build_issue(settings)
        readers = _readers(settings)
        lines: list[str] = []
        lines += present.lines(services.send(settings, DAY, quiet_runtime(echo=lines.append)))
        services.send(settings, DAY, quiet_runtime())  # a rerun sends nothing more
    got = sink.by_recipient()
    ascii_readers = [r.email for r in readers if r.email.isascii()]
    assert len(ascii_readers) == 200
    assert all(len(got[a]) == 1 for a in ascii_readers)  # everyone else got the issue
    # the IDN domain went out as punycode in RCPT TO and in the To header
    assert IDN not in got and len(got[IDN_WIRE]) == 1
    assert got[IDN_WIRE][0].parsed()["To"] == IDN_WIRE
    conn = services.open_store(settings)
    try:
        rows = {r["email"]: (r["status"], r["response"]) for r in conn.execute(
            "SELECT s.email, d.status, d.response FROM deliveries d"
            " JOIN subscribers s ON s.id = d.subscriber_id")}
        state = store.get_issue(conn, DAY).state
    finally:
        conn.close()
    assert state == "sent"  # a failed address is final: it holds nothing back
    if smtputf8:
        assert len(got[UTF8]) == 1
        assert got[UTF8][0].parsed()["To"] == UTF8
        assert lines[-1] == f"issue {DAY}: sent 202, failed 0, skipped 0"
        assert rows[UTF8] == ("sent", None)
    else:
        assert UTF8 not in got
        assert rows[UTF8][0] == "failed" and "SMTPUTF8" in rows[UTF8][1]
        assert lines[-1] == f"issue {DAY}: sent 201, failed 1, skipped 0"
        assert any(line.startswith(f"failed: {UTF8}: not sent:") for line in lines)
    assert sorted(s for s, _ in rows.values()).count("sent") == (202 if smtputf8 else 201)


def test_a_preview_to_an_idn_address(tmp_path: Path, cert: tuple[Path, Path]) -> None:
    sink: Sink
    with smtp_server(*cert) as (sink, port):
        settings = newsletter(tmp_path, port=port)
        build_issue(settings)
        services.send(settings, DAY, quiet_runtime(), to="Curator@Exämple.org")
    assert [m.recipients for m in sink.messages] == [["Curator@xn--exmple-cua.org"]]


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--config", str(settings.source), *args],
        cwd=REPO, env={**os.environ}, capture_output=True, text=True, timeout=60,
    )


@pytest.fixture
def outbox_newsletter(tmp_path: Path) -> Iterator[Settings]:
    yield newsletter(tmp_path, transport="outbox")


def test_add_and_import_accept_idn_domains_and_refuse_utf8_names_without_smtputf8(
    outbox_newsletter: Settings, tmp_path: Path
) -> None:
    settings = outbox_newsletter
    added = _cli(settings, "subscribers", "add", "reader@xn--exmple-cua.org")
    assert added.returncode == 0 and added.stdout == f"added: {IDN} (all)\n"
    again = _cli(settings, "subscribers", "add", IDN)  # the same mailbox, however written
    assert again.stdout == f"same: {IDN} (all)\n"
    refused = _cli(settings, "subscribers", "add", UTF8)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "needs an SMTP server with SMTPUTF8" in refused.stderr
    assert "smtp.smtputf8" in refused.stderr
    csv = tmp_path / "in.csv"
    csv.write_text(f"email,language,tags,status\nother@exämple.org,,,\n{UTF8},,,\n",
                   encoding="utf-8")
    imported = _cli(settings, "subscribers", "import", str(csv))
    assert imported.returncode == 2
    assert f"{csv}:3: cannot deliver to '{UTF8}'" in imported.stderr
    assert "added 1," in imported.stdout
    listed = _cli(settings, "subscribers", "list").stdout.splitlines()
    assert [ln.split("\t")[0] for ln in listed] == [IDN, "other@exämple.org"]
    # a newsletter whose server has SMTPUTF8 says so, and then takes the address
    assert settings.source is not None
    settings.source.write_text(settings.source.read_text(encoding="utf-8").replace(
        "[smtp]\n", "[smtp]\nsmtputf8 = true\n"), encoding="utf-8")
    assert _cli(settings, "subscribers", "add", UTF8).stdout == f"added: {UTF8} (all)\n"
