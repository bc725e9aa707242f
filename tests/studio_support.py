"""A real newsletter directory for the studio tests: the sample day 2024-12-05 collected from
the recorded feed (served on loopback, as `make demo` does) and drafted from the real notes,
with approval required (tests/conftest.py's `prepared`, `day` and `running` are these); and
a studio on waitress in a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import requests
from flask import Flask
from waitress.server import create_server

from pipeline import services
from pipeline.core.config import Settings
from pipeline.core.runtime import Runtime
from pipeline.interfaces import demo
from pipeline.interfaces.studio import LOOPBACK_NAMES, create_app
from tests.support import edit_newsletter

DAY = demo.DEMO_DAY
TOKEN = "test-login-token-0123456789abcdef"


def runtime(messages: list[str] | None = None) -> Runtime:
    """A runtime on the evening of the sample day that records what it says."""
    sink = messages if messages is not None else []
    return Runtime(now=lambda: datetime(2024, 12, 5, 12, 0, tzinfo=UTC), sleep=lambda _s: None,
                   echo=sink.append)


def collected_day(target: Path, noted: int = 8) -> Settings:
    """`target` set up from the demo bundle with approval required, collected from the
    recorded feed, drafted from the first `noted` notes (the rest stay for the candidates)."""
    feed = (demo.BUNDLE / "feed" / f"{DAY}.xml").read_bytes()
    server = demo.FeedServer(feed)
    with server.running():
        settings = edit_newsletter(demo.prepare(target, server.url), approval={"required": True})
        notes = sorted((target / "notes").rglob("*.md"))
        for extra in notes[noted:]:  # written after the draft: shown beside their candidate
            extra.rename(extra.with_suffix(".later"))
        rt = runtime()
        services.collect(settings, DAY, rt)
        services.draft(settings, DAY, rt)
        for extra in notes[noted:]:
            extra.with_suffix(".later").rename(extra)
    return settings


@dataclass
class Running:
    """A studio served by waitress on 127.0.0.1 in a thread."""

    app: Flask
    url: str
    server: Any

    @property
    def login_url(self) -> str:
        """The URL `digest studio` prints, with the one-time token."""
        return f"{self.url}/login?token={TOKEN}"


REAL_DAY = date(2024, 11, 28)  # the real feed fixture's announcement (1,504 items)
# With the collect tests' tags, a curator's day: about as many candidates as issue #20's.
MORE_TAGS = """
[tags.diffusion]
keywords = ["diffusion model", "diffusion models"]

[tags.graphs]
keywords = ["graph neural network", "graph neural networks", "GNN"]
"""


def real_sized_day(target: Path) -> Settings:
    """A newsletter in `target` that collected the real feed of 2024-11-28 (1,504 items, a
    few hundred candidates for its tags) from the recorded feed on loopback, and drafted it."""
    from tests.arxiv_support import REAL_FEED, RSS_PATH, TAGS_TOML, runtime_for, settings_for
    from tests.support import FakeClock, Reply, recording_server

    with recording_server() as server:
        server.route(RSS_PATH, Reply(REAL_FEED.read_bytes()))
        settings = settings_for(target, server.url, tags=TAGS_TOML + MORE_TAGS,
                                extra="[approval]\nrequired = true\n")
        settings.paths.notes.mkdir(parents=True, exist_ok=True)
        rt = runtime_for(FakeClock())
        services.collect(settings, REAL_DAY, rt)
        services.draft(settings, REAL_DAY, rt)
    return settings


def login(s: Running) -> requests.Session:
    """A browser session logged in with the studio's one-time token."""
    sess = requests.Session()
    assert sess.get(s.login_url).status_code == 200
    return sess


@contextmanager
def serving(settings: Settings, messages: list[str] | None = None,
            day: date = DAY) -> Iterator[Running]:
    """The studio for the sample day (or `day`) on a free loopback port, for the block."""
    with demo.demo_secret():
        app = create_app(settings, day, runtime(messages), token=TOKEN,
                         to="curator@example.org", allowed_hosts=LOOPBACK_NAMES)
        server = create_server(app, host="127.0.0.1", port=0, threads=4)
        with running(server):
            yield Running(app, f"http://127.0.0.1:{server.effective_port}", server)


@contextmanager
def running(server: Any) -> Iterator[None]:
    """Run a waitress server in a thread for the block, then stop it."""
    stopping = threading.Event()

    def loop() -> None:
        try:
            server.run()
        except OSError:  # select() on the sockets closed below (as webtest's server)
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopping.set()
        server.task_dispatcher.shutdown(timeout=5)  # answer what is in flight first
        server.close()
        thread.join(timeout=5)
