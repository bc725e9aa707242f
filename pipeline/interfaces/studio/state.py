"""The studio's running state: logins and sessions, CSRF tokens, the preview cache, the
conflicts kept for their pages; one store connection per request."""

from __future__ import annotations

import hmac
import os
import secrets
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from flask import request

from pipeline import services
from pipeline.core.config import Settings
from pipeline.core.runtime import Runtime
from pipeline.curate import notes
from pipeline.curate.ranking import Model
from pipeline.interfaces.studio.candidates import Explained
from pipeline.interfaces.studio.model import Conflict
from pipeline.interfaces.studio.preview import Previewer
from pipeline.services import ranking

# --- sessions ---------------------------------------------------------------------------------


@dataclass
class Session:
    """One logged-in browser: its CSRF token and messages waiting for the next page."""

    csrf: str
    # (level, text, where): `where` is the id of what was clicked ("" = the top of the page)
    messages: list[tuple[str, str, str]] = field(default_factory=list)


def _files_signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Every file under `folder` with its mtime and size: changes when any file does."""
    found = []
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except OSError:  # removed meanwhile: the next view sees it gone
                continue
            found.append((path, st.st_mtime_ns, st.st_size))
    return tuple(sorted(found))


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
        self._shelf: tuple[tuple[tuple[str, int, int], ...], notes.Notes] | None = None
        self._model: tuple[tuple[int, int] | None, Model | None] | None = None
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

    def shelf(self) -> notes.Notes:
        """The notes, read again only when a note file was added, removed or saved (a
        curator's archive holds thousands; every page of the day shows them)."""
        folder = self.settings.paths.notes
        signature = _files_signature(folder)
        with self.lock:
            if self._shelf is not None and self._shelf[0] == signature:
                return self._shelf[1]
        found = notes.read_notes(folder)
        with self.lock:
            self._shelf = (signature, found)
        return found

    def model(self) -> Model | None:
        """The learned ranking model, read again only when its file changed (None: the tag
        rules order the candidates; an unreadable file is reported by `digest collect`)."""
        path = ranking.model_path(self.settings)
        try:
            stat = path.stat()
            signature: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            signature = None
        with self.lock:
            if self._model is not None and self._model[0] == signature:
                return self._model[1]
        model = ranking.current_model(self.settings)[0] if signature is not None else None
        with self.lock:
            self._model = (signature, model)
        return model

    @contextmanager
    def db(self) -> Iterator[sqlite3.Connection]:
        """One connection per request (waitress serves from threads)."""
        with closing(services.open_store(self.settings, self.rt)) as conn:
            yield conn
