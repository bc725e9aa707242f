"""The studio's triage and in-place editing over HTTP (real waitress, real newsletter
directories): candidates ranked and paged on a real-sized day, picks and dismissals in the
store, papers added by id or URL (the recorded arXiv API on loopback), per-entry conflicts,
the undo history, bulk removal, moves to a position, notes written later, unique test
copies, papers already sent, send only when confirmed."""

from __future__ import annotations

import email
import email.policy
import re
from contextlib import closing
from datetime import date
from pathlib import Path

import pytest

from pipeline import services, store
from pipeline.core.config import Settings
from pipeline.core.digest_format import read_digest
from pipeline.core.models import Issue
from pipeline.curate.order import candidate_order
from pipeline.interfaces import present
from pipeline.interfaces.studio.candidates import PAGE_SIZE, paper_ref
from tests.arxiv_support import API_2026
from tests.studio_support import (
    DAY,
    REAL_DAY,
    Running,
    login,
    real_sized_day,
    runtime,
    serving,
)
from tests.support import Reply, edit_newsletter, recording_server

JSON = {"X-Requested-With": "studio"}


@pytest.fixture(scope="module")
def real_day(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return real_sized_day(tmp_path_factory.mktemp("real") / "news")


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html)[1]  # type: ignore[index]


def entry_forms(html: str) -> list[dict[str, str]]:
    """Each entry's key and fingerprint, as its forms carry them."""
    return [{"key": k, "fp": f} for k, f in re.findall(
        r'<article class="entry card" id="e\d+" data-index="\d+" data-key="([^"]+)" '
        r'data-fp="([^"]+)"', html)]


def draft(settings: Settings, day: date = DAY) -> list[str]:
    return [e.title for e in read_digest(services.draft_path(settings, day)).entries]


# --- ranking, triage, paging on a real-sized day ---------------------------------------------


def test_a_real_sized_day_is_triaged_page_by_page_best_first_and_remembered(
    real_day: Settings,
) -> None:
    with closing(store.connect(real_day.db_path)) as conn:
        everything = store.load_candidates(conn, REAL_DAY)
        collected = store.get_day(conn, REAL_DAY)
        assert collected is not None and collected.announced > 1500
    assert len(everything) > 2 * PAGE_SIZE
    assert draft(real_day, REAL_DAY) == []  # no notes: the draft holds nothing by default
    ranked = [c.paper.arxiv_id for c in candidate_order(everything)]
    with serving(real_day, day=REAL_DAY) as s:
        sess = login(s)
        first = sess.get(s.url + "/candidates")
        assert len(first.content) < 150_000, len(first.content)  # the first page stays light
        shown = re.findall(r'id="c-([^"]+)"', first.text)
        assert shown == ranked[:PAGE_SIZE]  # candidate_order, one page of it
        second = re.findall(r'id="c-([^"]+)"', sess.get(s.url + "/candidates?page=2").text)
        assert second == ranked[PAGE_SIZE : 2 * PAGE_SIZE]

        token = csrf(first.text)
        picked = sess.post(s.url + "/triage", headers=JSON, data={
            "csrf": token, "state": "picked", "arxiv_id": ranked[0]})
        assert picked.status_code == 200 and picked.json()["state"] == "picked"
        gone = sess.post(s.url + "/triage", headers=JSON, data={
            "csrf": token, "state": "dismissed", "ids": [ranked[1], ranked[2]]})
        assert gone.json()["ids"] == [ranked[1], ranked[2]]
        with closing(store.connect(real_day.db_path)) as conn:
            states = store.triage_states(conn, REAL_DAY)
        assert states[ranked[0]] == "picked" and states[ranked[1]] == states[ranked[2]] == "dismissed"
        assert states[ranked[3]] == "seen" and states[ranked[2 * PAGE_SIZE - 1]] == "seen"
        assert ranked[2 * PAGE_SIZE] not in states  # never shown
        assert draft(real_day, REAL_DAY)[0] == everything[[c.paper.arxiv_id for c in everything]
                                                          .index(ranked[0])].paper.title
        # The open list skips the pick (in the issue) and the dismissals; "dismissed" shows them.
        again = re.findall(r'id="c-([^"]+)"', sess.get(s.url + "/candidates").text)
        assert again == ranked[3 : 3 + PAGE_SIZE]
        dismissed = sess.get(s.url + "/candidates", params={"show": "dismissed"}).text
        assert re.findall(r'id="c-([^"]+)"', dismissed) == [ranked[1], ranked[2]]
        # A pasted abs URL (or pdf URL, or arXiv:id vN) finds the paper.
        for pasted in (f"https://arxiv.org/abs/{ranked[5]}v2", f"arXiv:{ranked[5]}",
                       f" https://arxiv.org/pdf/{ranked[5]} "):
            found = sess.get(s.url + "/candidates", params={"q": pasted}).text
            assert re.findall(r'id="c-([^"]+)"', found) == [ranked[5]], pasted


