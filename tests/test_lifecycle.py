"""An issue's lifecycle (issue #10): nothing public before approval, an atomic publish,
corrections after send without a second email, test copies before approval, the
uncommented-entry guard and `digest status`. Real store, real SMTP sink, real subprocesses."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import lxml.etree
import pytest

from pipeline import services, store
from pipeline.core import lifecycle
from pipeline.core.config import Settings, load_config
from pipeline.core.errors import ApprovalError
from pipeline.core.files import CRASH_AFTER_ENV
from pipeline.core.runtime import Runtime
from pipeline.interfaces import present
from pipeline.interfaces.cli import main
from pipeline.publish import site
from tests.deliver_support import Sink, add_subscribers, smtp_server, smtp_tables
from tests.sample_day import REFERENCE, add_candidates, sample_papers
from tests.support import write_newsletter

DAY = date(2024, 12, 5)
EARLIER = date(2024, 12, 4)
ROOT = Path(__file__).resolve().parent.parent
BUILT_AT = datetime(2024, 12, 5, 2, 0, tzinfo=UTC)  # 11:00 in Seoul, Thursday


def lifecycle_tables(*, port: int, approval: bool = True) -> dict[str, dict[str, Any]]:
    """A newsletter sending to the loopback sink; arXiv's API is a closed loopback port
    (every entry resolves among the stored papers, so it is never asked)."""
    return smtp_tables(
        port=port, approval=approval, retries=0,
        arxiv={"api_url": "http://127.0.0.1:9/api/query", "retries": 0},
        tags={"reward-model": {"keywords": ["reward model"]},
              "pretraining": {"keywords": ["pretraining"]},
              "world-models": {"keywords": ["world model"]}},
    )


def reference_entries() -> list[str]:
    """The reference issue's entries as text blocks (each ends with its #tags line)."""
    blocks, current = [], []
    for line in REFERENCE.read_text("utf-8").splitlines()[1:]:
        if line.strip():
            current.append(line)
        if line.startswith("#"):
            blocks.append("\n".join(current) + "\n")
            current = []
    return blocks


def day_entries() -> list[str]:
    """DAY's draft: Nemotron-CC (#corpus #pretraining) and the two #world-models papers."""
    blocks = reference_entries()
    return [blocks[1], blocks[4], blocks[5]]


def write_draft(settings: Settings, day: date, blocks: list[str]) -> Path:
    path = services.draft_path(settings, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{day.isoformat()}\n" + "".join(blocks), "utf-8")
    return path


def at(moment: datetime, lines: list[str] | None = None) -> Runtime:
    sink = lines if lines is not None else []
    return Runtime(now=lambda: moment, sleep=lambda _s: None, echo=sink.append)


def tree(root: Path) -> dict[str, str]:
    """Every file a reader of `root` sees (through its symlink), by sha256."""
    if not root.exists():
        return {}
    out = {}
    for folder, _dirs, names in os.walk(root, followlinks=True):
        for name in names:
            path = Path(folder) / name
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def leftovers(root: Path) -> list[str]:
    """Temporary files and folders anywhere under the newsletter directory."""
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*")
        if p.name.endswith(".tmp") or p.name.startswith((".staging-", ".site.swap-"))
    )


@pytest.fixture
def sink(cert: tuple[Path, Path], env: None) -> Iterator[tuple[Sink, int]]:
    with smtp_server(*cert) as s:
        yield s


def newsletter(root: Path, port: int, *, approval: bool = True) -> Settings:
    """Two collected days: three of the reference's entries published on EARLIER, three
    others drafted for DAY (built by the tests)."""
    settings = write_newsletter(root, **lifecycle_tables(port=port, approval=approval))
    with closing(store.connect(settings.db_path)) as conn:
        for day in (EARLIER, DAY):
            add_candidates(conn, day, [(p, ("reward-model",), 1.0) for p in sample_papers()])
    blocks = reference_entries()
    write_draft(settings, EARLIER, [blocks[0], blocks[2], blocks[3]])
    services.build(settings, EARLIER, at(BUILT_AT))
    services.approve(settings, EARLIER, at(BUILT_AT))
    write_draft(settings, DAY, day_entries())
    return settings


def feed_items(settings: Settings, name: str = "feed.xml") -> dict[str, tuple[datetime, str]]:
    """guid -> (pubDate, content) of a published feed."""
    root = lxml.etree.fromstring((settings.paths.site / name).read_bytes())
    ns = "{http://purl.org/rss/1.0/modules/content/}encoded"
    return {
        i.findtext("guid"): (parsedate_to_datetime(i.findtext("pubDate")), i.findtext(ns) or "")
        for i in root.findall("channel/item")
    }


