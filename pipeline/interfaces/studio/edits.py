"""The studio's changes to the draft: save an entry (autosave too), move, remove (one or
many), undo (a history in the store), merge a note written later. An entry is named by its
key and the fingerprint of its text when the page was loaded: a change applies while that
entry on disk still says the same, whatever else a text editor changed in the file (a form
without a key falls back to the whole file's sha256). Each answers JSON to studio.js (with
the entries part of the page, to put in place) or a redirect to a plain form."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from flask import Flask, abort, jsonify, redirect, request
from werkzeug.wrappers.response import Response as AnyResponse

from pipeline import store
from pipeline.core import digest_format as digest
from pipeline.core.errors import DigestError, InputError
from pipeline.core.models import Digest, Entry
from pipeline.interfaces.studio import steps
from pipeline.interfaces.studio.model import (
    DraftConflict,
    Loaded,
    disk_entry,
    edit_entry,
    entry_changes,
    entry_fields,
    entry_fingerprint,
    entry_key,
    find_entry,
    insert_entry,
    load_draft,
    merge_note,
    move_entry,
    move_to,
    remove_entry,
    save_draft,
    sha256,
)
from pipeline.interfaces.studio.web import Web
from pipeline.store.triage import Removed

Change = Callable[[Loaded], tuple[Digest, str, str]]  # -> new draft, message, where to show it


class EntryConflict(DraftConflict):
    """The entry a form names changed (or went) on disk since the page was loaded."""

    def __init__(self, loaded: Loaded, key: str) -> None:
        super().__init__(loaded.path, loaded.data, "")
        self.entry_key = key
        self.message = ("this entry was changed on disk since this page was loaded; nothing "
                        "was saved")


def register(app: Flask, web: Web) -> None:
    """Add the routes that change the draft to `app`."""
    settings, day, studio = web.settings, web.day, web.studio

    def current(whole_file: bool = True) -> Loaded:
        """The draft now; a form naming an entry by its index (no key) must carry the
        file's sha256 (`whole_file`: the change is about entries at places)."""
        loaded = load_draft(settings, day)
        if loaded.digest is None:
            raise InputError(f"the draft cannot be edited here: {loaded.error}")
        per_entry = request.form.get("key") or request.form.getlist("keys")
        if whole_file and not per_entry and loaded.sha != request.form.get("sha", ""):
            raise DraftConflict(loaded.path, loaded.data, "")
        return loaded

    def target(loaded: Loaded) -> int:
        """The index of the entry the form names: by key and fingerprint, else by index."""
        key = request.form.get("key", "")
        if key:
            assert loaded.digest is not None
            i = find_entry(loaded.digest, key)
            fp = request.form.get("fp", "")
            if i is None or (fp and entry_fingerprint(loaded.entries[i]) != fp):
                raise EntryConflict(loaded, key)
            return i
        try:
            i = int(request.form.get("i", ""))
        except ValueError:
            abort(400)
        if not 0 <= i < len(loaded.entries):
            abort(400)
        return i

    def reply(sha: str, said: str, where: str, anchor: str) -> AnyResponse:
        if web.wants_json():
            reloaded = load_draft(settings, day)
            with studio.db() as conn:
                html = web.entries_html(conn, reloaded) if reloaded.digest is not None else ""
            return jsonify(sha=sha, message=said, where=where, html=html)
        web.flash("ok", said, where)
        return redirect("/" + anchor, 303)

    def refused(message: str, where: str, anchor: str) -> AnyResponse:
        if web.wants_json():
            return web.json_reply(422, error=message, where=where)
        web.flash("error", message, where)
        return redirect("/" + anchor, 303)

    def apply(change: Change, after: Callable[[], None] = lambda: None,
              whole_file: bool = True) -> AnyResponse:
        """Run one change on the draft as it is now, write it (atomically, only if the file
        did not change meanwhile); `after` runs once it is on disk."""
        mine = ""
        try:
            loaded = current(whole_file)
            new, said, where = change(loaded)
            mine = digest.write_digest(new)
            assert loaded.sha is not None
            sha = save_draft(settings, day, loaded.sha, new)
            after()
        except EntryConflict as exc:
            return web.conflict_reply(exc.disk, exc.mine or mine or "(your change: "
                                      f"{request.path} of this entry)", disk_entry(exc.disk, exc.entry_key))
        except DraftConflict as exc:
            return web.conflict_reply(exc.disk, exc.mine or mine or "(your change: "
                                      f"{request.path} on the version you loaded)")
        except DigestError as exc:
            return refused(exc.message, "entries", "#entries")
        anchor = f"#{where}" if where.startswith("e") and where[1:].isdigit() else "#entries"
        return reply(sha, said, where, anchor)

    def already_there(ko: str, en: str, tags_text: str) -> int | None:
        """The entry's index when the draft on disk already says exactly this edit."""
        loaded = load_draft(settings, day)
        key = request.form.get("key", "")
        i = find_entry(loaded.digest, key) if loaded.digest is not None and key else None
        if i is None or loaded.digest is None:
            return None
        try:
            same = edit_entry(loaded.digest, i, ko, en, tags_text) == loaded.digest
        except DigestError:
            return None
        return i if same else None

    @app.post("/entry/save")
    def save_entry() -> AnyResponse:
        ko = request.form.get("ko", "")
        en = request.form.get("en", "")
        tags_text = request.form.get("tags", "")
        i = -1
        try:
            loaded = current()
            i = target(loaded)
            assert loaded.digest is not None and loaded.sha is not None
            new = edit_entry(loaded.digest, i, ko, en, tags_text)
            sha = save_draft(settings, day, loaded.sha, new)
        except DraftConflict as exc:
            landed = already_there(ko, en, tags_text)
            if landed is None:
                return web.conflict_reply(exc.disk, entry_fields(ko, en, tags_text),
                                          disk_entry(exc.disk, request.form.get("key", "")))
            i, sha = landed, sha256(exc.disk)  # the same edit landed already (sent as the page was left)
        except DigestError as exc:
            if web.wants_json():
                return web.json_reply(422, error=f"not saved: {exc.message}")
            # JavaScript off: the page again, the refused text still in its boxes.
            return web.day_page(422, overrides={i: (ko, en, tags_text)},
                                refused={i: f"not saved: {exc.message}"})
        reloaded = load_draft(settings, day)
        if web.wants_json() and reloaded.digest is not None:
            entry = reloaded.entries[i]
            with studio.db() as conn:
                found_lint = web.lint_by_entry(conn, reloaded)
            status = steps.day_status(settings, day, studio.rt)
            return jsonify(sha=sha, message="saved", lint=web.lint_json(found_lint),
                           fp=entry_fingerprint(entry), key=entry_key(entry),
                           tags=" ".join("#" + t for t in entry.tags), status=status.lines,
                           next_step=status.next_step,
                           changes=entry_changes(steps.last_approved(settings, day),
                                                 reloaded.digest))
        web.flash("ok", f"saved: {reloaded.entries[i].title}", f"e{i}")
        return redirect(f"/#e{i}", 303)

    @app.post("/entry/move")
    def move() -> AnyResponse:
        def change(loaded: Loaded) -> tuple[Digest, str, str]:
            assert loaded.digest is not None
            i = target(loaded)
            to = request.form.get("to", "")
            if to:
                try:
                    place = int(to) - 1
                except ValueError:
                    raise InputError(f"'{to}' is no position: give a number from 1 to "
                                     f"{len(loaded.entries)}") from None
                new = move_to(loaded.digest, i, place)
            else:
                new = move_entry(loaded.digest, i, -1 if request.form.get("dir") == "up" else 1)
            at = find_entry(new, entry_key(loaded.entries[i]))
            return new, f"moved to {(at or 0) + 1}: {loaded.entries[i].title}", f"e{at}"
        return apply(change)

    @app.post("/entry/remove")
    def remove() -> AnyResponse:
        gone_log: list[tuple[int, Entry]] = []

        def change(loaded: Loaded) -> tuple[Digest, str, str]:
            assert loaded.digest is not None
            keys = request.form.getlist("keys")
            if keys:
                indexes = sorted({i for k in keys
                                  if (i := find_entry(loaded.digest, k)) is not None})
                if not indexes:
                    raise InputError("nothing selected is in the draft")
            else:
                indexes = [target(loaded)]
            new = loaded.digest
            for i in reversed(indexes):
                new, gone = remove_entry(new, i)
                gone_log.append((i, gone))
            titles = [loaded.entries[i].title for i in indexes]
            said = (f"removed {titles[0]!r}" if len(titles) == 1
                    else f"removed {len(titles)} entries") + " (undo brings it back)"
            return new, said, "entries"

        def after() -> None:
            with studio.db() as conn, store.transaction(conn):
                # Pushed from the last place up: undo brings them back from the first place
                # down, so each goes back where it was.
                for i, gone in gone_log:
                    store.push_removed(conn, day, i, gone)
                # Taken out of the issue: the ranking learner's feedback, as a dismissal.
                store.set_triage(conn, day, [g.arxiv_id for _, g in gone_log if g.arxiv_id],
                                 "dismissed")
        return apply(change, after)

    @app.post("/undo")
    def undo() -> AnyResponse:
        brought: list[Removed] = []

        def change(loaded: Loaded) -> tuple[Digest, str, str]:
            assert loaded.digest is not None
            wanted = request.form.get("id", "")
            with studio.db() as conn:
                history = store.removed_entries(conn, day, limit=1000)
            found = [r for r in history if not wanted or str(r.id) == wanted]
            if not found:
                raise InputError("nothing to undo")
            last = found[0]
            brought.append(last)
            if entry_key(last.entry) in {entry_key(e) for e in loaded.entries}:
                raise InputError(f"{last.entry.title!r} is in the issue already")
            new = insert_entry(loaded.digest, last.position, last.entry)
            at = min(last.position, len(loaded.entries))
            return new, f"brought back {last.entry.title!r}", f"e{at}"

        def after() -> None:
            with studio.db() as conn, store.transaction(conn):
                store.drop_removed(conn, day, brought[-1].id)
                if brought[-1].entry.arxiv_id:
                    store.set_triage(conn, day, [brought[-1].entry.arxiv_id], "picked")
        # Bringing an entry back writes over nothing: no need for the page's version.
        return apply(change, after, whole_file=False)

    @app.post("/entry/merge-note")
    def merge_note_action() -> AnyResponse:
        def change(loaded: Loaded) -> tuple[Digest, str, str]:
            assert loaded.digest is not None
            i = target(loaded)
            entry = loaded.entries[i]
            note = (studio.shelf().by_id().get(entry.arxiv_id)
                    if entry.arxiv_id else None)
            if note is None:
                raise InputError(f"no note for {entry.title!r}")
            entries = list(loaded.digest.entries)
            entries[i] = merge_note(entry, note.entry)
            new = replace(loaded.digest, entries=tuple(entries))
            return new, f"merged the note {note.path.name}", f"e{i}"
        return apply(change)
