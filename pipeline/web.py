"""`digest serve`: one-click unsubscribe (RFC 8058), double opt-in subscribe, and site/."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, abort, render_template_string, request, send_from_directory
from waitress.server import create_server

from pipeline import store, tokens
from pipeline.config import Settings
from pipeline.errors import DeliveryError
from pipeline.mail import Transport, make_transport, message_id, simple_message
from pipeline.models import Subscriber
from pipeline.runtime import Runtime
from pipeline.subscribers import normalize_email

# A confirmation link works this many days after it was sent; then the reader subscribes again.
CONFIRM_DAYS = 7

_PAGE = """<!doctype html>
<html lang="{{ lang }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ heading }} — {{ title }}</title>
<style>body{font-family:system-ui,"Apple SD Gothic Neo","Noto Sans KR",sans-serif;
max-width:34rem;margin:3rem auto;padding:0 1rem;line-height:1.5;word-break:keep-all}
button{font-size:1rem;padding:.5rem 1.2rem}</style></head>
<body><h1>{{ heading }}</h1><p>{{ message }}</p>
{% if form == "unsubscribe" %}
<form method="post" action="{{ action }}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button></form>
{% elif form == "subscribe" %}
<form method="post" action="{{ action }}">
<p><label>Email <input type="email" name="email" required></label></p>
<p><label>Language <select name="language">
{% for v in variants %}<option value="{{ v }}">{{ v }}</option>{% endfor %}
</select></label></p>
<button type="submit">Subscribe</button></form>
{% endif %}
</body></html>
"""


def _page(
    settings: Settings, heading: str, message: str, status: int = 200, *,
    form: str | None = None, action: str = "",
) -> Any:
    html = render_template_string(
        _PAGE,
        lang=settings.newsletter.locale,
        title=settings.newsletter.title,
        heading=heading,
        message=message,
        variants=settings.variants,
        form=form,
        action=action,
    )
    return html, status, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}


def create_app(
    settings: Settings,
    rt: Runtime | None = None,
    transport: Callable[[], Transport] | None = None,
) -> Flask:
    """The WSGI app; `transport` makes the transport for confirmation emails (default: the
    configured one, the outbox writing to outbox/subscribe/)."""
    runtime = rt or Runtime()
    make = transport or (
        lambda: make_transport(settings, runtime, settings.paths.outbox / "subscribe")
    )
    site = settings.paths.site
    app = Flask(__name__, static_folder=None)

    @contextlib.contextmanager
    def db() -> Iterator[sqlite3.Connection]:
        conn = store.connect(settings.db_path)  # one per request: waitress uses threads
        try:
            yield conn
        finally:
            conn.close()

    def subscriber_for(conn: sqlite3.Connection, purpose: str, token: str) -> Any:
        """The subscriber a token was signed for; 400 if malformed or forged, 404 if unknown."""
        try:
            sid = tokens.subscriber_id(token)
        except tokens.TokenError:
            abort(400)
        sub = store.get_subscriber_by_id(conn, sid)
        if sub is None:
            abort(404)
        if not tokens.verify(settings.secret, purpose, token, sub.email):
            abort(400)
        return sub

    @app.errorhandler(400)
    def bad_request(_exc: Any) -> Any:
        return _page(settings, "Invalid link", "This link is not valid or was altered.", 400)

    @app.errorhandler(404)
    def not_found(_exc: Any) -> Any:
        return _page(settings, "Not found", "There is nothing at this address.", 404)

    @app.get("/unsubscribe/<token>")
    def unsubscribe_page(token: str) -> Any:
        # A GET never unsubscribes: mail scanners and link previews follow links.
        with db() as conn:
            sub = subscriber_for(conn, "unsubscribe", token)
        return _page(
            settings,
            "Unsubscribe",
            f"Stop sending {settings.newsletter.title} to {sub.email}?",
            form="unsubscribe",
            action=request.path,
        )

    @app.post("/unsubscribe/<token>")
    def unsubscribe(token: str) -> Any:
        # RFC 8058 one-click: a POST, answered 200 without a redirect; repeating it is harmless.
        with db() as conn:
            sub = subscriber_for(conn, "unsubscribe", token)
            store.set_subscriber_status(conn, sub.id, "unsubscribed")
        return _page(
            settings, "Unsubscribed", f"{sub.email} will get no more emails from this list."
        )

    @app.get("/subscribe")
    def subscribe_page() -> Any:
        return _page(
            settings, "Subscribe", f"Get {settings.newsletter.title} by email.",
            form="subscribe", action=request.path,
        )

    @app.post("/subscribe")
    def subscribe() -> Any:
        language = request.form.get("language") or settings.variants[-1]
        try:
            email = normalize_email(request.form.get("email", ""))
        except ValueError as exc:
            return _page(settings, "Subscribe", str(exc), 400, form="subscribe",
                         action=request.path)
        if language not in settings.variants:
            return _page(settings, "Subscribe", f"unknown language {language!r}", 400,
                         form="subscribe", action=request.path)
        with db() as conn, store.transaction(conn):  # two quick POSTs: one row
            sub = store.get_subscriber(conn, email)
            pending = sub is None or sub.status != "active"
            if pending:
                tags = sub.tags if sub else ()
                _, sub = store.save_subscriber(conn, Subscriber(email, language, tags, "pending"))
        if pending:
            try:
                _send_confirmation(settings, runtime, make(), sub)
            except DeliveryError:
                return _page(settings, "Try again later",
                             "We could not send the confirmation email just now.", 503)
        # The same answer whether or not the address was already subscribed (no leak).
        return _page(
            settings, "Check your inbox",
            f"We sent a confirmation link to {email}. Open it to start your subscription.",
        )

    @app.get("/confirm/<token>")
    def confirm(token: str) -> Any:
        with db() as conn:
            sub = subscriber_for(conn, "confirm", token)
            issued = tokens.issued_on(token)
            if issued is None or (runtime.now().date() - issued).days > CONFIRM_DAYS:
                return _page(settings, "Link expired", "Please subscribe again.", 410)
            # Only a pending address is activated: an old link cannot undo an unsubscribe.
            if sub.status == "pending":
                store.set_subscriber_status(conn, sub.id, "active")
            elif sub.status != "active":
                return _page(settings, "Link expired", "Please subscribe again.", 410)
        return _page(settings, "Subscribed", f"{sub.email} will get {settings.newsletter.title}.")

    @app.get("/")
    @app.get("/<path:path>")
    def static_site(path: str = "") -> Any:
        target = site / path
        if path == "" or target.is_dir():
            path = f"{path.rstrip('/')}/index.html".lstrip("/")
        return send_from_directory(site, path)

    return app


def _send_confirmation(settings: Settings, rt: Runtime, transport: Transport, sub: Any) -> None:
    """Email the double opt-in link to a pending subscriber."""
    now = rt.now()
    token = tokens.sign(settings.secret, "confirm", sub.id, sub.email, now.date())
    link = f"{settings.newsletter.base_url.rstrip('/')}/confirm/{token}"
    title = settings.newsletter.title
    text = (
        f"Please confirm that you want to receive {title} at {sub.email}:\n\n{link}\n\n"
        "If you did not ask for it, ignore this email; nothing will be sent to you.\n"
    )
    mid = message_id(settings, now.date(), sub.email, salt=f"confirm {now.isoformat()}")
    message = simple_message(settings, sub.email, f"Confirm your subscription to {title}",
                             text, now, mid)
    transport.open()
    try:
        transport.send(message)
    finally:
        transport.close()


def make_server(settings: Settings, host: str, port: int, rt: Runtime | None = None) -> Any:
    """A waitress server for the app (port 0 = any free port; `.effective_port` tells)."""
    return create_server(create_app(settings, rt), host=host, port=port, threads=4)
