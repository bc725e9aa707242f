"""`digest studio`: the curator's day in a browser — pick, annotate, preview, approve.

A small Flask app on waitress (as `digest serve`), for one day's issue. The draft file
`drafts/D.txt` stays the one source of truth: every view reads it afresh through
`pipeline.core.digest_format`, every change is written back through `write_digest`, atomically, and only
when the file still has the sha256 the page was loaded with (else a conflict page shows both
versions; nothing is overwritten). Previews merge the draft against the store only (no
network) and render with one cached `render.Renderer`.

Safe by default: it listens on 127.0.0.1; the URL it prints carries a one-time login token
that becomes an HttpOnly, SameSite=Strict session cookie; every POST needs that session and
its CSRF token; another --host needs DIGEST_STUDIO_PASSWORD (then a login form); all text is
escaped by Jinja; responses carry a CSP without inline script.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import ipaddress
import os
import secrets
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, abort, jsonify, redirect, render_template, request
from markupsafe import Markup, escape
from werkzeug.wrappers.response import Response as AnyResponse

from pipeline import store
from pipeline.collect import tags
from pipeline.core import digest_format as digest
from pipeline.core.config import Settings
from pipeline.core.errors import DigestError, FormatError, InputError, StoreError
from pipeline.core.files import write_atomic
from pipeline.core.latex import title_key
from pipeline.core.models import (
    TAG_RE,
    UNSUBSCRIBE_PLACEHOLDER,
    Candidate,
    Digest,
    EmailVariant,
    Entry,
    has_hangul,
    normalize_tag,
)
from pipeline.core.runtime import Runtime
from pipeline.curate import lint, merge, notes
from pipeline.curate.draft import candidate_entry, noted_entry
from pipeline.publish import render, site
from pipeline.services import run

PASSWORD_ENV = "DIGEST_STUDIO_PASSWORD"
TEMPLATES = render.BUNDLED_TEMPLATES / "studio"
STATIC_FILES = {"studio.css": "text/css", "studio.js": "text/javascript"}
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
PREVIEW_CACHE = 16  # rendered (sha, variant) pairs kept; a save makes a new sha
KEPT_CONFLICTS = 20  # refused saves whose page can still be opened
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


# --- the draft: read and written only through pipeline.core.digest_format ---------------------------------


@dataclass(frozen=True)
class Loaded:
    """The draft as read now: its bytes, their sha256, and the parsed digest or why not."""

    path: Path
    data: bytes
    sha: str | None  # None when there is no draft file
    digest: Digest | None
    error: str | None = None

    @property
    def entries(self) -> tuple[Entry, ...]:
        """The draft's entries (none when it is missing or does not parse)."""
        return self.digest.entries if self.digest is not None else ()


class DraftConflict(InputError):
    """The draft on disk is not the version the page was loaded from."""

    def __init__(self, path: Path, disk: bytes, mine: str) -> None:
        super().__init__("the draft was changed on disk since this page was loaded; "
                         "nothing was saved", path=path)
        self.disk = disk
        self.mine = mine


