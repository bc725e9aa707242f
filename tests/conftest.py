"""Shared pytest fixtures: the newsletter factory, the environment a newsletter reads
(DIGEST_SECRET, the SMTP password, the trusted test certificate), a real SMTP server on
loopback, a recording HTTP server and an injected clock; and the `slow` marking."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pipeline.core.config import Settings
from tests.deliver_support import PASSWORD, SECRET, Sink, make_cert, smtp_server
from tests.support import FakeClock, RecordingServer, recording_server, write_newsletter

if TYPE_CHECKING:
    from tests.studio_support import Running

Newsletter = Callable[..., Settings]


# Slow tests in modules whose owners are rewriting them (notes, LaTeX): marked from here
# until the mark can move into the module, next to the test.
SLOW_ELSEWHERE = frozenset({
    "tests/test_notes.py::test_any_text_gives_an_entry_or_a_one_line_format_error",
    "tests/test_text.py::test_islands_read_from_the_tables_read_as_pylatexenc_reads_them",
    "tests/test_text.py::test_never_a_mathematical_alphanumeric_letter",
    "tests/test_text.py::test_no_plain_word_is_lost",
})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every browser test is slow too (Chromium starts in seconds), and so are the tests of
    SLOW_ELSEWHERE: `make test-fast` skips them."""
    for item in items:
        if item.get_closest_marker("browser") is not None \
                or item.nodeid.split("[")[0] in SLOW_ELSEWHERE:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def newsletter(tmp_path: Path) -> Newsletter:
    """`newsletter(text="", root=tmp_path, **tables)`: Settings of a newsletter whose
    config/digest.toml holds `text` and then the given tables, e.g.
    `newsletter(approval={"required": False}, draft={"max_candidates": 5})`."""

    def make(text: str = "", /, root: Path | None = None, **tables: dict[str, Any]) -> Settings:
        return write_newsletter(root or tmp_path, text, **tables)

    return make


@pytest.fixture(scope="session")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1/localhost, made once per run."""
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def digest_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """DIGEST_SECRET set (signed links); returns it."""
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    return SECRET


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, cert: tuple[Path, Path], digest_secret: str) -> None:
    """What a sending newsletter reads from the environment: DIGEST_SECRET, the SMTP
    password, and the test certificate as the trusted CA."""
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))  # trust the test server's certificate


@pytest.fixture
def server(cert: tuple[Path, Path]) -> Iterator[tuple[Sink, int]]:
    """A real SMTP server (aiosmtpd, STARTTLS + AUTH) on a free loopback port: (sink, port)."""
    with smtp_server(*cert) as s:
        yield s


@pytest.fixture
def http_server() -> Iterator[RecordingServer]:
    """A local HTTP server serving canned replies and counting requests."""
    with recording_server() as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    """An injected clock whose sleep returns at once."""
    return FakeClock()


# --- the studio's sample day (tests/studio_support.py; imported when a test asks) --------------


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One collected and drafted newsletter directory, copied for each test."""
    from tests.studio_support import collected_day

    root = tmp_path_factory.mktemp("studio") / "news"
    collected_day(root)
    return root


@pytest.fixture
def day(prepared: Path, tmp_path: Path) -> Settings:
    import shutil

    from pipeline.core.config import load_config

    target = tmp_path / "news"
    shutil.copytree(prepared, target)
    return load_config(target / "config" / "digest.toml")


@pytest.fixture
def running(day: Settings) -> Iterator[Running]:
    from tests.studio_support import serving

    with serving(day) as s:
        yield s
