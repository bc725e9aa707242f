"""The studio's app factory: login (one-time token, or a password off loopback), sessions,
CSRF, Origin and Host checks, security headers, static files; the views come from
`views`, `edits` and `finish`. And the waitress server `digest studio` runs."""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Collection
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, abort, redirect, request
from werkzeug.wrappers.response import Response as AnyResponse

from pipeline.core.config import Settings
from pipeline.core.errors import InputError, StoreError
from pipeline.core.runtime import Runtime
from pipeline.interfaces.guard import (
    LOOPBACK_NAMES,
    apply_headers,
    host_allowed,
    is_loopback,
    secure_error_pages,
    security_headers,
)
from pipeline.interfaces.studio import edits, finish, triage, views
from pipeline.interfaces.studio.model import entry_key
from pipeline.interfaces.studio.state import Studio
from pipeline.interfaces.studio.web import Web
from pipeline.publish import render

PASSWORD_ENV = "DIGEST_STUDIO_PASSWORD"
TEMPLATES = render.BUNDLED_TEMPLATES / "studio"
STATIC_FILES = {"studio.css": "text/css", "studio.js": "text/javascript"}
# A draft of 40 annotated entries is ~60 KB: 4 MiB is plenty, and waitress refuses a larger
# body from its Content-Length (413) before reading it, logged in or not.
MAX_BODY_BYTES = 4 * 1024 * 1024
WRONG_PASSWORD_PAUSE = 1.0  # seconds: guessing the password over the network stays slow

# The studio's own pages: scripts and styles from itself only, never framed.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; frame-src 'self'; base-uri 'none'; "
            "frame-ancestors 'none'")
# A preview is the email as sent: inline styles, remote images; no script at all, and only
# the studio may frame it (the iframe is sandboxed too).
PREVIEW_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox")


def create_app(
    settings: Settings, day: date, rt: Runtime | None = None, *, token: str | None = None,
    password: str | None = None, to: str | None = None,
    allowed_hosts: Collection[str] | None = None,
) -> Flask:
    """The studio's WSGI app for `day`; `app.config["STUDIO"]` holds its state (the login
    token among it). `allowed_hosts`: Host names accepted (None = any)."""
    studio = Studio(settings, day, rt or Runtime(), token=token, password=password, to=to,
                    allowed_hosts=allowed_hosts)
    app = Flask(__name__, static_folder=None, template_folder=str(TEMPLATES))
    app.config["STUDIO"] = studio
    app.jinja_env.autoescape = True  # every template, whatever its name
    app.jinja_env.globals["entry_key"] = entry_key
    web = Web(studio)
    page, forbidden = web.page, web.forbidden

    @app.errorhandler(StoreError)
    def store_failed(exc: StoreError) -> AnyResponse:
        # A missing, locked or corrupt database: one page naming it, not a 500 traceback.
        resp = page("message.html", 503, heading="The database is unavailable",
                    text=str(exc), show_nav=False)
        resp.headers["Retry-After"] = "30"
        return resp

    @app.before_request
    def guard() -> AnyResponse | None:
        if not host_allowed(request.host, studio.allowed_hosts):
            return forbidden("unknown Host header")
        if request.endpoint in ("login", "static_file", "favicon"):
            return None
        sess = studio.session()
        if sess is None:
            return forbidden("open the studio with the link `digest studio` printed (it "
                             "carries a one-time login token)"
                             + (", or log in at /login" if studio.password else ""))
        if request.method != "GET":
            origin = request.headers.get("Origin")
            if origin and urlsplit(origin).netloc != request.host:
                return forbidden("a request from another site")
            given = request.form.get("csrf") or request.headers.get("X-CSRF-Token") or ""
            if not hmac.compare_digest(given.encode(), sess.csrf.encode()):
                return forbidden("missing or wrong CSRF token: reload the page and try again")
        return None

    @app.after_request
    def headers(resp: Response) -> AnyResponse:
        preview = request.endpoint == "preview"
        apply_headers(resp, security_headers(
            PREVIEW_CSP if preview else PAGE_CSP, frame="SAMEORIGIN" if preview else "DENY",
            referrer="same-origin",  # "no-referrer" makes Origin null
        ))
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def login_response() -> AnyResponse:
        resp = redirect("/", 303)
        resp.set_cookie(studio.cookie, studio.new_session(), httponly=True, samesite="Strict",
                        secure=request.scheme == "https", path="/")
        return resp

    @app.route("/login", methods=["GET", "POST"])
    def login() -> AnyResponse:
        if request.method == "POST":
            given = request.form.get("password", "")
            if studio.password and hmac.compare_digest(given.encode(),
                                                       studio.password.encode()):
                return login_response()
            studio.rt.sleep(WRONG_PASSWORD_PAUSE)
            return page("login.html", 403, failed=True, show_nav=False)
        token = request.args.get("token")
        if token is not None:
            if studio.use_token(token):
                return login_response()
            return forbidden("this login link is not valid or was used already: use the "
                             "browser it was opened in, or restart `digest studio`")
        if studio.password:
            return page("login.html", show_nav=False, failed=False)
        return forbidden("open the studio with the link `digest studio` printed")

    @app.get("/favicon.ico")
    def favicon() -> AnyResponse:
        return Response(status=204)  # browsers ask; the studio has none

    @app.get("/static/<name>")
    def static_file(name: str) -> AnyResponse:
        if name not in STATIC_FILES:
            abort(404)
        return Response((TEMPLATES / name).read_bytes(), content_type=STATIC_FILES[name])

    views.register(app, web)
    edits.register(app, web)
    triage.register(app, web)
    finish.register(app, web)

    @app.post("/logout")
    def logout() -> AnyResponse:
        sid = request.cookies.get(studio.cookie, "")
        with studio.lock:
            studio.sessions.pop(sid, None)
        resp = page("message.html", heading="Logged out",
                    text="Start `digest studio` again for a new link.", show_nav=False)
        resp.delete_cookie(studio.cookie, path="/")
        return resp

    return app


