"""The studio over HTTP (real waitress, real newsletter directory): login, CSRF, headers,
escaping, candidates, refusals, what a text editor saved, previews without network, the
lifecycle actions; and its pure parts (edits, why a tag matched, what changed)."""

from __future__ import annotations

import email
import email.policy
import re
import socket
from contextlib import closing
from typing import Any

import pytest
import requests

from pipeline import services, store
from pipeline.collect import tags
from pipeline.core.config import Settings, TagRule
from pipeline.core.digest_format import parse_digest, read_digest
from pipeline.core.errors import FormatError, InputError
from pipeline.core.models import Candidate, Digest, Entry
from pipeline.interfaces import studio
from tests.render_support import HOSTILE_NOTE, HOSTILE_TITLE
from tests.sample_day import sample_papers
from tests.studio_support import DAY, Running, login, runtime


def tokens(html: str) -> dict[str, str]:
    """The CSRF token and draft sha a page's forms carry."""
    return {name: re.search(rf'name="{name}" value="([^"]*)"', html)[1]  # type: ignore[index]
            for name in ("csrf", "sha")}


def draft_bytes(settings: Settings) -> bytes:
    return services.draft_path(settings, DAY).read_bytes()


# --- safe by default --------------------------------------------------------------------------


def test_without_the_token_or_with_a_forged_one_or_a_forged_cookie_it_is_403(
    running: Running,
) -> None:
    anon = requests.Session()
    for path in ("/", "/candidates", "/preview/all.html", "/preview/ko.txt"):
        assert anon.get(running.url + path).status_code == 403, path
    assert anon.get(running.url + "/login?token=forged").status_code == 403
    cookie = running.app.config["STUDIO"].cookie
    assert anon.get(running.url + "/", cookies={cookie: "forged-session"}).status_code == 403

    first = anon.get(running.login_url, allow_redirects=False)
    assert first.status_code == 303 and first.headers["Location"] == "/"  # a clean URL
    set_cookie = first.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    assert anon.get(running.url + "/").status_code == 200
    # The token works once: a second browser (or someone who saw the URL) gets nothing.
    assert requests.get(running.login_url).status_code == 403


def test_a_post_without_the_csrf_token_or_from_another_site_is_403_and_changes_nothing(
    running: Running, day: Settings
) -> None:
    sess = login(running)
    t = tokens(sess.get(running.url + "/").text)
    before = draft_bytes(day)
    url = running.url + "/entry/remove"
    assert sess.post(url, data={"sha": t["sha"], "i": "0"}).status_code == 403
    assert sess.post(url, data={"sha": t["sha"], "i": "0", "csrf": "forged"}).status_code == 403
    assert sess.post(url, data={**t, "i": "0"},
                     headers={"Origin": "http://evil.example"}).status_code == 403
    assert requests.post(url, data={**t, "i": "0"}).status_code == 403  # no session
    assert draft_bytes(day) == before
    ok = sess.post(url, data={**t, "i": "0"}, allow_redirects=False)
    assert ok.status_code == 303 and draft_bytes(day) != before


@pytest.mark.slow
def test_security_headers_and_a_foreign_host_name(running: Running) -> None:
    sess = login(running)
    page = sess.get(running.url + "/")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-store"
    assert "<script>" not in page.text and " on" + "click=" not in page.text  # no inline script
    preview = sess.get(running.url + "/preview/all.html")
    assert "sandbox" in preview.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in preview.headers["Content-Security-Policy"]
    assert 'sandbox=""' in page.text  # the iframe too
    # A DNS-rebinding page reaches the port under another name: refused.
    assert sess.get(running.url + "/", headers={"Host": "evil.example"}).status_code == 403


@pytest.mark.slow
def test_the_printed_url_logs_in_once_on_the_real_server(day: Settings) -> None:
    from tests.studio_support import running as run_server

    server, url = studio.make_studio_server(day, DAY, runtime())
    assert url.startswith("http://127.0.0.1:") and "/login?token=" in url
    with run_server(server):
        sess = requests.Session()
        assert sess.get(url).url == url.split("/login")[0] + "/"
        assert "Approve this issue" in sess.get(url.split("/login")[0] + "/").text
        assert requests.get(url).status_code == 403