def test_paper_refs() -> None:
    assert paper_ref("https://arxiv.org/abs/2412.01981v3") == "2412.01981"
    assert paper_ref("http://export.arxiv.org/abs/hep-th/9901001") == "hep-th/9901001"
    assert paper_ref("2412.01981") == "2412.01981"
    assert paper_ref("reward model 2412.01981") is None
    assert paper_ref("https://example.org/abs/2412.01981") is None


def test_any_paper_is_added_by_its_url_even_one_no_tag_matched(
    day: Settings, tmp_path: Path
) -> None:
    body = next(API_2026.glob("id_1605.08386_*.xml")).read_bytes()
    with recording_server() as api:
        api.route("/api/query", Reply(body))
        settings = edit_newsletter(day.root / "config" / "digest.toml",
                                   arxiv={"api_url": f"{api.url}/api/query"})
        with serving(settings) as s:
            sess = login(s)
            page = sess.get(s.url + "/candidates").text
            bad = sess.post(s.url + "/add", headers=JSON,
                            data={"csrf": csrf(page), "ref": "not a paper"})
            assert bad.status_code == 422 and "no arXiv id or arXiv URL" in bad.json()["error"]
            added = sess.post(s.url + "/add", headers=JSON, data={
                "csrf": csrf(page), "ref": "https://arxiv.org/abs/1605.08386v1"})
            assert added.status_code == 200, added.text
        assert api.count("/api/query") == 1
    assert draft(settings)[-1] == "Heat-bath random walks with Markov bases"
    with closing(store.connect(settings.db_path)) as conn:
        assert "1605.08386" in store.get_papers(conn, ["1605.08386"])  # a rebuild needs no API
        assert store.triage_states(conn, DAY)["1605.08386"] == "picked"


# --- editing in place ------------------------------------------------------------------------


def test_a_text_editors_save_conflicts_only_with_the_entry_it_changed(
    running: Running, day: Settings
) -> None:
    sess = login(running)
    page = sess.get(running.url + "/").text
    token, ids = csrf(page), entry_forms(page)
    path = services.draft_path(day, DAY)
    edited = path.read_text("utf-8").replace("#reward-model", "#reward-model #rl", 1)
    path.write_text(edited, "utf-8")  # entry 1 changes in the editor
    titles = draft(day)

    saved = sess.post(running.url + "/entry/save", headers=JSON, data={
        "csrf": token, **ids[1], "ko": "다른 항목의 논평.", "en": "Another entry.", "tags": ""})
    assert saved.status_code == 200 and saved.json()["fp"] != ids[1]["fp"]
    moved = sess.post(running.url + "/entry/move", headers=JSON,
                      data={"csrf": token, **ids[2], "to": "6"})
    assert moved.status_code == 200 and "moved to 6" in moved.json()["message"]
    assert 'id="e5"' in moved.json()["html"]  # the entries part, to put in place
    text = path.read_text("utf-8")
    assert "#reward-model #rl" in text and "Another entry." in text  # both kept
    assert draft(day)[5] == titles[2]

    for action, data in (("/entry/save", {"ko": "", "en": "mine", "tags": ""}),
                         ("/entry/remove", {}), ("/entry/move", {"to": "3"})):
        refused = sess.post(running.url + action, headers=JSON,
                            data={"csrf": token, **ids[0], **data})
        assert refused.status_code == 409 and refused.json()["conflict"].startswith("/conflict/")
        assert path.read_text("utf-8") == text
    conflict = sess.get(running.url + refused.json()["conflict"]).text
    assert "#reward-model #rl" in conflict


def test_undo_is_a_history_and_removals_go_in_bulk(running: Running, day: Settings) -> None:
    sess = login(running)
    page = sess.get(running.url + "/").text
    token, ids = csrf(page), entry_forms(page)
    before = draft(day)
    sess.post(running.url + "/entry/remove", data={"csrf": token, **ids[1]})
    sess.post(running.url + "/entry/remove", data={"csrf": token, "keys": [ids[4]["key"],
                                                                          ids[6]["key"]]})
    sess.post(running.url + "/entry/remove", headers=JSON, data={"csrf": token, **ids[0]})
    assert draft(day) == [t for n, t in enumerate(before) if n not in (0, 1, 4, 6)]
    shown = sess.get(running.url + "/").text
    assert shown.count('action="/undo"') == 4  # every removal offered, the newest first
    for _ in range(4):
        assert sess.post(running.url + "/undo", data={"csrf": token}).status_code == 200
    assert draft(day) == before
    assert "nothing to undo" in sess.post(running.url + "/undo", data={"csrf": token}).text
    with closing(store.connect(day.db_path)) as conn:
        assert store.removed_entries(conn, DAY) == []


