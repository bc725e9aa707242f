"""The studio's running state: logins and sessions, CSRF tokens, the preview cache, the
conflicts kept for their pages; one store connection per request."""

from __future__ import annotations

import hmac
import secrets
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import date

from flask import request

from pipeline.core.config import Settings
from pipeline.core.runtime import Runtime
from pipeline.interfaces.studio.candidates import Explained
from pipeline.interfaces.studio.model import Conflict
from pipeline.interfaces.studio.preview import Previewer
from pipeline.services import run

# --- sessions ---------------------------------------------------------------------------------


@dataclass
class Session:
    """One logged-in browser: its CSRF token and messages waiting for the next page."""

    csrf: str
    # (level, text, where): `where` is the id of what was clicked ("" = the top of the page)
    messages: list[tuple[str, str, str]] = field(default_factory=list)


class Studio:
    """The studio's state: settings, the day, logins, the preview cache, kept conflicts (the
    undo history is in the store)."""

    def __init__(
        self, settings: Settings, day: date, rt: Runtime, *, token: str | None = None,
        password: str | None = None, to: str | None = None,
        allowed_hosts: Collection[str] | None = None,
    ) -> None:
        self.settings = settings
        self.day = day
        self.rt = rt
        self.token: str | None = token or secrets.token_urlsafe(32)
        self.password = password
        self.to = to or settings.arxiv.contact
        self.allowed_hosts = allowed_hosts
        self.cookie = "digest_studio_" + secrets.token_hex(4)  # two studios, two cookies
        self.sessions: dict[str, Session] = {}
        self.previewer = Previewer(settings)
        self.conflicts: OrderedDict[str, Conflict] = OrderedDict()
        # Why each candidate matched, highlighted: the same for the studio's whole life.
        self.explained: dict[tuple[str, int], Explained] = {}
        self.lock = threading.Lock()

    def use_token(self, given: str) -> bool:
        """True (once) for the login token."""
        with self.lock:
            if self.token is None or not hmac.compare_digest(given.encode(),
                                                             self.token.encode()):
                return False
            self.token = None
            return True

    def new_session(self) -> str:
        """A new session id (the cookie's value)."""
        sid = secrets.token_urlsafe(32)
        with self.lock:
            self.sessions[sid] = Session(secrets.token_urlsafe(32))
        return sid

    def session(self) -> Session | None:
        """The request's session, if its cookie names one."""
        sid = request.cookies.get(self.cookie, "")
        with self.lock:
            for known, sess in self.sessions.items():
                if hmac.compare_digest(known.encode(), sid.encode()):
                    return sess
        return None

    @contextmanager
    def db(self) -> Iterator[sqlite3.Connection]:
        """One connection per request (waitress serves from threads)."""
        with closing(run.open_store(self.settings)) as conn:
            yield conn

    def capture(self) -> tuple[Runtime, list[str]]:
        """A runtime whose messages are kept for the page (and echoed as usual)."""
        said: list[str] = []

        def echo(message: str) -> None:
            said.append(message)
            self.rt.echo(message)

        return replace(self.rt, echo=echo, progress=False), said