def test_another_host_than_loopback_needs_a_password(
    day: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(studio.PASSWORD_ENV, raising=False)
    with pytest.raises(InputError, match=f"refusing to listen on 0.0.0.0.*{studio.PASSWORD_ENV}"):
        studio.serve_studio(day, DAY, runtime(), host="0.0.0.0")
    assert studio.is_loopback("127.0.0.1") and studio.is_loopback("::1")
    assert studio.is_loopback("localhost") and not studio.is_loopback("192.168.1.5")

    client = studio.create_app(day, DAY, runtime(), password="correct horse").test_client()
    form = client.get("/login")
    assert form.status_code == 200 and 'type="password"' in form.text
    assert client.post("/login", data={"password": "wrong"}).status_code == 403
    assert client.get("/").status_code == 403
    assert client.post("/login", data={"password": "correct horse"}).status_code == 303
    assert client.get("/").status_code == 200


@pytest.mark.slow
def test_arxiv_and_note_text_is_escaped(running: Running, day: Settings) -> None:
    hostile = sample_papers()[0]
    from dataclasses import replace

    hostile = replace(hostile, arxiv_id="2412.99999", title=HOSTILE_TITLE + " reward model",
                      abstract="</p><script>alert(5)</script> a process reward model",
                      authors=('Eve "><svg onload=alert(4)>',))
    with closing(store.connect(day.db_path)) as conn, store.transaction(conn):
        store.upsert_paper(conn, hostile, DAY)
        store.save_candidates(conn, DAY, [Candidate(hostile, ("reward-model",), 99.0)])
    note = day.paths.notes / "241205 Hostile.md"
    note.write_text(f"https://arxiv.org/abs/2412.99999\n{HOSTILE_NOTE}\n<english>\n"
                    "English </textarea><script>alert(6)</script>\n</english>\n", "utf-8")
    sess = login(running)
    page = sess.get(running.url + "/candidates").text
    assert "<script>alert" not in page and "<svg onload" not in page
    assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;" in page
    assert "<mark>reward model</mark>" in page  # highlighting adds markup, escaping stays

    t = tokens(page)
    sess.post(running.url + "/add", data={**t, "arxiv_id": "2412.99999"})
    view = sess.get(running.url + "/").text
    assert "<script>alert" not in view and "</textarea><script>" not in view
    preview = sess.get(running.url + "/preview/all.html").text
    assert "<script>alert" not in preview


# --- the day's papers -------------------------------------------------------------------------


@pytest.mark.slow
def test_candidates_are_the_papers_not_in_the_issue_best_first_with_why_and_notes(
    running: Running, day: Settings
) -> None:
    sess = login(running)
    page = sess.get(running.url + "/candidates").text
    ids = re.findall(r'<article class="candidate card" id="c-([^"]+)"', page)
    with closing(store.connect(day.db_path)) as conn:
        everything = store.load_candidates(conn, DAY)
    in_issue = {e.arxiv_id for e in read_digest(services.draft_path(day, DAY)).entries}
    assert ids == [c.paper.arxiv_id for c in everything if c.paper.arxiv_id not in in_issue]
    assert ids and not in_issue & set(ids)
    # The two notes written after the draft show beside their papers.
    assert page.count("your note ·") == 2

    only = sess.get(running.url + "/candidates", params={"tag": "vq"}).text
    shown = re.findall(r'id="c-([^"]+)"', only)
    assert shown and all("vq" in c.tags for c in everything if c.paper.arxiv_id in shown)
    assert "#vq</span>" in only and re.search(r"phrases: <mark>[^<]+</mark>", only)
    text = sess.get(running.url + "/candidates", params={"q": "TokenFlow"}).text
    assert re.findall(r'id="c-([^"]+)"', text) == ["2412.03069"]


def test_explain_match_gives_the_same_tags_as_match_paper_and_where_the_words_are(
    day: Settings,
) -> None:
    rules = tags.compile_rules(day.tags)
    for paper in sample_papers():
        hits = tags.explain_match(paper, rules)
        assert tuple(h.name for h in hits) == tags.match_paper(paper, rules).tags
        for h in hits:
            for a, b in h.title_spans:
                assert tags._fold(paper.title[a:b]).split()[0] in " ".join(
                    tags._fold(p) for p in h.phrases)
    from tests.sample_day import paper

    weird = paper("2412.00001", "Straße: A REWARD  MODELS study", abstract="Die Straße.")
    rule = tags.compile_rules([TagRule("rm", keywords=("reward model",))])
    (hit,) = tags.explain_match(weird, rule)
    assert [weird.title[a:b] for a, b in hit.title_spans] == ["REWARD  MODELS"]
    assert hit.phrases == ("REWARD MODELS",)


# --- editing ----------------------------------------------------------------------------------


def test_text_the_format_cannot_hold_is_refused_with_the_reason_and_nothing_is_written(
    running: Running, day: Settings
) -> None:
    sess = login(running)
    t = tokens(sess.get(running.url + "/").text)
    before = draft_bytes(day)
    headers = {"X-Requested-With": "studio"}
    cases = {
        "#tags line": {"ko": "한국어", "en": "Fine.\n#not-commentary", "tags": "#vq"},
        "has no Hangul": {"ko": "English in the Korean box", "en": "x", "tags": ""},
        "contains Hangul": {"ko": "한국어", "en": "한국어 in English", "tags": ""},
        "is not a tag": {"ko": "한국어", "en": "English.", "tags": "#ok not!a!tag"},
        "title and authors": {"ko": "한국어", "en": "English.\n(Alice, Bob)\nMore.", "tags": ""},
    }
    for reason, fields in cases.items():
        resp = sess.post(running.url + "/entry/save", data={**t, "i": "1", **fields},
                         headers=headers)
        assert resp.status_code == 422 and reason in resp.json()["error"], (reason, resp.text)
        assert draft_bytes(day) == before

    ok = sess.post(running.url + "/entry/save", headers=headers, data={
        **t, "i": "1", "ko": "새 한국어 논평.", "en": "A new English comment.", "tags": "#vq, corpus"})
    body = ok.json()
    assert ok.status_code == 200 and body["tags"] == "#vq #corpus"
    assert body["sha"] == studio.sha256(draft_bytes(day))
    entry = read_digest(services.draft_path(day, DAY)).entries[1]
    assert entry.commentary == ("새 한국어 논평.", "A new English comment.")
    # The same lint as `digest check`, in place: a tag not in the config, by entry.
    bad = sess.post(running.url + "/entry/save", headers=headers, data={
        **t, "sha": body["sha"], "i": "1", "ko": "한국어만.", "en": "", "tags": "#unknown-tag"})
    lint = bad.json()["lint"]["1"]
    messages = " ".join(f["message"] for f in lint)
    assert "#unknown-tag not in the config" in messages
    assert "Korean commentary without English" in messages
    assert {f["level"] for f in lint} == {"error", "warning"}


def test_a_stale_page_gets_a_conflict_and_the_text_editors_save_shows_at_the_next_view(
    running: Running, day: Settings
) -> None:
    sess = login(running)
    t = tokens(sess.get(running.url + "/").text)
    path = services.draft_path(day, DAY)
    edited = path.read_text("utf-8").replace("Free Process Rewards without Process Labels\n",
                                             "Free Process Rewards without Process Labels\n", 1)
    edited = edited.replace("#reward-model", "#reward-model #edited-in-vim", 1)
    path.write_text(edited, "utf-8")
    for action, data in (("/entry/move", {"i": "0", "dir": "down"}), ("/entry/remove", {"i": "0"}),
                         ("/entry/save", {"i": "0", "ko": "한", "en": "mine", "tags": ""})):
        resp = sess.post(running.url + action, data={**t, **data})
        assert resp.status_code == 409 and "Not saved: the draft changed on disk" in resp.text
        assert path.read_text("utf-8") == edited
    assert "mine" in resp.text  # the refused edit is on the page to copy
    page = sess.get(running.url + "/").text
    assert "#edited-in-vim" in page
    assert "#edited-in-vim" in sess.get(running.url + "/preview/all.html").text


def test_previews_never_use_the_network_and_show_what_the_store_cannot_resolve(
    running: Running, day: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[Any] = []
    real = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1"):
            attempts.append(address)
            raise OSError("offline")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    path = services.draft_path(day, DAY)
    path.write_text(path.read_text("utf-8").rstrip("\n") + "\nA Paper Nobody Stored\n(Ann Other)"
                    "\narXiv:2412.88888\nAn abstract.\n한국어 논평.\nEnglish note.\n#vq\n", "utf-8")
    sess = login(running)
    page = sess.get(running.url + "/").text
    assert "unresolved: line" in page and "Build looks it up on arXiv" in page
    assert "A Paper Nobody Stored" in sess.get(running.url + "/preview/en.html").text
    assert attempts == []


def test_undo_brings_back_the_last_removed_entry_with_its_commentary(
    running: Running, day: Settings
) -> None:
    sess = login(running)
    before = read_digest(services.draft_path(day, DAY))
    t = tokens(sess.get(running.url + "/").text)
    sess.post(running.url + "/entry/remove", data={**t, "i": "2"})
    assert len(read_digest(services.draft_path(day, DAY)).entries) == len(before.entries) - 1
    t = tokens(sess.get(running.url + "/").text)
    sess.post(running.url + "/undo", data=t)
    assert studio._comparable(read_digest(services.draft_path(day, DAY))) == studio._comparable(before)
    t = tokens(sess.get(running.url + "/").text)
    assert "nothing to undo" in sess.post(running.url + "/undo", data=t).text


# --- the issue's lifecycle --------------------------------------------------------------------


@pytest.mark.slow
def test_approve_refuses_uncommented_entries_unless_allowed_and_shows_what_changed(
    running: Running, day: Settings
) -> None:
    sess = login(running)
    page = sess.get(running.url + "/candidates").text
    t = tokens(page)
    bare = next(block for block in page.split('<article class="candidate')[1:]
                if "your note" not in block)
    arxiv_id = re.search(r'name="arxiv_id" value="([^"]+)"', bare)[1]  # type: ignore[index]
    sess.post(running.url + "/add", data={**t, "arxiv_id": arxiv_id})
    t = tokens(sess.get(running.url + "/").text)
    # Approving publishes: a plain POST only shows what would be published, to confirm.
    confirm = sess.post(running.url + "/approve", data=t).text
    assert "Approve the issue of" in confirm and "Approve and publish" in confirm
    assert "(no commentary)" in confirm and 'name="confirm" value="1"' in confirm
    with closing(store.connect(day.db_path)) as conn:
        record = store.get_issue(conn, DAY)
        assert record is not None and record.approved_hash is None
    refused = sess.post(running.url + "/approve", data={**t, "confirm": "1"}).text
    assert "has no commentary" in refused and "approval: not approved" in refused
    # The refusal points to the checkbox, not to the command line's flag.
    assert "tick “allow entries without commentary”" in refused
    assert "--allow-uncommented" not in refused.split('id="approve-msg"')[1].split("</div>")[0]
    approved = sess.post(running.url + "/approve",
                         data={**t, "confirm": "1", "allow_uncommented": "1"}).text
    assert "approval: current" in approved and "no change to the entries" in approved
    with closing(store.connect(day.db_path)) as conn:
        assert len(services.approved_variants(conn, day, DAY)) == 3
    assert (day.paths.site / "issues" / f"{DAY}.html").exists()  # approving publishes

    t = tokens(approved)
    sess.post(running.url + "/entry/remove", data={**t, "i": "0"})
    page = sess.get(running.url + "/").text
    assert "removed: Free Process Rewards without Process Labels" in page
    assert "approval: not approved" in page


@pytest.mark.slow
def test_a_test_copy_of_each_variant_goes_to_the_curator(running: Running, day: Settings) -> None:
    sess = login(running)
    t = tokens(sess.get(running.url + "/").text)
    for variant, date_text in (("ko", "2024년 12월 5일"), ("en", "December 5, 2024")):
        page = sess.post(running.url + "/test-copy", data={**t, "variant": variant}).text
        assert f"sent a {variant} test copy to curator@example.org" in page
        (sent,) = (day.paths.outbox / DAY.isoformat() / "test" / variant).glob("*.eml")
        message = email.message_from_bytes(sent.read_bytes(), policy=email.policy.default)
        assert message["Subject"].startswith("[TEST] ") and date_text in message["Subject"]
    with closing(store.connect(day.db_path)) as conn:
        assert store.get_issue(conn, DAY).approved_hash is None  # type: ignore[union-attr]


# --- pure parts -------------------------------------------------------------------------------


def _digest() -> Digest:
    entries = tuple(Entry(f"Title {n}", ("A",), "Abstract.", ("한국어.", "English."), ("t",),
                          arxiv_id=f"2412.0000{n}") for n in range(4))
    return Digest(DAY, entries)


def test_moves_removals_and_what_changed() -> None:
    d = _digest()
    assert [e.title for e in studio.move_entry(d, 0, -1).entries][:2] == ["Title 0", "Title 1"]
    assert [e.title for e in studio.move_entry(d, 3, -1).entries][2:] == ["Title 3", "Title 2"]
    less, gone = studio.remove_entry(d, 1)
    assert studio.insert_entry(less, 1, gone) == d
    after = studio.edit_entry(studio.move_entry(less, 0, 1), 0, "바뀐 한국어.", "English.", "#u")
    changes = studio.entry_changes(d, after)
    assert changes == ["removed: Title 1", "Korean commentary changed: Title 2",
                       "tags #t → #u: Title 2", "order changed"]
    assert studio.entry_changes(None, d) == ["first approval: 4 entries"]


def test_draft_text_refuses_what_would_not_read_back() -> None:
    d = _digest()
    no_abstract = studio.edit_entry(
        Digest(DAY, (Entry("T", ("A",), "", arxiv_id="2412.00001"),)), 0, "", "English.", "")
    with pytest.raises(FormatError, match="first English line would read as the abstract"):
        studio.draft_text(no_abstract)
    text = studio.draft_text(d)
    assert studio._comparable(parse_digest(text)) == studio._comparable(d)


def test_the_studio_command_refuses_another_host_without_a_password_in_one_line(
    day: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.interfaces import cli

    monkeypatch.delenv(studio.PASSWORD_ENV, raising=False)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--config", str(day.root / "config" / "digest.toml"), "studio",
                  "--date", DAY.isoformat(), "--host", "0.0.0.0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "DIGEST_STUDIO_PASSWORD" in err[0]


def test_a_draft_that_does_not_parse_is_shown_with_its_error_and_changes_wait(
    running: Running, day: Settings
) -> None:
    sess = login(running)
    t = tokens(sess.get(running.url + "/").text)
    path = services.draft_path(day, DAY)
    broken = path.read_text("utf-8").replace("#reward-model\n", "", 1)
    path.write_text(broken, "utf-8")
    page = sess.get(running.url + "/")
    assert page.status_code == 200 and "expected a #tags line" in page.text
    assert "2024-12-05.txt:" in page.text and "Fix " in page.text
    resp = sess.post(running.url + "/entry/move", data={**t, "i": "0", "dir": "down"})
    assert "cannot be edited here" in resp.text and path.read_text("utf-8") == broken


def test_without_a_draft_the_studio_offers_to_draft_the_day(
    running: Running, day: Settings
) -> None:
    sess = login(running)
    path = services.draft_path(day, DAY)
    path.unlink()
    page = sess.get(running.url + "/").text
    assert f"no draft for {DAY} yet" in page and 'action="/draft"' in page
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)[1]  # type: ignore[index]
    done = sess.post(running.url + "/draft", data={"csrf": csrf})
    assert path.exists() and "drafted" in done.text and "Approve this issue" in done.text