def test_a_note_written_after_the_draft_is_offered_for_its_entry(
    running: Running, day: Settings
) -> None:
    sess = login(running)
    path = services.draft_path(day, DAY)
    d = read_digest(path)
    first = d.entries[0]
    # The curator wrote the entry's commentary away in the draft; the note has it.
    path.write_text(path.read_text("utf-8").replace("\n".join(first.commentary) + "\n", "", 1),
                    "utf-8")
    page = sess.get(running.url + "/").text
    assert page.count('action="/entry/merge-note"') == 1
    merged = sess.post(running.url + "/entry/merge-note", headers=JSON,
                       data={"csrf": csrf(page), **entry_forms(page)[0]})
    assert merged.status_code == 200 and "merged the note" in merged.json()["message"]
    assert read_digest(path).entries[0].commentary == first.commentary
    assert 'action="/entry/merge-note"' not in sess.get(running.url + "/").text


# --- finishing -------------------------------------------------------------------------------


def test_test_copies_have_their_own_message_ids_and_name_the_variant(
    running: Running, day: Settings
) -> None:
    sess = login(running)
    page = sess.get(running.url + "/").text
    data = {"csrf": csrf(page), "sha": re.search(r'name="sha" value="([^"]+)"', page)[1]}  # type: ignore[index]
    for _ in range(2):
        assert sess.post(running.url + "/test-copy", data={**data, "variant": "ko"}).ok
    sent = sorted((day.paths.outbox / DAY.isoformat() / "test" / "ko").glob("*.eml"))
    assert sent  # the outbox keeps one file per recipient: read the last, and compare ids
    ids = set()
    for variant in ("ko", "en"):
        assert sess.post(running.url + "/test-copy", data={**data, "variant": variant}).ok
        (copy,) = (day.paths.outbox / DAY.isoformat() / "test" / variant).glob("*.eml")
        message = email.message_from_bytes(copy.read_bytes(), policy=email.policy.default)
        assert message["Subject"].startswith(f"[TEST] [{variant}] ")
        ids.add(message["Message-ID"])
    again = sess.post(running.url + "/test-copy", data={**data, "variant": "en"})
    assert again.ok
    (copy,) = (day.paths.outbox / DAY.isoformat() / "test" / "en").glob("*.eml")
    ids.add(email.message_from_bytes(copy.read_bytes(), policy=email.policy.default)["Message-ID"])
    assert len(ids) == 3  # ko, en, and en again: three ids


def test_send_needs_its_confirmation(running: Running, day: Settings) -> None:
    sess = login(running)
    page = sess.get(running.url + "/").text
    sha = re.search(r'name="sha" value="([^"]+)"', page)[1]  # type: ignore[index]
    refused = sess.post(running.url + "/send", headers=JSON, data={"csrf": csrf(page), "sha": sha})
    assert refused.status_code == 422 and "yes, send it now" in refused.json()["message"]
    with closing(store.connect(day.db_path)) as conn:
        record = store.get_issue_record(conn, DAY)
    assert record is None or not record.sent


def test_a_paper_an_earlier_issue_sent_is_never_offered_and_is_warned_about(
    day: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.interfaces import cli

    earlier = read_digest(services.draft_path(day, DAY)).entries[0]
    assert earlier.arxiv_id is not None
    with closing(store.connect(day.db_path)) as conn, store.transaction(conn):
        before = date(2024, 12, 4)
        store.save_archived_issue(conn, Issue(before, "Earlier", (earlier,)))
        conn.execute("INSERT INTO issues (date, state, sent_at) VALUES (?, 'sent', ?)",
                     (before.isoformat(), "2024-12-04T09:00:00+00:00"))
    path = services.draft_path(day, DAY)
    path.unlink()
    with closing(store.connect(day.db_path)) as conn, store.transaction(conn):
        store.forget_offered(conn, DAY)
    services.draft(day, DAY, runtime())
    assert earlier.title not in draft(day)
    # A draft that holds it anyway (pasted by hand) is warned about by check and build.
    path.write_text(path.read_text("utf-8").rstrip("\n") + "\n" + "\n".join((
        earlier.title, f"({', '.join(earlier.authors)})", f"arXiv:{earlier.arxiv_id}",
        earlier.abstract, *earlier.commentary, " ".join("#" + t for t in earlier.tags),
    )) + "\n", "utf-8")
    with pytest.raises(SystemExit):
        cli.main(["--config", str(day.root / "config" / "digest.toml"), "check", str(path)])
    assert f"arXiv:{earlier.arxiv_id} was already sent in the issue of 2024-12-04" in (
        capsys.readouterr().err)
    said = present.lines(services.build(day, DAY, runtime()))
    assert any(f"arXiv:{earlier.arxiv_id} was already sent" in line for line in said)
