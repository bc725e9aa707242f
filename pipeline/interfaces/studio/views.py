"""The studio's pages: the day, the candidates, the previews, a kept conflict."""

from __future__ import annotations

from flask import Flask, Response, abort, request
from werkzeug.wrappers.response import Response as AnyResponse

from pipeline.core.models import UNSUBSCRIBE_PLACEHOLDER
from pipeline.deliver.previews import preview_unsubscribe_url
from pipeline.interfaces.studio.model import load_draft
from pipeline.interfaces.studio.web import Web


def register(app: Flask, web: Web) -> None:
    """Add the page views to `app`."""
    settings, day, studio, variants = web.settings, web.day, web.studio, web.variants

    @app.get("/")
    def day_view() -> AnyResponse:
        variant = request.args.get("variant", variants[-1])
        part = request.args.get("part", "html")
        if variant not in variants or part not in ("html", "txt"):
            abort(404)
        return web.day_page(variant=variant, part=part)

    @app.get("/preview/<variant>.<part>")
    def preview(variant: str, part: str) -> AnyResponse:
        if variant not in variants or part not in ("html", "txt"):
            abort(404)
        loaded = load_draft(settings, day)
        if loaded.digest is None:
            return Response(f"no preview: {loaded.error}", 200,
                            content_type="text/plain; charset=utf-8")
        with studio.db() as conn:
            made = studio.previewer.preview(conn, day, loaded)
        email = studio.previewer.email(made, variant)
        unsubscribe = preview_unsubscribe_url(settings)
        if part == "txt":
            return Response(email.text.replace(UNSUBSCRIBE_PLACEHOLDER, unsubscribe), 200,
                            content_type="text/plain; charset=utf-8")
        return Response(email.html.replace(UNSUBSCRIBE_PLACEHOLDER, unsubscribe), 200,
                        content_type="text/html; charset=utf-8")

    @app.get("/conflict/<cid>")
    def conflict_page(cid: str) -> AnyResponse:
        found = studio.conflicts.get(cid)
        if found is None:
            abort(404)
        return web.conflict_response(found, 200)
