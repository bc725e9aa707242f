"""`digest serve`: one-click unsubscribe (RFC 8058), double opt-in subscribe, and site/.

Built to face the internet (behind a reverse proxy, see docs/delivery.md): request size and
URL limits, idle connections that cannot starve one-click unsubscribe, security headers on
every response, tokens kept out of the logs, rate limits on /subscribe kept in SQLite (so they
hold across waitress's threads and restarts), and confirmation mail sent by a background
worker from the `mail_queue` table, so /subscribe answers the same, and as fast, whatever
the address's state and whether or not the mail server is up.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, request, send_file
from waitress.server import create_server
from werkzeug.exceptions import HTTPException

from pipeline import store
from pipeline.core import layout
from pipeline.core.config import Settings
from pipeline.core.errors import DeliveryError, StoreError
from pipeline.core.models import Subscriber
from pipeline.core.runtime import Runtime
from pipeline.deliver import tokens
from pipeline.deliver.mail import RecipientError, Transport, make_transport, message_id, simple_message
from pipeline.deliver.subscribers import AddressError, normalize_email
from pipeline.interfaces import guard, webhooks
from pipeline.interfaces.hardening import (
    client_key,
    configure_logging,
    redact,
    site_file,
)
from pipeline.interfaces.web_pages import WEB_UI, Pages

log = logging.getLogger(__name__)

# A confirmation link works this many days after it was sent; then the reader subscribes again.
CONFIRM_DAYS = 7
# At most one confirmation mail per address per hour, whoever asks (no mail-bombing).
ADDRESS_INTERVAL = timedelta(hours=1)
# At most this many subscribe POSTs per client address per minute (then 429).
CLIENT_LIMIT = 10
CLIENT_WINDOW = timedelta(minutes=1)
# Limits of the HTTP server: the largest form is a few hundred bytes.
MAX_BODY = 64 * 1024
MAX_URL = 2048  # characters of path + query; longer is 414
MAX_HEADERS = 16 * 1024  # waitress answers 431 beyond this
# Idle or slow connections cost waitress no thread (its main loop buffers whole requests),
# only a socket: allow many, and close idle ones soon, so that a few hundred open sockets
# cannot keep a one-click unsubscribe out (waitress's default limit is 100).
THREADS = 8
CONNECTION_LIMIT = 1000
CHANNEL_TIMEOUT = 30  # seconds an idle connection stays open
# The background mail worker: how often it looks at the queue, how it backs off while the
# mail server is down, and when it gives up on a confirmation (the link would be expired).
QUEUE_POLL = 5.0
QUEUE_BACKOFF = (30.0, 3600.0)  # first retry after 30 s, doubling, at most hourly
QUEUE_GIVE_UP = timedelta(days=1)
QUEUE_LEASE = timedelta(minutes=5)  # a claimed mail is not claimed again before this
QUEUE_KEEP = timedelta(days=30)  # finished mails are forgotten after this
# At most this many confirmation mails an hour in all: many clients each asking for a few
# strangers must not get the curator's SMTP account blocklisted; the rest waits its turn.
QUEUE_HOURLY = 100
# ...and at most this many for one client (as web.client_key counts them), served fairly:
# the client with the fewest mails in the hour goes first, so one client at the allowed
# POST rate cannot starve everyone else's confirmations.
QUEUE_CLIENT_HOURLY = 20

SECURITY_HEADERS = guard.security_headers(
    # No scripts anywhere; the pages' CSS is in <style> and style attributes (the email's).
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    # Unsubscribe and confirm URLs carry tokens: never hand them to another site.
    referrer="no-referrer",
)


def _connections(
    path: Path, clock: Callable[[], datetime],
) -> Callable[[], contextlib.AbstractContextManager[sqlite3.Connection]]:
    """A connection per thread, its stamps from `clock` (the runtime's), kept open: opening
    and closing one per request cost ~20 ms (the last close checkpoints the WAL), more than
    the request itself, and unevenly (a timing oracle). It is opened afresh when the file
    was deleted or replaced (so a missing database is reported, not written to unseen) and
    after a store failure."""
    local = threading.local()

    def drop() -> None:
        conn, local.conn = getattr(local, "conn", None), None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error, StoreError):
                conn.close()

    @contextlib.contextmanager
    def db() -> Iterator[sqlite3.Connection]:
        try:
            inode = path.stat().st_ino
        except OSError:
            inode = None
        if inode is None or inode != getattr(local, "inode", None):
            drop()
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = store.connect(path, clock)
            local.inode = path.stat().st_ino
        try:
            yield conn
        except StoreError:
            drop()
            raise

    return db


# --- the mail queue ---------------------------------------------------------------------------


class MailQueue:
    """Sends the confirmation mails that /subscribe queued in SQLite, from one background
    thread: the web request never waits on SMTP, and a mail server that is down delays
    the mail (retried with backoff) instead of changing the answer."""

    def __init__(self, settings: Settings, rt: Runtime, make: Callable[[], Transport],
                 pages: Pages) -> None:
        self.settings = settings
        self.db = _connections(settings.db_path, rt.now)
        self.rt = rt
        self.make = make
        self.pages = pages
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.hourly = QUEUE_HOURLY

    def wake(self) -> None:
        """Look at the queue now (something was queued)."""
        self._wake.set()

    def start(self) -> None:
        """Run the worker in a daemon thread until `stop`."""
        self._thread = threading.Thread(target=self._run, name="mail-queue", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask the worker to finish after the current mail."""
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.drain()
            except StoreError as exc:
                log.error("mail queue: %s", exc)
            except Exception:  # a worker that dies silently would stop every confirmation
                log.exception("mail queue: unexpected error")
            self._wake.wait(QUEUE_POLL)
            self._wake.clear()

    def drain(self) -> int:
        """Send every queued mail that is due; returns how many went out. Stops at the
        first connection failure (the rest waits for the next round)."""
        sent = 0
        transport: Transport | None = None
        with self.db() as conn:
            store.prune_mail(conn, self.rt.now() - QUEUE_KEEP)
            try:
                while not self._stop.is_set():
                    now = self.rt.now()
                    if store.mails_sent_since(conn, now - timedelta(hours=1)) >= self.hourly:
                        break  # the hour's budget is spent: the rest goes out later
                    row = store.claim_mail(conn, now, lease=QUEUE_LEASE,
                                           per_client=QUEUE_CLIENT_HOURLY)
                    if row is None:
                        break
                    sub = store.get_subscriber_by_id(conn, row.subscriber_id)
                    if sub is None or sub.status != "pending":  # confirmed or gone meanwhile
                        store.finish_mail(conn, row.id, "dropped", None, now)
                        continue
                    try:
                        if transport is None:
                            transport = self.make()
                            transport.open()
                        transport.send(self._confirmation(sub))
                    except RecipientError as exc:  # the server's last word on this one
                        store.finish_mail(conn, row.id, "failed", exc.reply, now)
                    except DeliveryError as exc:
                        self._retry(conn, row, now, str(exc))
                        log.warning("mail queue: %s; retrying later", exc)
                        break
                    else:
                        store.finish_mail(conn, row.id, "sent", None, now)
                        sent += 1
            finally:
                if transport is not None:
                    transport.close()
        return sent

    def _retry(self, conn: sqlite3.Connection, row: store.QueuedMail, now: datetime,
               error: str) -> None:
        first, most = QUEUE_BACKOFF
        delay = min(most, first * 2 ** row.attempts)
        if now - row.created_at > QUEUE_GIVE_UP:
            store.finish_mail(conn, row.id, "failed", error, now)
        else:
            store.retry_mail(conn, row.id, now + timedelta(seconds=delay), error)

    def _confirmation(self, sub: Subscriber) -> Any:
        """The double opt-in mail for a pending subscriber, in the language they chose."""
        assert sub.id is not None
        settings = self.settings
        now = self.rt.now()
        token = tokens.sign(settings.secret, "confirm", sub.id, sub.email, now=self.rt.now)
        link = f"{settings.newsletter.base_url.rstrip('/')}/confirm/{token}"
        lang = sub.language  # the language the reader chose: the mail speaks it
        text = self.pages.text("mail_text", lang, email=sub.email, link=link,
                               days=str(CONFIRM_DAYS))
        mid = message_id(settings, now.date(), sub.email, salt=f"confirm {now.isoformat()}")
        subject = self.pages.text("mail_subject", lang)
        return simple_message(settings, sub.email, subject, text, now, mid)


# --- the app ----------------------------------------------------------------------------------


def create_app(
    settings: Settings,
    rt: Runtime | None = None,
    transport: Callable[[], Transport] | None = None,
) -> Flask:
    """The WSGI app; `transport` makes the transport for confirmation emails (default: the
    configured one, the outbox writing to outbox/subscribe/). Its mail queue worker is
    `app.extensions["mail_queue"]`, started by `make_server`."""
    runtime = rt or Runtime()
    make = transport or (
        lambda: make_transport(settings, runtime, layout.subscribe_outbox(settings))
    )
    pages = Pages(settings)
    queue = MailQueue(settings, runtime, make, pages)
    secret = settings.secret
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.config["MAX_FORM_MEMORY_SIZE"] = MAX_BODY
    app.extensions["mail_queue"] = queue

    db = _connections(settings.db_path, runtime.now)
    app.register_blueprint(webhooks.blueprint(settings, runtime, db))

    def subscriber_for(conn: sqlite3.Connection, purpose: str, token: str) -> Subscriber:
        """The subscriber a token was signed for; 400 if malformed, forged or for nobody
        (the same answer: no oracle of which ids exist), 410 if expired or signed before
        the address was last subscribed."""
        try:
            sid = tokens.subscriber_id(token)
        except tokens.TokenError:
            abort(400)
        sub = store.get_subscriber_by_id(conn, sid)
        if sub is None:
            abort(400)
        since = store.pending_since(conn, sid) if purpose == "confirm" else None
        try:
            tokens.check(secret, purpose, token, sub.email, now=runtime.now,
                         max_age=timedelta(days=CONFIRM_DAYS), not_before=since)
        except tokens.TokenExpired:
            abort(410)
        except tokens.TokenError:
            abort(400)
        return sub

    @app.before_request
    def limit_url() -> None:
        uri = request.environ.get("RAW_URI") or request.full_path
        if len(uri) > MAX_URL:
            abort(414)

    @app.after_request
    def headers(response: Response) -> Response:
        guard.apply_headers(response, SECURITY_HEADERS, override=False)
        log.info('%s "%s %s" %s', request.remote_addr, request.method,
                 redact(request.path), response.status_code)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        # Never echo what was sent: the page names the problem, not the request.
        code = exc.code or 500
        if code == 405:
            return exc  # werkzeug's answer carries the Allow header
        texts = {
            400: ("invalid_title", "invalid_text"), 404: ("not_found_title", "not_found_text"),
            410: ("expired_title", "expired_text"), 413: ("error_title", "too_large_text"),
            414: ("error_title", "too_long_text"),
        }
        title, text = texts.get(code, ("error_title", "bad_request_text"))
        page = pages.message(title, text, code, again=code == 410, lang=asked_lang())
        if code == 413:
            page.headers["Connection"] = "close"  # do not read the rest of a huge body
        return page

    @app.errorhandler(StoreError)
    def store_down(exc: StoreError) -> Any:
        log.error("%s", exc)
        page = pages.message("unavailable_title", "unavailable_text", 503, lang=asked_lang())
        page.headers["Retry-After"] = "60"
        return page

    @app.get("/unsubscribe/<token>")
    def unsubscribe_page(token: str) -> Any:
        # A GET never unsubscribes: mail scanners and link previews follow links.
        with db() as conn:
            sub = subscriber_for(conn, "unsubscribe", token)
        lang = pages.language(sub.language)
        return pages.render("unsubscribe", lang=lang, heading=pages.uis[lang]["unsubscribe_title"],
                            email=sub.email, action=request.path)

    @app.post("/unsubscribe/<token>")
    def unsubscribe(token: str) -> Any:
        # RFC 8058 one-click: a POST, answered 200 without a redirect; repeating it is harmless.
        with db() as conn:
            sub = subscriber_for(conn, "unsubscribe", token)
            assert sub.id is not None
            store.set_subscriber_status(conn, sub.id, "unsubscribed")
        return pages.message("unsubscribed_title", "unsubscribed_text", lang=sub.language,
                             email=sub.email)

    def asked_lang(form: bool = False) -> str:
        """The language a request asks for: ?lang= (the archive's links carry it) or, on a
        subscribe POST, the form's hidden `lang` field; else the newsletter's. (Error pages
        never read the form: its body may be what was refused.)"""
        asked = request.args.get("lang") or (request.form.get("lang") if form else None)
        return pages.language(asked)

    def subscribe_form(error: str | None = None, status: int = 200) -> Response:
        lang = asked_lang(form=request.method == "POST")
        # The language of the page is the one preselected: an English reader who followed
        # an English page's link gets English issues unless they choose otherwise.
        chosen = request.form.get("language") or (
            lang if request.args.get("lang") in settings.variants else settings.variants[-1])
        return pages.render("subscribe", status, lang, heading=pages.uis[lang]["subscribe"],
                            action=request.path, languages=pages.languages, error=error,
                            chosen=chosen, page_lang=lang)

    @app.get("/subscribe")
    def subscribe_page() -> Any:
        return subscribe_form()

    @app.post("/subscribe")
    def subscribe() -> Any:
        now = runtime.now()
        client = f"client:{client_key(request.remote_addr)}"
        with db() as conn, store.transaction(conn):
            recent = store.count_events(conn, client, now - CLIENT_WINDOW)
            store.record_event(conn, client, now)
        if recent >= CLIENT_LIMIT:
            page = pages.message("too_many_title", "too_many_text", 429,
                                 lang=asked_lang(form=True))
            page.headers["Retry-After"] = str(int(CLIENT_WINDOW.total_seconds()))
            return page
        language = request.form.get("language") or settings.variants[-1]
        try:
            email = normalize_email(request.form.get("email", ""),
                                    smtputf8=settings.smtp.smtputf8)
        except AddressError:
            return subscribe_form(pages.text("bad_email_utf8", asked_lang(form=True)), 400)
        except ValueError:
            return subscribe_form(pages.text("bad_email", asked_lang(form=True)), 400)
        if language not in settings.variants:
            return subscribe_form(pages.text("bad_language", asked_lang(form=True)), 400)
        queued = False
        # One transaction: fifty concurrent POSTs for one address queue one mail at most.
        # The same statements run for a subscribed address (its queued mail is dropped by
        # the worker, not sent), so its answer takes as long as a stranger's.
        with db() as conn, store.transaction(conn):
            sub = store.get_subscriber(conn, email)
            was = sub.status if sub else None
            if sub is None or sub.status != "active":
                tags = sub.tags if sub else ()
                _, sub = store.save_subscriber(conn, Subscriber(email, language, tags, "pending"))
            assert sub.id is not None
            if was != "pending" and sub.status == "pending":  # older links are void
                store.mark_pending(conn, sub.id, now)
            last = store.last_mail(conn, sub.id, "confirm")
            if last is None or now - last >= ADDRESS_INTERVAL or was != sub.status:
                store.queue_mail(conn, "confirm", sub.id, now, client)
                queued = True
        if queued:
            queue.wake()
        # The same answer whatever the address's state and whether a mail was queued: no
        # membership oracle, and SMTP is out of the request's path.
        # The answer speaks the language the reader chose (the form's page language for
        # `all`).
        answer = language if language in WEB_UI else asked_lang(form=True)
        return pages.message("check_title", "check_text", lang=answer, email=email)

    @app.route("/confirm/<token>", methods=["GET", "HEAD"])
    def confirm_page(token: str) -> Any:
        # GET and HEAD only show the button: mail scanners prefetch links.
        with db() as conn:
            sub = subscriber_for(conn, "confirm", token)
        if sub.status not in ("pending", "active"):
            abort(410)
        lang = pages.language(sub.language)
        return pages.render("confirm", lang=lang, heading=pages.uis[lang]["confirm_title"],
                            email=sub.email, action=request.path)

    @app.post("/confirm/<token>")
    def confirm(token: str) -> Any:
        with db() as conn:
            sub = subscriber_for(conn, "confirm", token)
            assert sub.id is not None
            # Only a pending address is activated: an old link cannot undo an unsubscribe.
            if sub.status == "pending":
                store.set_subscriber_status(conn, sub.id, "active")
            elif sub.status != "active":
                abort(410)
        return pages.message("confirmed_title", "confirmed_text", lang=sub.language,
                             email=sub.email)

    @app.get("/")
    @app.get("/<path:path>")
    def static_site(path: str = "") -> Any:
        target = site_file(settings.paths.site, path)
        if target is None:
            abort(404)
        return send_file(target, conditional=True, max_age=300)

    return app


def make_server(settings: Settings, host: str, port: int, rt: Runtime | None = None) -> Any:
    """A waitress server for the app, its mail queue worker running (port 0 = any free
    port; `.effective_port` tells)."""
    configure_logging("waitress", __name__)
    app = create_app(settings, rt)
    proxy = settings.web.trusted_proxy
    # Behind a reverse proxy, the client's address (for the rate limits) comes from
    # X-Forwarded-For, trusted only from that proxy.
    behind: dict[str, Any] = {
        "trusted_proxy": proxy, "trusted_proxy_count": 1,
        "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"},
        "clear_untrusted_proxy_headers": True,
    } if proxy else {}
    server = create_server(
        app, host=host, port=port, threads=THREADS, connection_limit=CONNECTION_LIMIT,
        channel_timeout=CHANNEL_TIMEOUT, cleanup_interval=10, asyncore_use_poll=True,
        max_request_body_size=MAX_BODY, max_request_header_size=MAX_HEADERS,
        expose_tracebacks=False, ident="waitress", **behind,
    )
    guard.secure_error_pages(server, SECURITY_HEADERS)
    app.extensions["mail_queue"].start()
    return server

