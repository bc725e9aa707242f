"""Test support: a local HTTP server that serves recorded responses and counts requests."""

from __future__ import annotations

import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline.core.config import Settings, load_config

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Reply:
    """One canned HTTP answer. `reset=True` drops the connection without answering."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    content_type: str = "application/xml; charset=utf-8"
    trickle: float = 0.0  # > 0: send the body in 20 pieces, this many seconds apart


@dataclass
class Recorded:
    """A request the server saw."""

    method: str
    path: str
    query: str
    headers: dict[str, str]


class RecordingServer:
    """Routes by path (query ignored unless a route names it); each route is a queue of
    replies whose last one repeats. Every request is recorded."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._handle(self)

            def do_POST(self) -> None:
                server._handle(self)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(  # a short poll: shutdown() waits for one
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def route(self, path: str, *replies: Reply) -> None:
        """Serve these replies, in order, at `path` (`/rss/x` or `/api/query?id_list=1`)."""
        self.routes[path] = list(replies)

    def count(self, path_prefix: str = "") -> int:
        """How many requests started with this path."""
        return sum(1 for r in self.requests if r.path.startswith(path_prefix))

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        with self._lock:
            self.requests.append(
                Recorded(handler.command, parts.path, parts.query, dict(handler.headers))
            )
            key = f"{parts.path}?{parts.query}" if f"{parts.path}?{parts.query}" in self.routes \
                else parts.path
            queue = self.routes.get(key)
            reply = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else Reply(
                b"not found", 404, content_type="text/plain"
            )
        if reply.reset:
            handler.close_connection = True
            handler.connection.close()
            return
        handler.send_response(reply.status)
        handler.send_header("Content-Type", reply.content_type)
        handler.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if not reply.trickle:
            handler.wfile.write(reply.body)
            return
        size = -(-len(reply.body) // 20)
        try:
            for start in range(0, len(reply.body), size):
                handler.wfile.write(reply.body[start:start + size])
                handler.wfile.flush()
                time.sleep(reply.trickle)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up

    def start(self) -> RecordingServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def recording_server() -> Iterator[RecordingServer]:
    """A started RecordingServer on loopback, stopped afterwards."""
    server = RecordingServer().start()
    try:
        yield server
    finally:
        server.stop()


class FakeClock:
    """An injected clock: `sleep` advances time instantly and is recorded."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(seconds, 0.0)


def best_time(fn: Callable[[], object], repeats: int = 1) -> float:
    """The fastest of `repeats` runs of `fn`, in seconds (the least disturbed by other work);
    for `make bench` only, never for asserts."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


# --- the one way tests make a newsletter ---------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def toml_tables(tables: dict[str, dict[str, Any]], prefix: str = "") -> str:
    """`{"approval": {"required": False}, "tags": {"rl": {...}}}` as TOML tables."""
    out: list[str] = []
    for name, table in tables.items():
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        if scalars or not table:
            out.append(f"[{prefix}{name}]")
            out += [f"{key} = {_toml_value(value)}" for key, value in scalars.items()]
            out.append("")
        nested = {k: v for k, v in table.items() if isinstance(v, dict)}
        if nested:
            out.append(toml_tables(nested, f"{prefix}{name}."))
    return "\n".join(out)


def write_newsletter(root: Path, text: str = "", /, **tables: dict[str, Any]) -> Settings:
    """A newsletter in `root`: config/digest.toml holds `text` then `tables` (TOML tables by
    section name), read back by load_config as `digest --config` reads it. Every test that
    needs settings from a config makes them here."""
    return _write_config(root / "config" / "digest.toml", text, tables)


def edit_newsletter(config: Path, /, **changes: dict[str, Any]) -> Settings:
    """The newsletter of an existing config (the demo's, say) with `changes` written into its
    tables, as a curator edits it (`approval={"required": True}` sets that one key); read back
    by load_config. The file is rewritten from its tables: its comments go."""
    tables = tomllib.loads(config.read_text(encoding="utf-8"))
    for name, table in changes.items():
        tables[name] = {**tables.get(name, {}), **table}
    return _write_config(config, "", tables)


def _write_config(path: Path, text: str, tables: dict[str, dict[str, Any]]) -> Settings:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = text if not tables else text.rstrip("\n") + "\n\n" + toml_tables(tables)
    path.write_text(body, encoding="utf-8")
    return load_config(path)


def newsletter_config(root: Path, text: str = "", /, **tables: dict[str, Any]) -> Path:
    """write_newsletter for a test that hands `digest --config` a file: the config's path."""
    source = write_newsletter(root, text, **tables).source
    assert source is not None
    return source
