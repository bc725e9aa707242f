"""Triage: the day's candidates page by page, best first; pick (into the draft), dismiss,
seen — remembered in the store (the ranking learner's feedback too); add any paper by id or
arXiv URL, even one no tag matched (looked up on the arXiv API when the store lacks it)."""

from __future__ import annotations

from flask import Flask, jsonify, redirect, request
from werkzeug.wrappers.response import Response as AnyResponse

from pipeline import store
from pipeline.core.errors import DigestError, InputError
from pipeline.core.models import Candidate, Entry
from pipeline.curate.draft import candidate_entry, noted_entry
from pipeline.interfaces.studio import steps
from pipeline.interfaces.studio.candidates import candidate_page, paper_ref
from pipeline.interfaces.studio.model import (
    DraftConflict,
    entry_key,
    insert_entry,
    load_draft,
    save_draft,
)
from pipeline.interfaces.studio.web import Web
from pipeline.services import ranking

SHOW = ("open", "dismissed", "all")


def register(app: Flask, web: Web) -> None:
    """Add the candidates page and the triage actions to `app`."""
    settings, day, studio = web.settings, web.day, web.studio

    @app.get("/candidates")
    def candidates() -> AnyResponse:
        tag = request.args.get("tag", "")
        query = request.args.get("q", "")
        show = request.args.get("show", "open")
        show = show if show in SHOW else "open"
        try:
            number = int(request.args.get("page", "1"))
        except ValueError:
            number = 1
        loaded = load_draft(settings, day)
        with studio.db() as conn:
            found = store.load_candidates(conn, day)
            states = store.triage_states(conn, day)
            sent = store.sent_papers(conn, day)
        shelf = studio.shelf()
        model = studio.model()

        def why(c: Candidate) -> tuple[str, ...]:
            assert model is not None
            return ranking.explain_candidate(model, c, day).lines()

        made = candidate_page(settings, found, loaded.entries, shelf, states, tag=tag,
                              query=query, show=show, page=number, sent=sent,
                              explained=studio.explained, why=why if model else None)
        shown = [v.candidate.paper.arxiv_id for v in made.views]
        with studio.db() as conn, store.transaction(conn):  # shown now: seen
            store.set_triage(conn, day, shown, "seen", only_unseen=True)
        ref = paper_ref(query)
        return web.page("candidates.html", loaded=loaded, made=made, views=made.views,
                        tag=tag, q=query, show=show, total=len(found), ref=ref,
                        tag_options=[t.name for t in settings.tags],
                        picked=sum(1 for s in states.values() if s == "picked"),
                        dismissed=sum(1 for s in states.values() if s == "dismissed"))

    def entry_for(arxiv_id: str) -> tuple[Entry, bool]:
        """The draft entry for a paper: a candidate of the day, a stored paper, or one the
        arXiv API finds; with its note if the curator has one. True when it has a note."""
        with studio.db() as conn:
            found = {c.paper.arxiv_id: c for c in store.load_candidates(conn, day)}
            cand = found.get(arxiv_id)
        if cand is None:
            paper = steps.lookup_paper(settings, day, studio.rt, arxiv_id)
            if paper is None:
                raise InputError(f"arXiv:{arxiv_id}: no such paper on arXiv")
            cand = Candidate(paper, (), 0.0)
        note = studio.shelf().by_id().get(arxiv_id)
        if note is not None:
            return noted_entry(note.entry, cand.paper, cand.tags), True
        return candidate_entry(cand), False

    def pick(ids: list[str]) -> tuple[str, str, list[str]]:
        """Add the papers at the end of the draft; (sha, message, ids added)."""
        loaded = load_draft(settings, day)
        if loaded.digest is None or loaded.sha is None:
            raise InputError(f"the draft cannot take entries now: {loaded.error}")
        have = {entry_key(e) for e in loaded.entries}
        new = loaded.digest
        added: list[str] = []
        titles: list[str] = []
        for arxiv_id in ids:
            if arxiv_id in have:
                if len(ids) == 1:
                    raise InputError(f"arXiv:{arxiv_id} is in the issue already")
                continue
            entry, with_note = entry_for(arxiv_id)
            new = insert_entry(new, len(new.entries), entry)
            have.add(arxiv_id)
            added.append(arxiv_id)
            titles.append(repr(entry.title) + (" with its note" if with_note else ""))
        if not added:
            raise InputError("nothing to add")
        sha = save_draft(settings, day, loaded.sha, new)
        with studio.db() as conn, store.transaction(conn):
            store.set_triage(conn, day, added, "picked")
        said = f"added {titles[0]}" if len(titles) == 1 else f"added {len(titles)} papers"
        return sha, said + f" (entry {len(new.entries)})", added

    def wanted_ids() -> list[str]:
        ids = request.form.getlist("ids") or [request.form.get("arxiv_id", "")]
        ref = request.form.get("ref", "")
        if ref.strip():
            found = paper_ref(ref)
            if found is None:
                raise InputError(f"{ref.strip()[:60]!r} is no arXiv id or arXiv URL (e.g. "
                                 "2412.01981 or https://arxiv.org/abs/2412.01981)")
            ids = [found]
        ids = [i for i in (paper_ref(x) for x in ids if x) if i is not None]
        if not ids:
            raise InputError("no paper named: give an arXiv id or URL")
        return ids

    def back(where: str) -> AnyResponse:
        target = request.form.get("back", "")
        return redirect(target if target.startswith("/candidates") else "/candidates" + where,
                        303)

    @app.post("/add")
    def add() -> AnyResponse:
        try:
            sha, said, added = pick(wanted_ids())
        except DraftConflict as exc:
            return web.conflict_reply(exc.disk, exc.mine or "(your change: adding a paper)")
        except DigestError as exc:
            if web.wants_json():
                return web.json_reply(422, error=exc.message)
            web.flash("error", exc.message)
            return back("")
        if web.wants_json():
            return jsonify(sha=sha, message=said, ids=added, state="picked")
        web.flash("ok", said)
        return back(f"#c-{added[0]}")

    @app.post("/triage")
    def triage() -> AnyResponse:
        state = request.form.get("state", "")
        if state == "picked":
            return add()
        if state not in ("dismissed", "seen"):
            return web.json_reply(400, error=f"no triage state {state!r}")
        try:
            ids = wanted_ids()
        except DigestError as exc:
            return web.json_reply(422, error=exc.message)
        with studio.db() as conn, store.transaction(conn):
            store.set_triage(conn, day, ids, "dismissed" if state == "dismissed" else "seen")
        said = (f"dismissed {len(ids)} paper{'s' if len(ids) != 1 else ''}"
                if state == "dismissed" else "seen")
        if web.wants_json():
            return jsonify(message=said, ids=ids, state=state)
        web.flash("ok", said)
        return back("")
