"""`digest studio`: the curator's day in a browser — triage, annotate, preview, approve, send.

A small Flask app on waitress (as `digest serve`), for one day's issue. The draft file
`drafts/D.txt` stays the one source of truth: every view reads it afresh through
`pipeline.core.digest_format`, every change is written back through `write_digest`,
atomically. Previews merge the draft against the store only (no network).

Modules: `model` (the draft, its pure edits), `candidates` (ranking, filters, paging),
`preview`, `steps` (the only calls into the services), `state` (sessions), `web` (what views
share), `views`/`edits`/`finish` (the routes), `app` (the factory, auth, the server).
"""

from pipeline.interfaces.guard import LOOPBACK_NAMES, is_loopback
from pipeline.interfaces.studio.app import (
    PASSWORD_ENV,
    create_app,
    make_studio_server,
    serve_studio,
)
from pipeline.interfaces.studio.model import (
    DraftConflict,
    Loaded,
    _comparable,
    draft_text,
    edit_entry,
    entry_changes,
    entry_key,
    insert_entry,
    load_draft,
    move_entry,
    remove_entry,
    save_draft,
    sha256,
)
from pipeline.interfaces.studio.preview import Previewer

__all__ = [
    "LOOPBACK_NAMES", "PASSWORD_ENV", "DraftConflict", "Loaded", "Previewer", "_comparable",
    "create_app", "draft_text", "edit_entry", "entry_changes", "entry_key", "insert_entry",
    "is_loopback", "load_draft", "make_studio_server", "move_entry", "remove_entry",
    "save_draft", "serve_studio", "sha256",
]
