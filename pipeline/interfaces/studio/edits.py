"""The studio's changes to the draft: save an entry, move, remove, undo, add a paper. Each
runs against the version of the draft the page was loaded from, and answers JSON to
studio.js or a redirect to a plain form."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, abort, jsonify, redirect, request
from werkzeug.wrappers.response import Response as AnyResponse

from pipeline import store
from pipeline.core import digest_format as digest
from pipeline.core.errors import DigestError, InputError
from pipeline.core.models import Digest, Entry
from pipeline.curate import notes
from pipeline.curate.draft import candidate_entry, noted_entry
from pipeline.interfaces.studio import steps
from pipeline.interfaces.studio.model import (
    DraftConflict,
    Loaded,
    disk_entry,
    edit_entry,
    entry_changes,
    entry_fields,
    entry_key,
    insert_entry,
    load_draft,
    move_entry,
    remove_entry,
    save_draft,
)
from pipeline.interfaces.studio.web import Web


def register(app: Flask, web: Web) -> None:
    """Add the routes that change the draft to `app`."""
    settings, day, studio = web.settings, web.day, web.studio
    wants_json, json_reply, flash = web.wants_json, web.json_reply, web.flash
    lint_by_entry, lint_json, conflict_reply = web.lint_by_entry, web.lint_json, web.conflict_reply
    day_page = web.day_page
    day_status, last_approved = steps.day_status, steps.last_approved

    def current(expect: str) -> Loaded:
        loaded = load_draft(settings, day)
        if loaded.digest is None:
            raise InputError(f"the draft cannot be edited here: {loaded.error}")
        if loaded.sha != expect:
            raise DraftConflict(loaded.path, loaded.data, "")
        return loaded

    def index_of(loaded: Loaded) -> int:
        try:
            i = int(request.form.get("i", ""))
        except ValueError:
            abort(400)
        if not 0 <= i < len(loaded.entries):
            abort(400)
        return i

    def apply(change: Callable[[Loaded], tuple[Digest, str]], anchor: str = "",
              saved: Callable[[], None] = lambda: None) -> AnyResponse:
        """Run one change of the draft against the version the form was loaded from;
        `saved` runs once it is on disk."""
        expect = request.form.get("sha", "")
        mine = ""
        try:
            loaded = current(expect)
            new, said = change(loaded)
            mine = digest.write_digest(new)
            sha = save_draft(settings, day, expect, new)
            saved()
        except DraftConflict as exc:
            return conflict_reply(exc.disk, exc.mine or mine or "(your change: "
                                  f"{request.path} on the version you loaded)")
        except DigestError as exc:
            if wants_json():
                return json_reply(422, error=exc.message)
            flash("error", exc.message)
            return redirect("/" + anchor, 303)
        if wants_json():
            with studio.db() as conn:
                found_lint = lint_by_entry(conn, load_draft(settings, day))
            return jsonify(sha=sha, message=said, lint=lint_json(found_lint))
        flash("ok", said)
        return redirect("/" + anchor, 303)

    @app.post("/entry/save")
    def save_entry() -> AnyResponse:
        ko = request.form.get("ko", "")
        en = request.form.get("en", "")
        tags_text = request.form.get("tags", "")
        expect = request.form.get("sha", "")
        i = -1
        try:
            loaded = current(expect)
            i = index_of(loaded)
            assert loaded.digest is not None
            new = edit_entry(loaded.digest, i, ko, en, tags_text)
            sha = save_draft(settings, day, expect, new)
        except DraftConflict as exc:
            return conflict_reply(exc.disk, entry_fields(ko, en, tags_text),
                                  disk_entry(exc.disk, request.form.get("key", "")))
        except DigestError as exc:
            if wants_json():
                return json_reply(422, error=f"not saved: {exc.message}")
            # JavaScript off: the page again, the refused text still in its boxes.
            return day_page(422, overrides={i: (ko, en, tags_text)},
                            refused={i: f"not saved: {exc.message}"})
        reloaded = load_draft(settings, day)
        with studio.db() as conn:
            found_lint = lint_by_entry(conn, reloaded)
            status = day_status(settings, day, studio.rt) if wants_json() else None
        if status is not None and reloaded.digest is not None:
            entry = reloaded.entries[i]
            return jsonify(sha=sha, message="saved", lint=lint_json(found_lint),
                           tags=" ".join("#" + t for t in entry.tags), status=status.lines,
                           next_step=status.next_step,
                           changes=entry_changes(last_approved(settings, day), reloaded.digest))
        flash("ok", f"saved: {reloaded.entries[i].title}")
        return redirect(f"/#e{i}", 303)

    @app.post("/entry/move")
    def move() -> AnyResponse:
        delta = -1 if request.form.get("dir") == "up" else 1

        def change(loaded: Loaded) -> tuple[Digest, str]:
            assert loaded.digest is not None
            i = index_of(loaded)
            return move_entry(loaded.digest, i, delta), f"moved {'up' if delta < 0 else 'down'}"
        return apply(change)

    @app.post("/entry/remove")
    def remove() -> AnyResponse:
        undo_slot: list[tuple[Entry, int]] = []

        def change(loaded: Loaded) -> tuple[Digest, str]:
            assert loaded.digest is not None
            i = index_of(loaded)
            new, gone = remove_entry(loaded.digest, i)
            undo_slot.append((gone, i))
            return new, f"removed {gone.title!r} (back among the candidates; undo brings it back)"

        def saved() -> None:
            with studio.lock:
                studio.removed = undo_slot[-1]
        return apply(change, saved=saved)

    @app.post("/undo")
    def undo() -> AnyResponse:
        def change(loaded: Loaded) -> tuple[Digest, str]:
            assert loaded.digest is not None
            with studio.lock:
                last = studio.removed
            if last is None:
                raise InputError("nothing to undo")
            entry, i = last
            if entry_key(entry) in {entry_key(e) for e in loaded.entries}:
                raise InputError(f"{entry.title!r} is in the issue already")
            return insert_entry(loaded.digest, i, entry), f"brought back {entry.title!r}"

        def saved() -> None:
            with studio.lock:
                studio.removed = None
        return apply(change, saved=saved)

    @app.post("/add")
    def add() -> AnyResponse:
        arxiv_id = request.form.get("arxiv_id", "")

        def change(loaded: Loaded) -> tuple[Digest, str]:
            assert loaded.digest is not None
            with studio.db() as conn:
                found = {c.paper.arxiv_id: c for c in store.load_candidates(conn, day)}
            cand = found.get(arxiv_id)
            if cand is None:
                raise InputError(f"arXiv:{arxiv_id} is not among the candidates of {day}")
            if arxiv_id in {e.arxiv_id for e in loaded.entries}:
                raise InputError(f"arXiv:{arxiv_id} is in the issue already")
            note = notes.read_notes(settings.paths.notes).by_id().get(arxiv_id)
            entry = (noted_entry(note.entry, cand.paper, cand.tags) if note is not None
                     else candidate_entry(cand))
            new = insert_entry(loaded.digest, len(loaded.entries), entry)
            return new, f"added {entry.title!r}" + (" with its note" if note else "")
        return apply(change, f"#e{len(load_draft(settings, day).entries)}")

    # -- the lifecycle --