def make_studio_server(
    settings: Settings, day: date, rt: Runtime, *, host: str = "127.0.0.1", port: int = 0,
    to: str | None = None,
) -> tuple[Any, str]:
    """A waitress server for the studio (port 0: any free port) and its login URL; refuses a
    host other machines can reach unless DIGEST_STUDIO_PASSWORD is set."""
    from waitress.server import create_server

    password = os.environ.get(PASSWORD_ENV) or None
    loopback = is_loopback(host)
    if not loopback and password is None:
        raise InputError(f"refusing to listen on {host}, which other machines can reach: set "
                         f"{PASSWORD_ENV} (then the studio asks for it), or use 127.0.0.1",
                         key="--host")
    bare = host.strip("[]")
    app = create_app(settings, day, rt, password=password, to=to,
                     allowed_hosts=LOOPBACK_NAMES | {bare} if loopback else None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    server: Any = create_server(app, host=host, port=port, threads=4,
                                max_request_body_size=MAX_BODY_BYTES)
    # waitress answers a body over the cap (413) itself: with our headers too
    secure_error_pages(server, security_headers(PAGE_CSP))
    shown = f"[{bare}]" if ":" in bare else bare
    token = app.config["STUDIO"].token
    return server, f"http://{shown}:{server.effective_port}/login?token={token}"


def serve_studio(
    settings: Settings, day: date, rt: Runtime, *, host: str = "127.0.0.1", port: int = 0,
    to: str | None = None, ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the studio on waitress until interrupted; prints the login URL (via `ready`)."""
    server, url = make_studio_server(settings, day, rt, host=host, port=port, to=to)
    (ready or rt.echo)(f"the studio for {day}: open {url}  (Ctrl-C stops it)")
    try:
        server.run()
    except KeyboardInterrupt:  # Ctrl-C is how a curator stops it: not an error
        (ready or rt.echo)("the studio stopped")
    finally:
        server.close()