def sha256(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def load_draft(settings: Settings, day: date) -> Loaded:
    """drafts/D.txt read and parsed now (a parse error is kept as text, not raised)."""
    path = run.draft_path(settings, day)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Loaded(path, b"", None, None, f"no draft for {day} yet")
    try:
        parsed = digest.parse_digest(digest.decode_text(data, path), path)
        if parsed.date != day:
            raise FormatError(f"the draft is dated {parsed.date}, expected {day}", path=path,
                              line=1)
    except FormatError as exc:
        return Loaded(path, data, sha256(data), None, str(exc))
    return Loaded(path, data, sha256(data), parsed)


def _comparable(d: Digest) -> Digest:
    return replace(d, entries=tuple(replace(e, line=None) for e in d.entries))


def draft_text(new: Digest) -> str:
    """The canonical text of `new`; refuses (FormatError, with the reason) a digest the
    format cannot hold, i.e. one that would not read back as exactly these entries."""
    text = digest.write_digest(new)  # raises on what format_problem finds
    back = digest.parse_digest(text, "<draft>")
    if _comparable(back) != _comparable(new):
        for before, after in zip(new.entries, back.entries, strict=False):
            if replace(before, line=None) != replace(after, line=None):
                why = ""
                if not before.abstract and before.commentary and not has_hangul(
                        before.commentary[0]):
                    why = ": with no abstract, its first English line would read as the abstract"
                raise FormatError(f"the entry {before.title[:60]!r} would not read back the "
                                  f"same{why}", path="<draft>")
        raise FormatError("the draft would not read back the same", path="<draft>")
    return text


_save_lock = threading.Lock()


def save_draft(settings: Settings, day: date, expected_sha: str, new: Digest) -> str:
    """Write `new` to drafts/D.txt atomically if the file still has `expected_sha`; returns
    the new sha. Raises FormatError (nothing written) or DraftConflict (nothing written)."""
    text = draft_text(new)
    path = run.draft_path(settings, day)
    with _save_lock:  # two browser tabs: one wins, the other gets the conflict page
        try:
            disk = path.read_bytes()
        except FileNotFoundError:
            disk = b""
        if not hmac.compare_digest(sha256(disk), expected_sha):
            raise DraftConflict(path, disk, text)
        write_atomic(path, text)
    return sha256(text.encode("utf-8"))


# --- pure edits of a digest -------------------------------------------------------------------


def entry_key(entry: Entry) -> str:
    """An entry's identity across versions of a draft: its arXiv id, else its title."""
    return entry.arxiv_id if entry.arxiv_id is not None else "title:" + title_key(entry.title)


def move_entry(d: Digest, index: int, delta: int) -> Digest:
    """The digest with entry `index` moved by `delta` places (clamped at the ends)."""
    entries = list(d.entries)
    target = max(0, min(len(entries) - 1, index + delta))
    entries.insert(target, entries.pop(index))
    return replace(d, entries=tuple(entries))


def remove_entry(d: Digest, index: int) -> tuple[Digest, Entry]:
    """The digest without entry `index`, and that entry."""
    entries = list(d.entries)
    gone = entries.pop(index)
    return replace(d, entries=tuple(entries)), gone


def insert_entry(d: Digest, index: int, entry: Entry) -> Digest:
    """The digest with `entry` at `index` (clamped)."""
    entries = list(d.entries)
    entries.insert(max(0, min(len(entries), index)), replace(entry, line=None))
    return replace(d, entries=tuple(entries))


def parse_tags_field(text: str) -> tuple[str, ...]:
    """'#a #b' (or 'a, b') as tags; raises FormatError naming a word that is no tag."""
    out: dict[str, str] = {}
    for word in text.replace(",", " ").split():
        tag = word.lstrip("#")
        if not tag:
            continue
        if not TAG_RE.fullmatch("#" + tag):
            raise FormatError(f"{word!r} is not a tag: use letters, digits, '-' or '_'",
                              path="<tags>")
        out.setdefault(normalize_tag(tag), tag)
    return tuple(out.values())


def commentary_lines(ko: str, en: str) -> tuple[str, ...]:
    """The commentary paragraphs from the Korean and English boxes (one per non-blank line);
    refuses a line the digest format would file under the other language."""
    ko_lines = [line.strip() for line in ko.splitlines() if line.strip()]
    en_lines = [line.strip() for line in en.splitlines() if line.strip()]
    for n, line in enumerate(ko_lines, start=1):
        if not has_hangul(line):
            raise FormatError(f"Korean line {n} ({line[:40]!r}) has no Hangul, so the digest "
                              "format would read it as English: move it to the English box",
                              path="<commentary>")
    for n, line in enumerate(en_lines, start=1):
        if has_hangul(line):
            raise FormatError(f"English line {n} ({line[:40]!r}) contains Hangul, so the "
                              "digest format would read it as Korean: move it to the Korean box",
                              path="<commentary>")
    return (*ko_lines, *en_lines)


def edit_entry(d: Digest, index: int, ko: str, en: str, tags_text: str) -> Digest:
    """The digest with entry `index`'s commentary and tags replaced."""
    entries = list(d.entries)
    entries[index] = replace(entries[index], commentary=commentary_lines(ko, en),
                             tags=parse_tags_field(tags_text))
    return replace(d, entries=tuple(entries))


def entry_changes(before: Digest | None, after: Digest) -> list[str]:
    """What changed between two versions of a draft, one line per change (for approval)."""
    if before is None:
        return [f"first approval: {len(after.entries)} entries"]
    old = {entry_key(e): e for e in before.entries}
    new = {entry_key(e): e for e in after.entries}
    lines = [f"removed: {e.title}" for k, e in old.items() if k not in new]
    lines += [f"added: {e.title}" for k, e in new.items() if k not in old]
    for k, e in new.items():
        was = old.get(k)
        if was is None:
            continue
        if was.notes_ko != e.notes_ko:
            lines.append(f"Korean commentary changed: {e.title}")
        if was.notes_en != e.notes_en:
            lines.append(f"English commentary changed: {e.title}")
        if was.tag_keys != e.tag_keys:
            lines.append(f"tags {' '.join('#' + t for t in was.tags) or '(none)'} → "
                         f"{' '.join('#' + t for t in e.tags) or '(none)'}: {e.title}")
    kept_old = [k for k in old if k in new]
    kept_new = [k for k in new if k in old]
    if kept_old != kept_new:
        lines.append("order changed")
    return lines or ["no change to the entries"]


# --- candidates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CandidateView:
    """A collected paper not in the issue: why it matched, highlighted, and its note."""

    candidate: Candidate
    hits: tuple[tags.RuleHit, ...]
    title_html: Markup
    abstract_html: Markup
    note: notes.Note | None


def highlight(text: str, spans: Sequence[tags.Span]) -> Markup:
    """`text` escaped, with the spans wrapped in <mark>."""
    out: list[str] = []
    pos = 0
    for start, end in sorted(set(spans)):
        if start < pos:
            continue  # overlapping phrases of two rules: the first one marks it
        out.append(str(escape(text[pos:start])))
        out.append(f"<mark>{escape(text[start:end])}</mark>")
        pos = end
    out.append(str(escape(text[pos:])))
    return Markup("".join(out))


def candidate_views(
    settings: Settings, candidates: Sequence[Candidate], in_issue: Sequence[Entry],
    shelf: notes.Notes, tag: str = "", query: str = "",
) -> list[CandidateView]:
    """The day's candidates not in the issue, best first, filtered by tag and text."""
    ids = {e.arxiv_id for e in in_issue if e.arxiv_id is not None}
    titles = {title_key(e.title) for e in in_issue}
    rules = tags.compile_rules(settings.tags)
    by_id = shelf.by_id()
    wanted_tag = normalize_tag(tag) if tag.strip() else None
    words = query.casefold().split()
    views = []
    for c in candidates:
        p = c.paper
        if p.arxiv_id in ids or title_key(p.title) in titles:
            continue
        if wanted_tag is not None and wanted_tag not in {normalize_tag(t) for t in c.tags}:
            continue
        haystack = " ".join((p.title, p.abstract, " ".join(p.authors), p.arxiv_id)).casefold()
        if any(w not in haystack for w in words):
            continue
        hits = tags.explain_match(p, rules)
        views.append(CandidateView(
            c, hits,
            highlight(p.title, [s for h in hits for s in h.title_spans]),
            highlight(p.abstract, [s for h in hits for s in h.abstract_spans]),
            by_id.get(p.arxiv_id),
        ))
    return views


# --- previews: merged against the store only, rendered with one cached Renderer ---------------


@dataclass(frozen=True)
class Preview:
    """The draft of one sha merged (store only) and what could not be resolved."""

    merged: merge.MergeResult
    variants: dict[str, EmailVariant] = field(default_factory=dict)


class Previewer:
    """Merges and renders drafts by sha; the Renderer (and its Jinja environment) is built
    once, and the last few renderings are kept (a preview per variant after each save)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.renderer = render.Renderer(settings)
        self._cache: OrderedDict[str, Preview] = OrderedDict()
        self._lock = threading.Lock()

    def preview(self, conn: sqlite3.Connection, day: date, loaded: Loaded) -> Preview:
        """The merge of this version of the draft (cached by its sha)."""
        assert loaded.digest is not None and loaded.sha is not None
        with self._lock:
            hit = self._cache.get(loaded.sha)
            if hit is not None:
                self._cache.move_to_end(loaded.sha)
                return hit
        lookups = merge.Lookups(  # no api_*: the studio never goes to the network here
            stored_ids=lambda ids: store.get_papers(conn, ids),
            stored_title=lambda title: store.find_papers_by_title(conn, title),
        )
        result = merge.merge_draft(
            day, self.settings.newsletter.title, loaded.digest.entries, lookups,
            store.load_candidates(conn, day), self.settings.draft.more_papers,
        )
        made = Preview(result)
        with self._lock:
            self._cache[loaded.sha] = made
            while len(self._cache) > PREVIEW_CACHE:
                self._cache.popitem(last=False)
        return made

    def forget(self) -> None:
        """Drop every cached merge: the store changed (a build stored papers from arXiv)."""
        with self._lock:
            self._cache.clear()

    def email(self, preview: Preview, variant: str) -> EmailVariant:
        """One variant of the previewed issue, rendered as a reader gets it."""
        with self._lock:
            done = preview.variants.get(variant)
        if done is None:
            done = self.renderer.email(preview.merged.issue, variant)
            with self._lock:
                preview.variants[variant] = done
        return done


# --- the issue's lifecycle: the one adapter over pipeline.core.lifecycle and run ------------------


@dataclass(frozen=True)
class Status:
    """What the status panel shows: `digest status` for the day, as lines."""

    lines: tuple[str, ...]
    next_step: str
    state: str | None
    built_current: bool
    approved_current: bool


def day_status(settings: Settings, day: date, rt: Runtime) -> Status:
    """The day at a glance, from `lifecycle.status` (what `digest status` prints)."""
    from pipeline.core import lifecycle

    s = lifecycle.status(settings, day, rt)
    d = s.draft
    lines = [
        f"state: {s.state or 'nothing collected yet'}",
        f"collected: {s.collected or 'not yet'}"
        + (f" ({s.kept} kept of {s.announced} announced; {s.candidates} candidates)"
           if s.collected == "collected" else ""),
        ("draft: " + (f"{d.entries} entries, {d.commented} with commentary" if d.exists and
                      d.error is None else d.error or "none yet")),
        "build: " + ((f"current ({s.built.at})" if d.built_from_it else
                      "stale: the draft changed since (build to refresh)")
                     if s.built is not None else "none yet"),
        "approval: " + (f"current ({s.approved_at})" if s.approved and d.built_from_it
                        else "not approved for this draft" if s.approval_required
                        else "not required (auto mode)"),
        "published: " + ("yes" if s.published else "no")
        + (" — a correction is waiting for approval" if s.correction_pending else ""),
    ]
    if s.sent_at:
        lines.append(f"sent: {s.sent_at} ({', '.join(f'{n} {k}' for k, n in sorted(s.deliveries.items()))})")
    elif s.pending:
        lines.append(f"readers waiting for it: {s.pending}")
    if s.next_scheduled:
        lines.append(f"next scheduled: {s.next_scheduled}")
    lines += [f"warning: {w}" for w in s.warnings]
    return Status(tuple(lines), s.next_step, s.state, d.built_from_it,
                  s.approved and d.built_from_it)


def last_approved(settings: Settings, day: date) -> Digest | None:
    """The issue as last approved (approval publishes it: the archive's copy), if any."""
    with closing(run.open_store(settings)) as conn:
        published = store.archived_issue(conn, day)
    return None if published is None else Digest(day, published.entries)


def _build_if_stale(settings: Settings, day: date, rt: Runtime) -> None:
    with closing(run.open_store(settings, rt)) as conn:
        current = run.progress(conn, settings, day).built_current
    if not current:
        run.build(settings, day, rt)


def build(settings: Settings, day: date, rt: Runtime) -> None:
    """`digest build` (may look unresolved entries up on arXiv)."""
    run.build(settings, day, rt)


def approve(settings: Settings, day: date, rt: Runtime, allow_uncommented: bool) -> None:
    """Build if the draft changed since the last build, then `digest approve`
    [--allow-uncommented] (which publishes the issue)."""
    _build_if_stale(settings, day, rt)
    run.approve(settings, day, rt, allow_uncommented=allow_uncommented)


def send_test_copy(settings: Settings, day: date, rt: Runtime, to: str, variant: str) -> None:
    """`digest send --to ADDR --variant V`, built first if the draft changed (the copy is
    what the preview shows); records nothing."""
    _build_if_stale(settings, day, rt)
    run.send(settings, day, rt, to=to, variant=variant)


def draft(settings: Settings, day: date, rt: Runtime) -> None:
    """`digest draft`."""
    run.draft(settings, day, rt)


# --- sessions ---------------------------------------------------------------------------------


@dataclass
class Session:
    """One logged-in browser: its CSRF token and messages waiting for the next page."""

    csrf: str
    messages: list[tuple[str, str]] = field(default_factory=list)  # (level, text)


@dataclass
class Conflict:
    """A refused save kept for its page: the file on disk and the edit that was not saved."""

    disk: str
    mine: str
    entry: str | None = None  # the edited entry as it is on disk now (an entry's save)


def entry_fields(ko: str, en: str, tags_text: str) -> str:
    """An entry's editable fields as one text, for comparing an edit with the disk."""
    return f"Korean:\n{ko}\n\nEnglish:\n{en}\n\nTags: {tags_text}"


def disk_entry(disk: bytes, key: str) -> str:
    """The fields of the entry `key` in the draft bytes `disk`, or why there is none."""
    try:
        parsed = digest.parse_digest(digest.decode_text(disk, "<draft>"), "<draft>")
    except FormatError as exc:
        return f"(the draft on disk does not parse: {exc})"
    for e in parsed.entries:
        if entry_key(e) == key:
            return entry_fields("\n".join(e.notes_ko), "\n".join(e.notes_en),
                                " ".join("#" + t for t in e.tags))
    return "(this entry is not in the draft on disk any more)"


class Studio:
    """The studio's state: settings, the day, logins, the preview cache, the undo slot."""

    def __init__(
        self, settings: Settings, day: date, rt: Runtime, *, token: str | None = None,
        password: str | None = None, to: str | None = None,
        allowed_hosts: Collection[str] | None = None,
    ) -> None:
        self.settings = settings
        self.day = day
        self.rt = rt
        self.token: str | None = token or secrets.token_urlsafe(32)
        self.password = password
        self.to = to or settings.arxiv.contact
        self.allowed_hosts = allowed_hosts
        self.cookie = "digest_studio_" + secrets.token_hex(4)  # two studios, two cookies
        self.sessions: dict[str, Session] = {}
        self.previewer = Previewer(settings)
        self.removed: tuple[Entry, int] | None = None  # the last removal, for undo
        self.conflicts: OrderedDict[str, Conflict] = OrderedDict()
        self.lock = threading.Lock()

    def use_token(self, given: str) -> bool:
        """True (once) for the login token."""
        with self.lock:
            if self.token is None or not hmac.compare_digest(given.encode(),
                                                             self.token.encode()):
                return False
            self.token = None
            return True

    def new_session(self) -> str:
        """A new session id (the cookie's value)."""
        sid = secrets.token_urlsafe(32)
        with self.lock:
            self.sessions[sid] = Session(secrets.token_urlsafe(32))
        return sid

    def session(self) -> Session | None:
        """The request's session, if its cookie names one."""
        sid = request.cookies.get(self.cookie, "")
        with self.lock:
            for known, sess in self.sessions.items():
                if hmac.compare_digest(known.encode(), sid.encode()):
                    return sess
        return None

    @contextmanager
    def db(self) -> Iterator[sqlite3.Connection]:
        """One connection per request (waitress serves from threads)."""
        with closing(run.open_store(self.settings)) as conn:
            yield conn

    def capture(self) -> tuple[Runtime, list[str]]:
        """A runtime whose messages are kept for the page (and echoed as usual)."""
        said: list[str] = []

        def echo(message: str) -> None:
            said.append(message)
            self.rt.echo(message)

        return replace(self.rt, echo=echo, progress=False), said


# --- the web app ------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only."""
    if host.strip("[]") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
    variants = settings.variants

    def page(template: str, code: int = 200, **ctx: Any) -> AnyResponse:
        sess = studio.session()
        messages = []
        if sess is not None:
            with studio.lock:
                messages, sess.messages = sess.messages, []
        html = render_template(
            template, day=day, title=settings.newsletter.title,
            csrf=sess.csrf if sess else "", messages=messages, variants=variants, **ctx,
        )
        return Response(html, code, content_type="text/html; charset=utf-8")

    def forbidden(reason: str) -> AnyResponse:
        return page("message.html", 403, heading="Forbidden", text=reason, show_nav=False)

    @app.errorhandler(StoreError)
    def store_failed(exc: StoreError) -> AnyResponse:
        # A missing, locked or corrupt database: one page naming it, not a 500 traceback.
        resp = page("message.html", 503, heading="The database is unavailable",
                    text=str(exc), show_nav=False)
        resp.headers["Retry-After"] = "30"
        return resp

    def flash(level: str, text: str) -> None:
        sess = studio.session()
        if sess is not None:
            with studio.lock:
                sess.messages.append((level, text))

    def wants_json() -> bool:
        return request.headers.get("X-Requested-With") == "studio"

    @app.before_request
    def guard() -> AnyResponse | None:
        if studio.allowed_hosts is not None:
            host = urlsplit("//" + request.host).hostname or ""
            if host not in studio.allowed_hosts:  # a DNS-rebinding page on another name
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
        resp.headers["Content-Security-Policy"] = PREVIEW_CSP if preview else PAGE_CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["X-Frame-Options"] = "SAMEORIGIN" if preview else "DENY"
        resp.headers["Referrer-Policy"] = "same-origin"  # "no-referrer" makes Origin null
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

    # -- views --

    def lint_by_entry(conn: sqlite3.Connection, loaded: Loaded) -> dict[int, list[lint.Finding]]:
        d = loaded.digest
        if d is None:
            return {}
        ids = [e.arxiv_id for e in d.entries if e.arxiv_id]
        findings = lint.lint_entries(  # as `digest check` lints a draft
            d.entries, languages=settings.newsletter.languages,
            known_tags=[t.name for t in settings.tags],
            stored_ids=set(store.get_papers(conn, ids)), language_level="error",
        )
        index = {e.line: i for i, e in enumerate(d.entries)}
        out: dict[int, list[lint.Finding]] = {}
        for f in findings:
            out.setdefault(index.get(f.line, -1), []).append(f)
        return out

    def lint_json(found: dict[int, list[lint.Finding]]) -> dict[str, list[dict[str, str]]]:
        return {str(i): [{"level": f.level, "message": f.message} for f in fs]
                for i, fs in found.items()}

    def day_page(code: int = 200, variant: str = variants[-1], part: str = "html",
                 overrides: dict[int, tuple[str, str, str]] | None = None,
                 refused: dict[int, str] | None = None) -> AnyResponse:
        """The day view: entries, status and actions, the preview; `overrides` puts text
        that was refused back into its entry's boxes, beside the reason."""
        loaded = load_draft(settings, day)
        status = day_status(settings, day, studio.rt)
        if loaded.digest is None:
            return page("nodraft.html", code, loaded=loaded, status=status,
                        text=loaded.data.decode("utf-8", "replace"))
        with studio.db() as conn:
            made = studio.previewer.preview(conn, day, loaded)
            found = lint_by_entry(conn, loaded)
        return page(
            "day.html", code, loaded=loaded, status=status, lint=found,
            unresolved=dict(zip(made.merged.issue.unresolved, made.merged.problems,
                                strict=True)),
            variant=variant, part=part,
            changes=entry_changes(last_approved(settings, day), loaded.digest), to=studio.to,
            undo=studio.removed, tag_options=[t.name for t in settings.tags],
            overrides=overrides or {}, refused=refused or {},
        )

    @app.get("/")
    def day_view() -> AnyResponse:
        variant = request.args.get("variant", variants[-1])
        part = request.args.get("part", "html")
        if variant not in variants or part not in ("html", "txt"):
            abort(404)
        return day_page(variant=variant, part=part)

    @app.get("/candidates")
    def candidates() -> AnyResponse:
        tag = request.args.get("tag", "")
        query = request.args.get("q", "")
        loaded = load_draft(settings, day)
        with studio.db() as conn:
            found = store.load_candidates(conn, day)
        views = candidate_views(settings, found, loaded.entries,
                                notes.read_notes(settings.paths.notes), tag, query)
        return page("candidates.html", loaded=loaded, views=views, tag=tag, q=query,
                    tag_options=[t.name for t in settings.tags], total=len(found))

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
        unsubscribe = site.preview_unsubscribe_url(settings)
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
        return conflict_response(found, 200)

    def conflict_response(found: Conflict, status: int) -> AnyResponse:
        theirs = found.entry if found.entry is not None else found.disk
        diff = "\n".join(difflib.unified_diff(
            theirs.splitlines(), found.mine.splitlines(), "on disk", "your edit",
            lineterm="", n=1))
        return page("conflict.html", status, disk=found.disk, mine=found.mine,
                    entry=found.entry, diff=diff)

    # -- changes to the draft --

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

    def json_reply(code: int, **data: Any) -> AnyResponse:
        resp = jsonify(**data)
        resp.status_code = code
        return resp

    def conflict_reply(disk: bytes, mine: str, entry: str | None = None) -> AnyResponse:
        """409: the conflict page (or, for a fetch, where it is); nothing was written."""
        found = Conflict(disk.decode("utf-8", "replace"), mine, entry)
        cid = secrets.token_urlsafe(8)
        with studio.lock:
            studio.conflicts[cid] = found
            while len(studio.conflicts) > KEPT_CONFLICTS:
                studio.conflicts.popitem(last=False)
        if wants_json():
            return json_reply(409, conflict=f"/conflict/{cid}")
        return conflict_response(found, 409)

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

    # -- the issue's lifecycle --

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
