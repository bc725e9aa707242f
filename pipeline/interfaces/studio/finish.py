"""The issue's lifecycle from the studio: build, test copies, approve, draft."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, abort, redirect, request
from werkzeug.wrappers.response import Response as AnyResponse

from pipeline.core.errors import DigestError
from pipeline.core.runtime import Runtime
from pipeline.interfaces import present
from pipeline.interfaces.studio import steps
from pipeline.interfaces.studio.model import entry_changes, load_draft
from pipeline.interfaces.studio.steps import approve, build, draft, send_test_copy
from pipeline.interfaces.studio.web import Web


def presented_error(exc: DigestError) -> str:
    """A step's refusal as the studio says it: the checkbox, not the CLI flag."""
    text = str(exc)
    if "no commentary" in text and "--allow-uncommented" in text:
        head = text.split(" (listed above)")[0]
        return (f"not approved: {head}: write it, remove those entries, or tick “allow "
                "entries without commentary” and approve again")
    return text


def presented_line(line: str) -> str:
    """A step's message line as the studio says it (the checkbox, not the CLI flag)."""
    return line.replace("(`digest approve` refuses them unless --allow-uncommented)",
                        "(approving refuses them unless you tick “allow entries without "
                        "commentary”)")


def register(app: Flask, web: Web) -> None:
    """Add the lifecycle actions to `app`."""
    settings, day, studio, variants, flash = (web.settings, web.day, web.studio, web.variants,
                                              web.flash)

    def action(run_it: Callable[[Runtime], list[object]], done: str, where: str = "actions",
               anchor: str = "#actions") -> AnyResponse:
        """Run a step; its messages go beside the button that ran it (JSON for studio.js):
        the reports' lines as the CLI words them (a failed step: what it did, then why)."""
        lines: list[str] = []
        error = None
        try:
            for report in run_it(studio.rt):
                lines += present.lines(report)
        except DigestError as exc:
            lines += present.error_lines(exc)
            error = presented_error(exc)
        studio.previewer.forget()  # papers a build fetched resolve in the preview now
        said = [presented_line(line) for line in lines]
        if web.wants_json():
            status = steps.day_status(settings, day, studio.rt)
            return web.json_reply(422 if error else 200, ok=error is None, where=where,
                                  lines=said, message=error or done, status=status.lines,
                                  next_step=status.next_step)
        for line in said:
            flash("info", line, where)
        flash("error" if error else "ok", error or done, where)
        return redirect("/" + anchor, 303)

    def check_sha(where: str = "actions") -> AnyResponse | None:
        """Actions act on the draft the curator saw: a changed file is a conflict."""
        loaded = load_draft(settings, day)
        if loaded.sha != request.form.get("sha", ""):
            message = ("the draft changed on disk since this page was loaded: look at it "
                       "again, then repeat the action")
            if web.wants_json():
                return web.json_reply(409, ok=False, where=where, message=message, lines=[])
            flash("error", message, where)
            return redirect("/#actions", 303)
        return None

    @app.post("/build")
    def build_action() -> AnyResponse:
        return check_sha() or action(lambda r: build(settings, day, r), "built")

    @app.get("/approve")
    def approve_confirm() -> AnyResponse:
        """What approving will publish, to confirm (approving publishes at once)."""
        loaded = load_draft(settings, day)
        if loaded.digest is None:
            return redirect("/", 303)
        status = steps.day_status(settings, day, studio.rt)
        uncommented = [e.title for e in loaded.entries if not e.commentary]
        return web.page(
            "approve.html", loaded=loaded, status=status, uncommented=uncommented,
            allow=request.args.get("allow_uncommented") == "1",
            changes=entry_changes(steps.last_approved(settings, day), loaded.digest),
            site=settings.newsletter.base_url, required=settings.approval.required)

    @app.post("/approve")
    def approve_action() -> AnyResponse:
        allow = request.form.get("allow_uncommented") == "1"
        if request.form.get("confirm") != "1":  # a plain POST: show what it would publish
            return redirect("/approve" + ("?allow_uncommented=1" if allow else ""), 303)
        return check_sha("approve") or action(
            lambda r: approve(settings, day, r, allow), "approved and published", "approve",
            "#approve-form")

    @app.post("/test-copy")
    def test_copy_action() -> AnyResponse:
        variant = request.form.get("variant", "")
        if variant not in variants:
            abort(400)
        return check_sha() or action(
            lambda r: send_test_copy(settings, day, r, studio.to, variant),
            f"sent a {variant} test copy to {studio.to}",
        )

    @app.post("/send")
    def send_action() -> AnyResponse:
        if request.form.get("confirm") != "1":
            message = "not sent: tick “yes, send it now” to send the issue to every subscriber"
            if web.wants_json():
                return web.json_reply(422, ok=False, where="send", message=message, lines=[])
            flash("error", message, "send")
            return redirect("/#send-form", 303)
        return check_sha("send") or action(lambda r: steps.send(settings, day, r), "sent",
                                           "send", "#send-form")

    @app.post("/draft")
    def draft_action() -> AnyResponse:
        return action(lambda r: draft(settings, day, r), "drafted")

