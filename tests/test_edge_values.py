"""Edge values (issue #13): ports, timeouts, hosts, secrets, and CSV cells a spreadsheet would
services. Each bad value is one line naming the key or flag, exit 2, no traceback."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import services, store
from pipeline.core.config import load_config
from pipeline.core.models import Subscriber
from pipeline.deliver.subscribers import export_csv, import_csv, neutralize, unneutralize
from tests.deliver_support import DAY, SECRET, add_subscribers, build_issue, newsletter, smtp_tables
from tests.support import newsletter_config

REPO = Path(__file__).resolve().parent.parent


def digest(config: Path, *args: str, secret: str | None = SECRET) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DIGEST_SECRET"}
    if secret is not None:
        env["DIGEST_SECRET"] = secret
    return subprocess.run([sys.executable, "-m", "pipeline", "--config", str(config), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


def one_line(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("digest: error: ")
    for word in words:
        assert word in done.stderr, done.stderr


def _with(tmp_path: Path, extra: str, transport: str = "outbox") -> Path:
    """A small config of a newsletter in `tmp_path` with `section.key = value` lines set."""
    # (a config must say something of its own newsletter: its sender here)
    # (a given newsletter.from replaces that sender)
    sections: dict[str, dict[str, str]] = {"newsletter": {"from": '"D <digest@example.org>"'},
                                           "delivery": {"transport": f'"{transport}"'}}
    for line in extra.strip().splitlines():
        key, value = line.split(" = ", 1)
        section, name = key.split(".")
        sections.setdefault(section, {})[name] = value
    path = tmp_path / "config" / "digest.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"[{k}]\n" + "".join(f"{n} = {v}\n" for n, v in values.items())
                            + "\n" for k, values in sections.items()), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("web.port = 70000", ["web.port", "expected a port from 1 to 65535, got 70000"]),
        ("smtp.port = 65536", ["smtp.port", "65535"]),
        ("web.port = 0", ["web.port", "expected at least 1"]),
        ("smtp.timeout = nan", ["smtp.timeout", "expected a finite number, got nan"]),
        ("smtp.timeout = inf", ["smtp.timeout", "finite"]),
        ("smtp.timeout = -1.0", ["smtp.timeout", "expected at least 0.001"]),
        ("smtp.timeout = 0", ["smtp.timeout", "expected at least 0.001"]),
        ("arxiv.timeout = -inf", ["arxiv.timeout", "finite"]),
        ("delivery.rate_per_second = nan", ["delivery.rate_per_second", "finite"]),
        ('web.trusted_proxy = "proxy.local"', ["web.trusted_proxy", "expected the proxy's IP"]),
    ],
)
@pytest.mark.slow
def test_bad_numbers_in_the_config(tmp_path: Path, setting: str, words: list[str]) -> None:
    one_line(digest(_with(tmp_path, setting), "subscribers", "list"), *words)


@pytest.mark.parametrize("port", ["-1", "70000", "x"])
def test_serve_port_flag_out_of_range(tmp_path: Path, port: str) -> None:
    config = newsletter_config(tmp_path, **smtp_tables(transport="outbox"))
    one_line(digest(config, "serve", "--port", port), "--port")


@pytest.mark.slow
def test_serve_with_a_host_that_does_not_resolve(tmp_path: Path) -> None:
    config = newsletter_config(tmp_path, **smtp_tables(transport="outbox"))
    one_line(digest(config, "serve", "--host", "no-such-host.invalid", "--port", "0"),
             "--host", "cannot resolve host 'no-such-host.invalid'")
    smtp = _with(tmp_path / "b", 'smtp.host = "mail.no-such-host.invalid"', transport="smtp")
    one_line(digest(smtp, "serve", "--port", "0"), "smtp.host", "cannot resolve host")


@pytest.mark.slow
def test_send_to_a_mail_server_that_does_not_resolve(tmp_path: Path) -> None:
    config = newsletter_config(tmp_path, **smtp_tables(smtp={"host": "mail.no-such-host.invalid"}))
    settings = load_config(config)
    build_issue(settings)
    add_subscribers(settings, 2)
    one_line(digest(config, "send", "--date", DAY.isoformat()), "smtp.host",
             "cannot resolve host 'mail.no-such-host.invalid'")
    conn = services.open_store(settings)
    try:
        assert store.delivery_counts(conn, DAY) == {}  # nothing claimed, nothing lost
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (" " * 16, "DIGEST_SECRET is not set"),
        ("  short-secret  \n", "DIGEST_SECRET is too short (12 characters)"),
        ("a b c d e f g h i j k l m n o", "DIGEST_SECRET is too short (15 characters)"),
    ],
)
def test_blank_or_padded_secrets_are_refused(tmp_path: Path, secret: str, message: str) -> None:
    config = newsletter_config(tmp_path, **smtp_tables(transport="outbox"))
    one_line(digest(config, "serve", "--port", "0", secret=secret), message)


def test_a_secret_with_a_trailing_newline_signs_like_the_bare_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = newsletter(tmp_path, transport="outbox")
    monkeypatch.setenv("DIGEST_SECRET", SECRET + "\n")
    assert settings.secret == SECRET.encode()


# --- 10. CSV formula injection ----------------------------------------------------------------

HOSTILE = ["=cmd|'/C'!A0@example.org", "+1@example.org", "-2@example.org",
           "@@example.org", "'=x@example.org", "'plain@example.org", "plain@example.org"]


def test_export_neutralizes_formulas_and_import_takes_them_back(tmp_path: Path) -> None:
    settings = newsletter(tmp_path, transport="outbox")
    conn = services.open_store(settings)
    try:
        stored = []
        for addr in HOSTILE:
            if addr == "@@example.org":
                continue  # not an address: shown by `neutralize` below
            stored.append(store.save_subscriber(conn, Subscriber(addr, "all", (), "active"))[1])
        text = export_csv(conn)
    finally:
        conn.close()
    cells = [row[0] for row in csv.reader(io.StringIO(text))][1:]
    assert cells == ["'" + s.email if s.email[0] in "=+-'" else s.email for s in stored]
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)
    # the exported file imports back to the same addresses, into a new newsletter
    path = tmp_path / "export.csv"
    path.write_text(text, encoding="utf-8")
    other = newsletter(tmp_path / "other", transport="outbox")
    conn = services.open_store(other)
    try:
        report = import_csv(conn, other.variants, path)
        back = [s.email for s in store.iter_subscribers(conn)]
    finally:
        conn.close()
    assert report.errors == [] and back == [s.email for s in stored]


@pytest.mark.parametrize("cell", [*HOSTILE, "\tx", "", "'"])
def test_neutralize_round_trips(cell: str) -> None:
    assert unneutralize(neutralize(cell)) == cell
    assert not neutralize(cell).startswith(("=", "+", "-", "@", "\t"))
