"""Issue #22, the store's integrity: a truncated (0-byte) or deleted database is an error, not
a fresh start, however it was cleared; `digest status` and the studio say so too. Real CLI
in a subprocess, SQLite on disk, the studio on waitress."""

from __future__ import annotations

import socket
from pathlib import Path

import requests

from pipeline import store
from pipeline.core.config import Settings
from pipeline.interfaces.studio.app import MAX_BODY_BYTES, make_studio_server
from tests.deliver_support import DAY, add_subscribers, build_issue, newsletter, quiet_runtime
from tests.studio_support import running
from tests.test_store_failures import digest, one_line_error


def _sent_newsletter(tmp_path: Path) -> Settings:
    """A newsletter whose issue went to three readers, one of whom left afterwards."""
    settings = newsletter(tmp_path, transport="outbox")
    build_issue(settings)
    add_subscribers(settings, 3)
    assert digest(settings, "send", "--date", DAY.isoformat()).returncode == 0
    assert digest(settings, "subscribers", "remove", "reader00000@example.org").returncode == 0
    return settings


def _refused_everywhere(settings: Settings, *words: str) -> None:
    csv = settings.root / "readers.csv"
    csv.write_text("email,language,tags,status\nreader00000@example.org,ko,,active\n", "utf-8")
    for args in (["status", "--date", DAY.isoformat()], ["subscribers", "list"],
                 ["subscribers", "import", str(csv)], ["send", "--date", DAY.isoformat()]):
        one_line_error(digest(settings, *args), 1, str(settings.db_path), *words)


def test_a_database_truncated_to_zero_bytes_is_an_error(tmp_path: Path) -> None:
    settings = _sent_newsletter(tmp_path)
    outbox = sorted((settings.paths.outbox / DAY.isoformat()).glob("*.eml"))
    for f in outbox:
        f.unlink()
    for f in settings.db_path.parent.glob("digest.db-*"):
        f.unlink()
    settings.db_path.write_bytes(b"")  # truncated, e.g. by a full disk or `> digest.db`
    _refused_everywhere(settings, "the database is empty (0 bytes", "restore it from a backup")
    assert settings.db_path.stat().st_size == 0  # nothing written into it
    assert not list((settings.paths.outbox / DAY.isoformat()).glob("*.eml"))  # no mail again


def test_rm_digest_db_star_keeps_the_marker(tmp_path: Path) -> None:
    settings = _sent_newsletter(tmp_path)
    for f in settings.db_path.parent.glob("digest.db*"):  # `rm data/digest.db*`
        f.unlink()
    assert store.marker_path(settings.db_path).exists()
    _refused_everywhere(settings, "the database is missing", "digest.created")
    assert not settings.db_path.exists()


def test_the_earlier_marker_name_still_guards(tmp_path: Path) -> None:
    settings = newsletter(tmp_path, transport="outbox")
    assert digest(settings, "subscribers", "add", "a@example.org").returncode == 0
    legacy = settings.db_path.with_name("digest.db.created")
    store.marker_path(settings.db_path).rename(legacy)  # a store made by an earlier version
    settings.db_path.unlink()
    one_line_error(digest(settings, "subscribers", "list"), 1, "digest.db.created")


def test_status_of_a_new_newsletter_is_fine(tmp_path: Path) -> None:
    settings = newsletter(tmp_path, transport="outbox")
    done = digest(settings, "status", "--date", DAY.isoformat())
    assert done.returncode == 0, done.stderr
    assert not settings.db_path.exists()  # status reads; it creates nothing


def test_the_studio_answers_503_for_a_missing_or_corrupt_database(tmp_path: Path) -> None:
    settings = newsletter(tmp_path, transport="outbox")
    build_issue(settings, approve=False)
    server, url = make_studio_server(settings, DAY, quiet_runtime())
    with running(server):
        session = requests.Session()
        assert session.get(url, timeout=10).status_code == 200
        base = url.split("/login")[0]
        for f in settings.db_path.parent.glob("digest.db*"):
            f.unlink()
        gone = session.get(base + "/", timeout=10)
        assert gone.status_code == 503 and "Retry-After" in gone.headers
        assert "the database is missing" in gone.text and "Traceback" not in gone.text
        settings.db_path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
        corrupt = session.get(base + "/", timeout=10)
        assert corrupt.status_code == 503 and "Traceback" not in corrupt.text


def test_the_studio_refuses_a_huge_body_before_reading_it(tmp_path: Path) -> None:
    settings = newsletter(tmp_path, transport="outbox")
    server, _url = make_studio_server(settings, DAY, quiet_runtime())
    port = server.effective_port
    with running(server), socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        size = 20 * 1024 * 1024
        assert size > MAX_BODY_BYTES
        sock.sendall(f"POST /save HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
                     f"application/x-www-form-urlencoded\r\nContent-Length: {size}\r\n\r\n"
                     .encode())
        sock.sendall(b"x" * 65536)  # a first slice; the rest is never sent
        answer = sock.recv(4096).decode("latin-1")
        assert answer.startswith("HTTP/1.1 413"), answer[:200]
        # waitress writes that answer itself: it carries the studio's headers all the same
        assert "Content-Security-Policy: default-src 'none'" in answer, answer[:600]
        assert "X-Frame-Options: DENY" in answer

