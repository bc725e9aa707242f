"""The issue's lifecycle from the studio: build, test copies, approve, draft."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, abort, redirect, request
from werkzeug.wrappers.response import Response as AnyResponse

from pipeline.core.errors import DigestError
from pipeline.core.runtime import Runtime
from pipeline.interfaces.studio.model import load_draft
from pipeline.interfaces.studio.steps import approve, build, draft, send_test_copy
from pipeline.interfaces.studio.web import Web


def register(app: Flask, web: Web) -> None:
    """Add the lifecycle actions to `app`."""
    settings, day, studio, variants, flash = (web.settings, web.day, web.studio, web.variants,
                                              web.flash)

    def action(run_it: Callable[[Runtime], None], done: str) -> AnyResponse:
        rt_, said = studio.capture()
        try:
            run_it(rt_)
        except DigestError as exc:
            studio.previewer.forget()
            for line in said:
                flash("info", line)
            flash("error", str(exc))
            return redirect("/#actions", 303)
        studio.previewer.forget()  # papers a build fetched resolve in the preview now
        for line in said:
            flash("info", line)
        flash("ok", done)
        return redirect("/#actions", 303)

    def check_sha() -> AnyResponse | None:
        """Actions act on the draft the curator saw: a changed file is a conflict."""
        loaded = load_draft(settings, day)
        if loaded.sha != request.form.get("sha", ""):
            flash("error", "the draft changed on disk since this page was loaded: look at it "
                  "again, then repeat the action")
            return redirect("/", 303)
        return None

    @app.post("/build")
    def build_action() -> AnyResponse:
        return check_sha() or action(lambda r: build(settings, day, r), "built")

    @app.post("/approve")
    def approve_action() -> AnyResponse:
        allow = request.form.get("allow_uncommented") == "1"
        return check_sha() or action(lambda r: approve(settings, day, r, allow), "approved")

    @app.post("/test-copy")
    def test_copy_action() -> AnyResponse:
        variant = request.form.get("variant", "")
        if variant not in variants:
            abort(400)
        return check_sha() or action(
            lambda r: send_test_copy(settings, day, r, studio.to, variant),
            f"sent a {variant} test copy to {studio.to}",
        )

    @app.post("/draft")
    def draft_action() -> AnyResponse:
        return action(lambda r: draft(settings, day, r), "drafted")

