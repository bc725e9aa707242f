"""`make demo`: the daily job, offline, for the sample announcement of 2024-12-05.

Sets up a newsletter directory (default `demo-out/`) from the bundled `demo/` folder (config,
the reference issue's notes, three subscribers), serves the constructed sample feed from a
loopback HTTP server in this process, imports the subscribers and runs
`digest run --date 2024-12-05`: collect, draft, build (previews), and send (auto mode: it
publishes site/ first, then writes the emails to outbox/).
Run it again: every step is found done and nobody gets a second copy.

Usage: python -m pipeline.interfaces.demo [TARGET_DIR]
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pipeline import services, store
from pipeline.core import layout
from pipeline.core.bundle import bundled
from pipeline.core.config import Settings, load_config
from pipeline.core.errors import DigestError, InputError
from pipeline.core.files import write_if_changed
from pipeline.interfaces import cli

DEMO_DAY = date(2024, 12, 5)
BUNDLE = bundled("demo_data")
DEMO_SECRET = "demo-only-secret-never-use-in-production"


class FeedServer:
    """A loopback HTTP server standing in for rss.arxiv.org: every /rss/… path gets the
    sample feed; anything else (the API) gets 404. Counts requests per path prefix."""

    def __init__(self, feed: bytes) -> None:
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                ok = self.path.startswith("/rss/")
                body = feed if ok else b"not found"
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8"
                                 if ok else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(  # a short poll: shutdown() returns without a wait
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def count(self, prefix: str) -> int:
        """Requests whose path starts with `prefix`."""
        return sum(1 for p in self.requests if p.startswith(prefix))

    @contextmanager
    def running(self) -> Iterator[FeedServer]:
        """Serve in a thread for the duration of the block."""
        self._thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()


def prepare(target: Path, server_url: str, bundle: Path = BUNDLE) -> Path:
    """Create or refresh the newsletter directory from the bundle; returns its config path.
    The store, drafts, site and outbox of an earlier run are kept."""
    if not (bundle / "config" / "digest.toml").is_file():
        raise InputError("the demo bundle is missing (run from a clone of the repository)",
                         path=bundle)
    port = server_url.rsplit(":", 1)[1]
    text = (bundle / "config" / "digest.toml").read_text("utf-8").replace("DEMO_PORT", port)
    config = target / "config" / "digest.toml"
    write_if_changed(config, text)
    shutil.copytree(bundle / "notes", target / "notes", dirs_exist_ok=True)
    shutil.copyfile(bundle / "subscribers.csv", target / "subscribers.csv")
    return config


@contextmanager
def demo_secret() -> Iterator[None]:
    """DIGEST_SECRET set to the demo's value for the block (restored afterwards)."""
    before = os.environ.get("DIGEST_SECRET")
    os.environ["DIGEST_SECRET"] = DEMO_SECRET
    try:
        yield
    finally:
        if before is None:
            del os.environ["DIGEST_SECRET"]
        else:
            os.environ["DIGEST_SECRET"] = before


def digest(config: Path, *args: str) -> None:
    """Run one `digest` command in this process (errors propagate as DigestError)."""
    cli.cli.main(args=["--config", str(config), *args], prog_name="digest", standalone_mode=False)


@dataclass(frozen=True)
class Summary:
    """What a demo run left behind, for the closing message."""

    settings: Settings
    feed_requests: int
    deliveries: dict[str, int]  # status -> count
    emails: tuple[Path, ...]

    def lines(self) -> list[str]:
        """The summary shown at the end: what to open."""
        site, outbox = self.settings.paths.site, layout.outbox_day(self.settings, DEMO_DAY)
        sent = ", ".join(f"{n} {status}" for status, n in sorted(self.deliveries.items()))
        return [
            "",
            f"demo done for the announcement of {DEMO_DAY} "
            f"(feed requests this time: {self.feed_requests}; deliveries: {sent or 'none'}, "
            "to the outbox: files, no reader was mailed)",
            f"  web archive   {site / 'index.html'}",
            f"  the issue     {site / 'issues' / f'{DEMO_DAY}.html'}",
            f"  feeds         {site / 'feed.xml'}, {site / 'tags'}/",
            f"  the draft     {layout.draft_path(self.settings, DEMO_DAY)}",
            f"  previews      {outbox}/preview.{{{','.join(self.settings.variants)}}}.html",
            *[f"  email         {path}" for path in self.emails],
            "run it again: every step is found done and nobody gets a second copy",
        ]


def run_demo(target: Path, bundle: Path = BUNDLE) -> Summary:
    """Set up `target` and run the daily job for the sample day, offline."""
    feed = (bundle / "feed" / f"{DEMO_DAY}.xml").read_bytes()
    server = FeedServer(feed)
    with server.running(), demo_secret():
        config = prepare(target, server.url, bundle)
        digest(config, "subscribers", "import", str(target / "subscribers.csv"))
        digest(config, "run", "--date", DEMO_DAY.isoformat())
    settings = load_config(config)
    with closing(services.open_store(settings)) as conn:
        deliveries = store.delivery_counts(conn, DEMO_DAY)
    outbox = layout.outbox_day(settings, DEMO_DAY)
    emails = tuple(sorted(p for p in outbox.glob("*.eml") if not p.name.startswith("preview.")))
    return Summary(settings, server.count("/rss/"), deliveries, emails)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m pipeline.interfaces.demo [TARGET_DIR]`; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else Path("demo-out")
    try:
        summary = run_demo(target.resolve())
    except DigestError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print("\n".join(summary.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
