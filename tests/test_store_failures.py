"""The store failing as disks do (issue #13): read-only, full, corrupt, deleted. The real CLI
in a subprocess, on SQLite on disk: one line naming the file, exit 1, nothing half-done."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline import store
from pipeline.core.config import Settings
from pipeline.core.errors import StoreError
from tests.deliver_support import DAY, SECRET, build_issue, newsletter

REPO = Path(__file__).resolve().parent.parent
# Root ignores file permissions: the CLI then runs without the capabilities that let it.
UNPRIVILEGED = (
    ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
     "--inh-caps=-dac_override,-dac_read_search"]
    if os.geteuid() == 0 else []
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return newsletter(tmp_path, transport="outbox")


def digest(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DIGEST_SECRET": SECRET}
    return subprocess.run(
        [*UNPRIVILEGED, sys.executable, "-m", "pipeline", "--config", str(settings.source),
         *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )


def one_line_error(done: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    assert done.returncode == code, done.stderr
    err = done.stderr
    assert err.count("\n") == 1 and err.startswith("digest: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err
    return err


@pytest.mark.slow
def test_a_new_newsletter_needs_no_extra_command(settings: Settings) -> None:
    assert not settings.db_path.exists()
    done = digest(settings, "subscribers", "list")
    assert done.returncode == 0 and done.stdout == ""
    assert settings.db_path.exists() and store.marker_path(settings.db_path).exists()


@pytest.mark.slow
def test_a_deleted_database_is_an_error_not_a_fresh_start(settings: Settings) -> None:
    assert digest(settings, "subscribers", "add", "a@example.org").returncode == 0
    assert digest(settings, "subscribers", "remove", "a@example.org").returncode == 0
    for f in settings.db_path.parent.glob("digest.db*"):
        if f != store.marker_path(settings.db_path):
            f.unlink()
    for args in (["subscribers", "list"], ["subscribers", "add", "a@example.org"],
                 ["send", "--date", "2024-12-05"]):
        one_line_error(digest(settings, *args), 1, str(settings.db_path),
                       "the database is missing", "restore it from a backup")
    assert not settings.db_path.exists()  # nothing recreated: the unsubscribe is not lost
    # the way to start afresh on purpose is named in the message
    store.marker_path(settings.db_path).unlink()
    assert digest(settings, "subscribers", "list").returncode == 0


@pytest.mark.slow
def test_a_read_only_database_file(settings: Settings) -> None:
    build_issue(settings)
    assert digest(settings, "subscribers", "add", "a@example.org").returncode == 0
    for f in settings.db_path.parent.glob("digest.db-*"):  # as after a clean shutdown
        f.unlink()
    before = settings.db_path.read_bytes()
    settings.db_path.chmod(0o444)
    try:
        for args in (["subscribers", "add", "b@example.org"],
                     ["subscribers", "remove", "a@example.org"],
                     ["send", "--date", DAY.isoformat()]):
            one_line_error(digest(settings, *args), 1, str(settings.db_path), "read-only")
    finally:
        settings.db_path.chmod(0o644)
    assert settings.db_path.read_bytes() == before
    assert list((settings.paths.outbox / DAY.isoformat()).glob("*.eml")) == []  # nobody got it
    listed = digest(settings, "subscribers", "list")
    assert listed.stdout == "a@example.org\tall\t\tactive\n"


@pytest.mark.slow
def test_a_read_only_data_folder(settings: Settings) -> None:
    assert digest(settings, "subscribers", "add", "a@example.org").returncode == 0
    folder = settings.db_path.parent
    for f in folder.glob("digest.db-*"):  # a clean shutdown leaves no WAL files
        f.unlink()
    folder.chmod(0o555)
    try:
        done = digest(settings, "subscribers", "add", "b@example.org")
    finally:
        folder.chmod(0o755)
    one_line_error(done, 1, str(settings.db_path))


@pytest.mark.slow
def test_a_corrupt_database(settings: Settings) -> None:
    assert digest(settings, "subscribers", "add", "a@example.org").returncode == 0
    for f in settings.db_path.parent.glob("digest.db-*"):
        f.unlink()
    settings.db_path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    for args in (["subscribers", "list"], ["subscribers", "add", "b@example.org"]):
        one_line_error(digest(settings, *args), 1, str(settings.db_path), "restore it")


def test_a_full_disk_is_one_store_error(tmp_path: Path) -> None:
    """SQLITE_FULL, as a full disk gives it (here: the database may not grow)."""
    path = tmp_path / "data" / "digest.db"
    conn = store.connect(path)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 1}")
    with pytest.raises(StoreError) as info, store.transaction(conn):
        conn.executemany(
            "INSERT INTO rate_events (key, at) VALUES (?, ?)",
            [("x" * 500, f"2024-12-05T09:00:00.{i:06d}+00:00") for i in range(1000)],
        )
    assert str(info.value).startswith(f"{path}: the disk is full")
    # rolled back whole
    assert store.count_events(conn, "x" * 500, datetime(2024, 12, 5, tzinfo=UTC)) == 0
    conn.close()