# --- the publish gate ---------------------------------------------------------------------


@pytest.mark.slow
def test_build_leaves_site_and_feeds_as_they_were_and_approve_publishes(
    tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    settings = newsletter(tmp_path, sink[1])
    before = tree(settings.paths.site)
    assert "issues/2024-12-04.html" in before
    lines: list[str] = []
    lines += present.lines(services.build(settings, DAY, at(BUILT_AT, lines)))
    assert tree(settings.paths.site) == before  # byte-identical: nothing of D is public
    for name in before:
        if name.endswith((".xml", ".html")):
            assert "2024-12-05" not in (settings.paths.site / name).read_text("utf-8"), name
    preview = site.preview_site_root(settings, DAY)
    assert (preview / "issues/2024-12-05.html").is_file()
    assert "issues/2024-12-05.html" in (preview / "feed.xml").read_text("utf-8")
    assert (preview / "issues/2024-12-04.html").is_file()  # the whole site as it will be
    assert "nothing there changed yet" in "\n".join(lines)
    # a daily run stops before the send and still publishes nothing
    assert "waiting for approval" in services.daily(settings, DAY, at(BUILT_AT)).outcome
    assert tree(settings.paths.site) == before

    services.approve(settings, DAY, at(BUILT_AT))
    after = tree(settings.paths.site)
    assert after == tree(preview)  # what was previewed is what is published
    assert "https://digest.example.org/issues/2024-12-05.html" in feed_items(settings)
    with closing(store.connect(settings.db_path)) as conn:
        record = store.get_issue_record(conn, DAY)
    assert record is not None and record.state is lifecycle.State.PUBLISHED
    assert record.published_hash == record.built_hash == record.approved_hash
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_auto_mode_publishes_when_it_sends(tmp_path: Path, sink: tuple[Sink, int]) -> None:
    settings = newsletter(tmp_path, sink[1], approval=False)
    add_subscribers(settings, 2)
    before = tree(settings.paths.site)
    services.build(settings, DAY, at(BUILT_AT))
    assert tree(settings.paths.site) == before
    services.send(settings, DAY, at(BUILT_AT))
    assert "https://digest.example.org/issues/2024-12-05.html" in feed_items(settings)
    assert sink[0].count == 2
    with closing(store.connect(settings.db_path)) as conn:
        assert store.get_issue_record(conn, DAY).state is lifecycle.State.SENT  # type: ignore[union-attr]


@pytest.mark.slow
def test_digest_serve_follows_each_publish(tmp_path: Path, sink: tuple[Sink, int]) -> None:
    """site/ is a symlink swapped per publish: the running server shows the new version."""
    import requests

    from tests.deliver_support import serving

    settings = newsletter(tmp_path, sink[1])
    assert settings.paths.site.is_symlink()
    services.build(settings, DAY, at(BUILT_AT))
    with serving(settings) as base:
        assert requests.get(f"{base}/issues/2024-12-05.html", timeout=10).status_code == 404
        assert requests.get(f"{base}/issues/2024-12-04.html", timeout=10).status_code == 200
        services.approve(settings, DAY, at(BUILT_AT))
        page = requests.get(f"{base}/issues/2024-12-05.html", timeout=10)
        assert page.status_code == 200 and "Nemotron-CC" in page.text
        assert "2024-12-05" in requests.get(f"{base}/feed.xml", timeout=10).text


# --- killed at every write ------------------------------------------------------------------


def _killed(command: str, root: Path, crash_after: int) -> int:
    """Run `digest COMMAND --date DAY` for the newsletter in `root` in a forked process
    (a real process, without an interpreter start per kill point) that SIGKILLs itself
    right after its `crash_after`th file write; returns its exit code (-9 when killed)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.environ[CRASH_AFTER_ENV] = str(crash_after)
            settings = load_config(root / "config" / "digest.toml")
            getattr(services, command)(settings, DAY, at(BUILT_AT))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


@pytest.mark.parametrize("command", ["build", "approve"])
@pytest.mark.slow
def test_a_build_or_publish_killed_at_each_write_leaves_site_before_or_after(
    tmp_path: Path, env: None, command: str
) -> None:
    base = tmp_path / "base"
    settings = newsletter(base, 25)
    if command == "approve":
        services.build(settings, DAY, at(BUILT_AT))
    before = tree(settings.paths.site)
    done = tmp_path / "done"
    shutil.copytree(base, done, symlinks=True)
    assert _killed(command, done, 10_000) == 0
    after = tree(done / "site")
    assert (after != before) == (command == "approve")
    kills = 0
    for n in range(1, 200):
        work = tmp_path / f"n{n}"
        shutil.copytree(base, work, symlinks=True)
        code = _killed(command, work, n)
        seen = tree(work / "site")
        assert seen in (before, after), f"killed at write {n}: site/ is a mix"
        assert not [p for p in seen if p.endswith(".tmp") or "/." in f"/{p}"]
        if code == 0:  # finished before write n: every write was a kill point
            assert seen == after
            break
        assert code == -9, f"write {n}: exit {code}"
        kills += 1
        # the next run completes the job and sweeps what the killed one left
        getattr(services, command)(load_config(work / "config" / "digest.toml"), DAY, at(BUILT_AT))
        assert tree(work / "site") == after
        assert leftovers(work) == [], n
        shutil.rmtree(work)
    assert kills >= 8  # the preview's and the site's files, renames and the swap


# --- corrections after send ------------------------------------------------------------------


@pytest.mark.slow
def test_a_correction_after_send_updates_page_and_feed_item_and_mails_nobody(
    tmp_path: Path, sink: tuple[Sink, int], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = newsletter(tmp_path, sink[1])
    add_subscribers(settings, 3)
    services.build(settings, DAY, at(BUILT_AT))
    services.approve(settings, DAY, at(BUILT_AT))
    services.send(settings, DAY, at(BUILT_AT))
    assert sink[0].count == 3
    guid = "https://digest.example.org/issues/2024-12-05.html"
    first_date, first_content = feed_items(settings)[guid]
    page = settings.paths.site / "issues/2024-12-05.html"
    assert "수정됨" not in page.read_text("utf-8")

    # The curator fixes a typo in the sent issue's commentary.
    draft = services.draft_path(settings, DAY)
    text = draft.read_text("utf-8")
    fixed = text.replace("NVIDIA의", "NVIDIA가 만든", 1)
    assert fixed != text
    draft.write_text(fixed, "utf-8")
    later = datetime(2024, 12, 7, 3, 0, tzinfo=UTC)
    published = tree(settings.paths.site)
    lines: list[str] = []
    lines += present.lines(services.build(settings, DAY, at(later, lines)))
    assert "this build is a correction" in "\n".join(lines)
    assert tree(settings.paths.site) == published  # still nothing public before approval
    lines += present.lines(services.approve(settings, DAY, at(later, lines)))

    html = page.read_text("utf-8")
    assert "NVIDIA가 만든" in html and "2024년 12월 7일에 수정됨" in html
    items = feed_items(settings)
    # one item for the issue still, under a new guid: feed readers key "read" on the guid
    # and would not show it again otherwise (issue #21)
    [new_guid] = [g for g in items if g.startswith(guid)]
    assert new_guid != guid and "corrected" in new_guid
    new_date, new_content = items[new_guid]
    assert new_date == later and new_date > first_date  # re-dated: readers show it again
    assert "NVIDIA가 만든" in new_content and new_content != first_content
    assert "수정됨" in new_content
    assert sink[0].count == 3  # nobody got a second email
    with closing(store.connect(settings.db_path)) as conn:
        record = store.get_issue_record(conn, DAY)
        assert store.delivery_counts(conn, DAY) == {"sent": 3}
    assert record is not None and record.state is lifecycle.State.SENT
    assert record.published_hash == record.built_hash

    # `digest send` says it was sent and sends nothing; `digest run` does nothing either.
    with pytest.raises(SystemExit) as info:
        main(["--config", str(settings.source), "send", "--date", str(DAY)])
    assert info.value.code == 0
    err = capsys.readouterr().err
    assert "was already sent" in err and "digest approve" in err
    services.daily(settings, DAY, at(later))
    assert sink[0].count == 3

    # Republishing the same content keeps the correction's date (byte-identical site).
    snapshot = tree(settings.paths.site)
    services.build(settings, DAY, at(datetime(2024, 12, 9, tzinfo=UTC)))
    services.approve(settings, DAY, at(datetime(2024, 12, 9, tzinfo=UTC)))
    assert tree(settings.paths.site) == snapshot


# --- test copies and dry runs before approval -------------------------------------------------


@pytest.mark.slow
def test_test_copies_and_dry_run_before_approval_record_nothing(
    tmp_path: Path, sink: tuple[Sink, int], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = newsletter(tmp_path, sink[1])
    subs = add_subscribers(settings, 2)
    with pytest.raises(ApprovalError, match="not built yet"):
        services.send(settings, DAY, at(BUILT_AT), to="curator@example.org")
    services.build(settings, DAY, at(BUILT_AT))
    public = tree(settings.paths.site)

    with pytest.raises(SystemExit) as info:
        main(["--config", str(settings.source), "send", "--date", str(DAY),
              "--to", "curator@example.org", "--variant", "en"])
    assert info.value.code == 0
    err = capsys.readouterr().err
    assert "[TEST] copy (en)" in err and "curator@example.org" in err and "recorded nothing" in err
    lines: list[str] = []
    lines += present.lines(services.send(settings, DAY, at(BUILT_AT, lines), to=subs[0].email, variant="all"))
    assert [m.recipients for m in sink[0].messages] == [["curator@example.org"], [subs[0].email]]
    first, second = (m.parsed() for m in sink[0].messages)
    assert first["Subject"].startswith("[TEST] [en] ML Papers Digest")
    assert second["Subject"].startswith("[TEST] ")
    en = first.get_body(("plain",)).get_content()
    assert "NVIDIA" not in en or "Nemotron" in en  # the en variant: English commentary only
    assert not any("의" in line for line in en.splitlines() if "NVIDIA" in line)
    with pytest.raises(SystemExit) as info:
        main(["--config", str(settings.source), "send", "--date", str(DAY),
              "--to", "x@example.org", "--variant", "fr"])
    assert info.value.code == 2
    assert "--variant" in capsys.readouterr().err

    services.send(settings, DAY, at(BUILT_AT), dry_run=True)
    outbox = settings.paths.outbox / DAY.isoformat()
    assert sorted(p.name for p in outbox.glob("*.eml") if not p.name.startswith("preview")) == \
        sorted(f"{s.email}.eml" for s in subs)
    assert sink[0].count == 2  # no real message
    with closing(store.connect(settings.db_path)) as conn:
        assert store.delivery_counts(conn, DAY) == {}
        assert store.get_issue_record(conn, DAY).state is lifecycle.State.BUILT  # type: ignore[union-attr]
    assert tree(settings.paths.site) == public  # a test copy publishes nothing


# --- the curator is warned before approving what was not curated ------------------------------


UNCOMMENTED = "Bare Candidate Paper\n(A. Author)\narXiv:2412.04425\nAn abstract.\n#reward-model\n"


@pytest.mark.slow
def test_approve_refuses_uncommented_entries_unless_allowed(
    tmp_path: Path, sink: tuple[Sink, int], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = newsletter(tmp_path, sink[1])
    draft = write_draft(settings, DAY, [*day_entries()[:2], UNCOMMENTED])
    lines: list[str] = []
    lines += present.lines(services.build(settings, DAY, at(BUILT_AT, lines)))
    said = "\n".join(lines)
    assert "no commentary" in said and "1 of 3 entries have no commentary" in said
    public = tree(settings.paths.site)
    with pytest.raises(SystemExit) as info:
        main(["--config", str(settings.source), "approve", "--date", str(DAY)])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "no commentary: 2024-12-05.txt:" in err and "--allow-uncommented" in err
    assert tree(settings.paths.site) == public
    with closing(store.connect(settings.db_path)) as conn:
        assert store.get_issue_record(conn, DAY).approved_hash is None  # type: ignore[union-attr]
    with pytest.raises(SystemExit) as info:
        main(["--config", str(settings.source), "approve", "--date", str(DAY),
              "--allow-uncommented"])
    assert info.value.code == 0
    assert "issues/2024-12-05.html" in "".join(tree(settings.paths.site))
    # `digest check` lists it too
    with pytest.raises(SystemExit) as info:
        main(["--config", str(settings.source), "check", str(draft)])
    out, err = capsys.readouterr()
    assert info.value.code == 0 and "(1 without commentary)" in out
    assert "'Bare Candidate Paper': no commentary" in err


@pytest.mark.slow
def test_an_unknown_tag_close_to_one_configured_tag_gets_a_suggestion(
    tmp_path: Path, sink: tuple[Sink, int], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = newsletter(tmp_path, sink[1])
    blocks = day_entries()[:1]
    blocks[0] = blocks[0].rsplit("#", 1)[0] + "#pretrainig #zzz #world-model\n"
    draft = write_draft(settings, DAY, blocks)
    with pytest.raises(SystemExit):
        main(["--config", str(settings.source), "check", str(draft)])
    err = capsys.readouterr().err
    assert "#pretrainig #zzz #world-model not in the config's [tags]" in err
    assert "did you mean #pretraining?" in err and "did you mean #world-models?" in err
    assert "#zzz?" not in err
    # build warns of the likely typo only: a tag far from every configured one may be new
    other = day_entries()[1].rsplit("#", 1)[0] + "#brand-new-topic\n"
    write_draft(settings, DAY, [blocks[0], other])
    lines: list[str] = []
    lines += present.lines(services.build(settings, DAY, at(BUILT_AT, lines)))
    said = "\n".join(lines)
    assert "did you mean #pretraining?" in said and "brand-new-topic" not in said


# --- digest status ----------------------------------------------------------------------------


@pytest.mark.slow
def test_status_shows_the_day_at_a_glance(
    tmp_path: Path, sink: tuple[Sink, int], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = newsletter(tmp_path, sink[1])
    add_subscribers(settings, 3)
    write_draft(settings, DAY, [*day_entries()[:2], UNCOMMENTED])
    st = services.status(settings, DAY, at(BUILT_AT))
    assert (st.state, st.built, st.candidates) == ("collected", None, len(sample_papers()))
    assert (st.draft.entries, st.draft.commented, len(st.draft.uncommented)) == (3, 2, 1)
    assert st.next_step.startswith("build:")
    assert st.next_scheduled == "send at 2024-12-05 18:00 KST"
    services.build(settings, DAY, at(BUILT_AT))
    st = services.status(settings, DAY, at(BUILT_AT))
    assert st.state == "built" and st.built is not None and not st.approved
    assert set(st.built.sizes) == {"ko", "en", "all"} and all(st.built.sizes.values())
    assert st.pending == 3 and "--allow-uncommented" in st.next_step
    services.approve(settings, DAY, at(BUILT_AT), allow_uncommented=True)
    services.send(settings, DAY, at(BUILT_AT))

    with pytest.raises(SystemExit) as info:
        main(["--config", str(settings.source), "status", "--date", str(DAY), "--json"])
    assert info.value.code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["state"] == "sent" and data["deliveries"] == {"sent": 3} and data["pending"] == 0
    assert data["published"] and data["approved"] and data["draft"]["commented"] == 2
    with pytest.raises(SystemExit):
        main(["--config", str(settings.source), "status", "--date", str(DAY)])
    text = capsys.readouterr().out
    assert "issue of 2024-12-05: sent" in text and "3 sent, 0 failed" in text
    assert "3 entries, 2 with commentary, 1 without" in text


def test_status_of_a_day_never_collected(tmp_path: Path, env: None) -> None:
    settings = write_newsletter(tmp_path, **lifecycle_tables(port=25))
    st = services.status(settings, DAY, at(BUILT_AT))
    assert st.state is None and st.collected is None and st.next_step.startswith("collect")


# --- the record --------------------------------------------------------------------------------


@pytest.mark.slow
def test_send_reads_the_tags_from_the_record_not_the_rendered_text(
    tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    """A reader of #world-models gets an issue whose record has that tag, and a reader of a
    tag only mentioned in commentary text (not a tag of the issue) does not."""
    from pipeline.core.models import Subscriber

    settings = newsletter(tmp_path, sink[1])
    blocks = day_entries()[:2]
    blocks[0] = blocks[0].replace("\n#", "\nsee also #pretraining-old in text\n#", 1)
    write_draft(settings, DAY, blocks)
    services.build(settings, DAY, at(BUILT_AT))
    with closing(store.connect(settings.db_path)) as conn, store.transaction(conn):
        for email, tags in (("a@example.org", ("pretraining",)), ("b@example.org", ("vq",))):
            store.save_subscriber(conn, Subscriber(email, "all", tags, "active"))
        record = store.get_issue_record(conn, DAY)
    assert record is not None and record.build is not None
    assert "pretraining" in record.tags and "vq" not in record.tags
    services.approve(settings, DAY, at(BUILT_AT))
    services.send(settings, DAY, at(BUILT_AT))
    assert [m.recipients for m in sink[0].messages] == [["a@example.org"]]


def test_states_are_ordered_and_stored_as_their_names(tmp_path: Path) -> None:
    assert [s.value for s in lifecycle.State] == [
        "collected", "drafted", "built", "approved", "published", "sent"]
    assert lifecycle.State.SENT.at_least(lifecycle.State.PUBLISHED)
    conn = store.connect(tmp_path / "d.db")
    with closing(conn):
        store.set_issue_state(conn, DAY, lifecycle.State.DRAFTED)
        assert store.get_issue(conn, DAY).state == "drafted"
        with pytest.raises(ValueError):
            store.set_issue_state(conn, DAY, "mailed")  # type: ignore[arg-type]


def test_store_timestamps_come_from_the_runtime_clock(tmp_path: Path) -> None:
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    conn = store.connect(tmp_path / "d.db", clock=lambda: when)
    with closing(conn):
        store.save_day(conn, DAY, "collected", 1, 1)
        collected = store.get_day(conn, DAY)
        assert collected is not None
        assert collected.collected_at.isoformat() == "2030-01-02T03:04:05+00:00"


@pytest.mark.slow
def test_no_import_cycle_between_the_services_and_schedule() -> None:
    code = "import pipeline.services, sys; assert 'pipeline.services.schedule' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    assert "schedule" not in services.__all__


@pytest.mark.slow
def test_record_round_trips_through_the_store(tmp_path: Path, sink: tuple[Sink, int]) -> None:
    settings = newsletter(tmp_path, sink[1])
    record = services.build(settings, DAY, at(BUILT_AT)).record
    with closing(store.connect(settings.db_path)) as conn:
        assert store.get_issue_record(conn, DAY) == record
    assert record.build is not None
    assert replace(record.build, uncommented=()) == record.build  # all three are commented
    assert record.build.entries == 3 and [v.name for v in record.build.variants] == [
        "ko", "en", "all"]


def test_an_older_store_marks_its_archived_issues_published(tmp_path: Path) -> None:
    """Before v2 a build wrote site/ at once: such issues are published, not just built."""
    import sqlite3

    path = tmp_path / "d.db"
    raw = sqlite3.connect(path, isolation_level=None)
    for statement in store.db._statements(store.MIGRATIONS[0]):
        raw.execute(statement)
    raw.execute("PRAGMA user_version = 1")
    raw.executemany(
        "INSERT INTO issues (date, state, draft_sha, built_hash, built_at) VALUES (?,?,?,?,?)",
        [("2024-12-04", "built", "d1", "h1", "2024-12-04T01:00:00+00:00"),
         ("2024-12-05", "sent", "d2", "h2", "2024-12-05T01:00:00+00:00"),
         ("2024-12-06", "drafted", None, None, None)],
    )
    from pipeline.core.models import Issue

    raw.executemany("INSERT INTO archive (date, issue) VALUES (?, ?)",
                    [(d, store.issue_json(Issue(date.fromisoformat(d), "T", ())))
                     for d in ("2024-12-04", "2024-12-05")])
    raw.close()
    with closing(store.connect(path)) as conn:
        records = {d: store.get_issue_record(conn, d)
                   for d in (date(2024, 12, 4), date(2024, 12, 5), date(2024, 12, 6))}
    states = {d.isoformat(): (r.state.value, r.published_hash) for d, r in records.items() if r}
    assert states == {"2024-12-04": ("published", "h1"), "2024-12-05": ("sent", "h2"),
                      "2024-12-06": ("drafted", None)}


@pytest.mark.slow
def test_a_real_send_before_approval_is_refused_and_publishes_nothing(
    tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    settings = newsletter(tmp_path, sink[1])
    add_subscribers(settings, 2)
    services.build(settings, DAY, at(BUILT_AT))
    public = tree(settings.paths.site)
    with pytest.raises(ApprovalError, match="is not approved"):
        services.send(settings, DAY, at(BUILT_AT))
    assert tree(settings.paths.site) == public and sink[0].count == 0


@pytest.mark.slow
def test_auto_mode_approve_publishes_without_the_commentary_guard(
    tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    settings = newsletter(tmp_path, sink[1], approval=False)
    write_draft(settings, DAY, [day_entries()[0], UNCOMMENTED])
    services.build(settings, DAY, at(BUILT_AT))
    services.approve(settings, DAY, at(BUILT_AT))  # the curator chose auto mode: no guard
    assert "issues/2024-12-05.html" in tree(settings.paths.site)
