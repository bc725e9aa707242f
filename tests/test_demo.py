"""`make demo`: the whole daily job offline for the sample day, twice, nobody mailed twice."""

from __future__ import annotations

import email
import email.policy
import json
import os
import socket
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from pipeline import services
from pipeline.core.config import load_config
from pipeline.core.errors import InputError
from pipeline.interfaces import demo

ROOT = Path(__file__).resolve().parent.parent
METADATA = ROOT / "tests" / "fixtures" / "digest" / "sample-day-2024-12-05.metadata.json"


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Refuse every connection that does not go to loopback, and record the attempts."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else str(address)
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in (
            "127.0.0.1", "::1", "localhost"
        ):
            attempts.append(address)
            raise OSError(f"test is offline: refused {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield attempts


def reader_emails(target: Path) -> dict[str, bytes]:
    outbox = target / "outbox" / "2024-12-05"
    return {p.name: p.read_bytes() for p in sorted(outbox.glob("*.eml"))
            if not p.name.startswith("preview.")}


@pytest.mark.slow
def test_demo_runs_offline_and_a_second_run_mails_nobody_again(
    tmp_path: Path, offline: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "demo-out"
    secret_before = os.environ.get("DIGEST_SECRET")

    assert demo.main([str(target)]) == 0
    captured = capsys.readouterr()
    first = captured.out
    emails = reader_emails(target)
    assert sorted(emails) == ["both.reader@example.org.eml", "en.reader@example.org.eml",
                              "ko.reader@example.org.eml"]
    assert "feed requests this time: 1; deliveries: 3 sent, to the outbox" in first
    assert "nothing reached a reader" in captured.out + captured.err
    for name in ("index.html", "feed.xml", "issues/2024-12-05.html"):
        assert f"{target / 'site' / name}" in first
        assert (target / "site" / name).is_file()
    page = (target / "site" / "issues" / "2024-12-05.html").read_text("utf-8")
    titles = [p["title"] for p in json.loads(METADATA.read_text("utf-8"))["papers"]]
    assert all(t.split(":")[0] in page for t in titles)
    for name, raw in emails.items():
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert message["To"] == name.removesuffix(".eml")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    ko_text = email.message_from_bytes(emails["ko.reader@example.org.eml"],
                                       policy=email.policy.default)
    body = ko_text.get_body(("plain",))
    assert body is not None and "2024년 12월 5일" in body.get_content()

    # Again: every step is found done, the feed is not fetched, no email is rewritten.
    assert demo.main([str(target)]) == 0
    second = capsys.readouterr()
    assert "feed requests this time: 0; deliveries: 3 sent" in second.out
    assert "already sent to the outbox (a trial: no reader was mailed); nothing to do" \
        in second.err
    assert reader_emails(target) == emails
    settings = load_config(target / "config" / "digest.toml")
    with closing(services.open_store(settings)) as conn:
        rows = conn.execute("SELECT status, attempts FROM deliveries").fetchall()
    assert [(r["status"], r["attempts"]) for r in rows] == [("sent", 1)] * 3
    assert offline == []
    assert os.environ.get("DIGEST_SECRET") == secret_before


def test_a_missing_bundle_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="the demo bundle is missing"):
        demo.prepare(tmp_path / "out", "http://127.0.0.1:1", bundle=tmp_path / "nothing")
