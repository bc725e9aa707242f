"""What every studio view shares: pages with their session's messages, JSON replies, the
lint of a draft by entry, the day page, the conflict page."""

from __future__ import annotations

import difflib
import secrets
import sqlite3
from datetime import date
from typing import Any

from flask import Response, jsonify, render_template, request
from werkzeug.wrappers.response import Response as AnyResponse

from pipeline import store
from pipeline.core.config import Settings
from pipeline.curate import lint
from pipeline.interfaces.studio import steps
from pipeline.interfaces.studio.model import (
    Conflict,
    Loaded,
    entry_changes,
    entry_fingerprint,
    load_draft,
    note_adds,
)
from pipeline.interfaces.studio.state import Studio

KEPT_CONFLICTS = 20  # refused saves whose page can still be opened
UNDO_SHOWN = 5  # removed entries the undo bar offers to bring back (the store keeps more)


class Web:
    """The helpers the views of one studio share (its state, settings and day)."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.settings: Settings = studio.settings
        self.day: date = studio.day
        self.variants = studio.settings.variants

    def page(self, template: str, code: int = 200, **ctx: Any) -> AnyResponse:
        """A page of the studio, with the messages waiting in its session."""
        studio = self.studio
        sess = studio.session()
        messages = []
        if sess is not None:
            with studio.lock:
                messages, sess.messages = sess.messages, []
        html = render_template(
            template, day=self.day, title=self.settings.newsletter.title,
            csrf=sess.csrf if sess else "", messages=messages, variants=self.variants, **ctx,
        )
        return Response(html, code, content_type="text/html; charset=utf-8")

    def forbidden(self, reason: str) -> AnyResponse:
        """403 with the reason."""
        return self.page("message.html", 403, heading="Forbidden", text=reason, show_nav=False)

    def flash(self, level: str, text: str, where: str = "") -> None:
        """A message for the session's next page, shown beside `where` (an element id of the
        day page: "actions", "entries", "e3"), else at the top."""
        sess = self.studio.session()
        if sess is not None:
            with self.studio.lock:
                sess.messages.append((level, text, where))

    @staticmethod
    def wants_json() -> bool:
        """Whether the request came from studio.js (fetch) rather than a plain form."""
        return request.headers.get("X-Requested-With") == "studio"

    @staticmethod
    def json_reply(code: int, **data: Any) -> AnyResponse:
        """A JSON answer with a status code."""
        resp = jsonify(**data)
        resp.status_code = code
        return resp

    def lint_by_entry(self, conn: sqlite3.Connection,
                      loaded: Loaded) -> dict[int, list[lint.Finding]]:
        """`digest check`'s findings on the draft, by entry index (-1: the whole draft)."""
        d = loaded.digest
        if d is None:
            return {}
        ids = [e.arxiv_id for e in d.entries if e.arxiv_id]
        findings = lint.lint_entries(  # as `digest check` lints a draft
            d.entries, languages=self.settings.newsletter.languages,
            known_tags=[t.name for t in self.settings.tags],
            stored_ids=set(store.get_papers(conn, ids)), language_level="error",
        )
        index = {e.line: i for i, e in enumerate(d.entries)}
        out: dict[int, list[lint.Finding]] = {}
        for f in findings:
            out.setdefault(index.get(f.line, -1), []).append(f)
        return out

    @staticmethod
    def lint_json(found: dict[int, list[lint.Finding]]) -> dict[str, list[dict[str, str]]]:
        """Lint findings as JSON for studio.js."""
        return {str(i): [{"level": f.level, "message": f.message} for f in fs]
                for i, fs in found.items()}

    def entries_context(self, conn: sqlite3.Connection, loaded: Loaded) -> dict[str, Any]:
        """What the entries part of the day page shows (also sent alone to studio.js)."""
        assert loaded.digest is not None
        made = self.studio.previewer.preview(conn, self.day, loaded)
        by_id = self.studio.shelf().by_id()
        mergeable = {
            i for i, e in enumerate(loaded.entries)
            if e.arxiv_id is not None and e.arxiv_id in by_id
            and note_adds(e, by_id[e.arxiv_id].entry)
        }
        sent = store.sent_papers(conn, self.day)
        return {
            "loaded": loaded, "lint": self.lint_by_entry(conn, loaded),
            "unresolved": dict(zip(made.merged.issue.unresolved, made.merged.problems,
                                   strict=True)),
            "undo": store.removed_entries(conn, self.day, UNDO_SHOWN), "mergeable": mergeable,
            "sent": {i: sent[e.arxiv_id] for i, e in enumerate(loaded.entries)
                     if e.arxiv_id in sent},
            "fingerprint": entry_fingerprint, "overrides": {}, "refused": {},
        }

    def entries_html(self, conn: sqlite3.Connection, loaded: Loaded) -> str:
        """The entries part of the day page alone, for studio.js to put in place."""
        sess = self.studio.session()
        return render_template("_entries.html", day=self.day, csrf=sess.csrf if sess else "",
                               messages=[], **self.entries_context(conn, loaded))

    def day_page(self, code: int = 200, variant: str | None = None, part: str = "html",
                 overrides: dict[int, tuple[str, str, str]] | None = None,
                 refused: dict[int, str] | None = None) -> AnyResponse:
        """The day view: entries, status and actions, the preview; `overrides` puts text
        that was refused back into its entry's boxes, beside the reason."""
        settings, day, studio = self.settings, self.day, self.studio
        loaded = load_draft(settings, day)
        status = steps.day_status(settings, day, studio.rt)
        if loaded.digest is None:
            return self.page("nodraft.html", code, loaded=loaded, status=status,
                             text=loaded.data.decode("utf-8", "replace"))
        with studio.db() as conn:
            ctx = self.entries_context(conn, loaded)
        ctx.update(overrides=overrides or {}, refused=refused or {})
        return self.page(
            "day.html", code, status=status, variant=variant or self.variants[-1], part=part,
            changes=entry_changes(steps.last_approved(settings, day), loaded.digest),
            to=studio.to, tag_options=[t.name for t in settings.tags], placed=True,
            **ctx,
        )

    def conflict_response(self, found: Conflict, status: int) -> AnyResponse:
        """The conflict page: the file (or the entry) on disk, the edit not saved, the diff."""
        theirs = found.entry if found.entry is not None else found.disk
        diff = "\n".join(difflib.unified_diff(
            theirs.splitlines(), found.mine.splitlines(), "on disk", "your edit",
            lineterm="", n=1))
        return self.page("conflict.html", status, disk=found.disk, mine=found.mine,
                         entry=found.entry, diff=diff)

    def conflict_reply(self, disk: bytes, mine: str, entry: str | None = None) -> AnyResponse:
        """409: the conflict page (or, for a fetch, where it is); nothing was written."""
        found = Conflict(disk.decode("utf-8", "replace"), mine, entry)
        cid = secrets.token_urlsafe(8)
        with self.studio.lock:
            self.studio.conflicts[cid] = found
            while len(self.studio.conflicts) > KEPT_CONFLICTS:
                self.studio.conflicts.popitem(last=False)
        if self.wants_json():
            return self.json_reply(409, conflict=f"/conflict/{cid}")
        return self.conflict_response(found, 409)
