"""`digest draft`: the real notes compile into the reference issue; a rerun keeps every edit."""

from __future__ import annotations

import shutil
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

import pytest

from pipeline import services, store
from pipeline.core.config import Settings
from pipeline.core.digest_format import parse_digest, read_digest, write_digest
from pipeline.core.errors import FormatError, InputError
from pipeline.core.models import Candidate, Digest, Entry
from pipeline.curate.draft import build_offer, update_draft
from pipeline.curate.notes import read_notes
from pipeline.interfaces import present
from tests.sample_day import (
    DAY,
    REFERENCE,
    REFERENCE_NOTES,
    add_candidates,
    newsletter,
    paper,
    runtime,
    sample_papers,
)
from tests.support import FIXTURES


def _collect_sample_days(settings: Settings) -> None:
    """Store the ten papers as candidates of the day each was announced (the evening after
    its submission date, the note's file-name prefix), like three days of `digest collect`."""
    announced = {  # arXiv id -> announcement date
        "2412.01981": date(2024, 12, 3),
        **dict.fromkeys(["2412.02595", "2412.02692", "2412.02674"], date(2024, 12, 4)),
    }
    with closing(store.connect(settings.db_path)) as conn:
        for p in sample_papers():
            add_candidates(conn, announced.get(p.arxiv_id, DAY), [(p, (), 1.0)])


def test_compiling_the_real_notes_gives_the_reference_issue(tmp_path: Path) -> None:
    # Every December note is in notes/; only the ten whose papers were collected join the
    # draft, the others wait for their paper.
    settings = newsletter(tmp_path)
    shutil.copytree(FIXTURES / "notes" / "2412", settings.paths.notes / "2412")
    _collect_sample_days(settings)
    messages: list[str] = []
    report = services.draft(settings, DAY, runtime())
    messages += present.lines(report)
    path = report.path

    drafted = read_digest(path)
    reference = read_digest(REFERENCE)
    assert drafted.date == reference.date == DAY
    assert drafted.date_style == "ko" and path.read_text(encoding="utf-8").startswith(
        "2024년 12월 5일\n")
    ours = {e.title: e for e in drafted.entries}
    assert set(ours) == {e.title for e in reference.entries}
    assert all(e.arxiv_id is not None for e in drafted.entries)  # every entry pinned by id
    for ref in reference.entries:
        got = ours[ref.title]
        assert got.authors == ref.authors
        assert got.tags == ref.tags
        # The reference lost two characters of the arXiv abstracts; ours keeps them.
        expected_abstract = (ref.abstract.replace("'a la", "á la")
                             .replace("384384", "384×384").replace("256256", "256×256"))
        assert got.abstract == expected_abstract
        if ref.title.startswith("Free Process Rewards"):
            # The curator appended to the Korean paragraph the link that the note has only in
            # its English paragraph.
            assert ref.notes_ko[0] == got.notes_ko[0] + " (https://arxiv.org/abs/2404.12358)"
        else:
            assert got.notes_ko == ref.notes_ko
        # The reference's English was edited by hand after the notes were written: every
        # entry's English differs from the note's, which the draft carries as written.
        assert got.notes_en != ref.notes_en and len(got.notes_en) == len(ref.notes_en)
    nemotron = ours["Nemotron-CC: Transforming Common Crawl into a Refined Long-Horizon "
                    "Pretraining Dataset"]
    assert nemotron.notes_en[0].startswith("Work from NVIDIA on building pretraining corpus.")
    # The reference's 65 lines, plus the arXiv:ID line the draft gives each entry.
    assert len(path.read_text(encoding="utf-8").splitlines()) == 65 + 10
    assert messages[-1] == f"wrote {path} (10 entries; 10 added)"


def test_noted_papers_first_then_candidates_by_score_up_to_the_limit(tmp_path: Path) -> None:
    settings = newsletter(tmp_path, REFERENCE_NOTES[:2], max_candidates=2)
    papers = {p.arxiv_id: p for p in sample_papers()}
    extra = [paper(f"2412.0900{i}", f"Unnoted paper {i}") for i in range(4)]
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, DAY, [
            (extra[0], ("vq",), 0.5), (papers["2412.01981"], ("reward-model",), 0.1),
            (extra[1], ("vq",), 3.0), (extra[2], ("llm",), 2.0), (extra[3], (), 0.2),
            (papers["2412.02674"], (), 0.0),
        ])
    drafted = read_digest(services.draft(settings, DAY, runtime()).path)
    assert [e.arxiv_id for e in drafted.entries] == [
        "2412.01981", "2412.02674",  # noted, in notes order, whatever their score
        "2412.09001", "2412.09002",  # then the two best other candidates
    ]
    assert drafted.entries[2].tags == ("vq",) and drafted.entries[2].commentary == ()


def test_a_note_the_draft_could_not_hold_is_skipped_and_the_draft_reads_back(
    tmp_path: Path,
) -> None:
    """An English line then '(…)' in a note once made `digest draft` write a draft that its
    own reader refused; a Korean abstract stopped the whole draft with a '<digest>' error."""
    settings = newsletter(tmp_path, max_candidates=40)
    p1, p2 = paper("2412.09001", "First"), paper("2412.09002", "Second")
    (settings.paths.notes / "241205 First.md").write_text(
        "https://arxiv.org/abs/2412.09001\n한국어 코멘트\nEnglish first.\n"
        "(An aside in parentheses)\nMore English.\n", encoding="utf-8")
    (settings.paths.notes / "241205 Second.md").write_text(
        "https://arxiv.org/abs/2412.09002\n> 한국어 초록\n한국어 코멘트\n", encoding="utf-8")
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, DAY, [(p1, (), 1.0), (p2, (), 1.0)])
    messages: list[str] = []
    report = services.draft(settings, DAY, runtime())
    messages += present.lines(report)
    drafted = read_digest(report.path)
    assert [e.commentary for e in drafted.entries] == [(), ()]  # offered without the notes
    skipped = [m for m in messages if m.startswith("warning: note skipped:")]
    assert len(skipped) == 2
    assert "241205 First.md:4: the commentary line '(An aside in parentheses)'" in skipped[0]
    assert "241205 Second.md:2: the abstract '한국어 초록' contains Hangul" in skipped[1]


def _edit(path: Path, edit: object) -> None:
    digest = read_digest(path)
    entries = list(digest.entries)
    assert callable(edit)
    edit(entries)
    path.write_text(write_digest(Digest(digest.date, tuple(entries), digest.date_style)),
                    encoding="utf-8")


def test_a_rerun_keeps_every_curator_edit_and_adds_only_new_papers(tmp_path: Path) -> None:
    settings = newsletter(tmp_path, REFERENCE_NOTES[:1], max_candidates=40)
    papers = {p.arxiv_id: p for p in sample_papers()}
    first = [paper(f"2412.0800{i}", f"First batch paper {i}") for i in range(4)]
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, DAY, [(papers["2412.01981"], (), 1.0)]
                       + [(p, ("vq",), 1.0 - i / 10) for i, p in enumerate(first)])
    path = services.draft(settings, DAY, runtime()).path
    assert [e.arxiv_id for e in read_digest(path).entries] == [
        "2412.01981", "2412.08000", "2412.08001", "2412.08002", "2412.08003"]

    # The curator deletes 08001, writes notes for 08002, moves 08003 to the top.
    def curate(entries: list[Entry]) -> None:
        del entries[2]
        entries[2] = Entry(**{**entries[2].__dict__, "commentary": (
            "배치 크기에 대한 메모.", "A note on batch sizes."), "tags": ("vq", "mine")})
        entries.insert(0, entries.pop())
    _edit(path, curate)
    edited = path.read_text(encoding="utf-8")

    # The next collect brings more papers, among them one the curator has written a note on.
    second = [paper("2412.08100", "Second batch paper"), papers["2412.02674"]]
    shutil.copy(FIXTURES / "notes" / "2412" / "241203 Mind the Gap.md", settings.paths.notes)
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, DAY, [(second[0], ("llm",), 0.3), (second[1], (), 0.0)])
    messages: list[str] = []
    messages += present.lines(services.draft(settings, DAY, runtime()))

    after = read_digest(path)
    assert [e.arxiv_id for e in after.entries] == [
        "2412.08003", "2412.01981", "2412.08000", "2412.08002",  # as left; 08001 still deleted
        "2412.02674",  # the newly noted paper joins after the last entry with commentary
        "2412.08100",  # the new candidate at the end
    ]
    assert after.entries[3].commentary == ("배치 크기에 대한 메모.", "A note on batch sizes.")
    assert after.entries[3].tags == ("vq", "mine")
    assert after.entries[4].notes_ko[0].startswith("Self Improvement이 가능한 것은")
    # Without the two added entries, the draft is byte for byte what the curator left.
    added = {"2412.02674", "2412.08100"}
    rest = tuple(e for e in after.entries if e.arxiv_id not in added)
    assert write_digest(Digest(after.date, rest, after.date_style)) == edited
    assert messages[-1] == f"updated {path} (6 entries; 2 added)"

    # Nothing new: the file is not even rewritten.
    before = path.stat().st_mtime_ns, path.read_bytes()
    messages += present.lines(services.draft(settings, DAY, runtime()))
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before
    assert messages[-1] == f"unchanged: {path} (6 entries; 0 added)"


def test_a_rerun_with_nothing_new_keeps_the_curators_layout(tmp_path: Path) -> None:
    """Blank lines between entries and CRLF line ends (an editor's) were rewritten into the
    canonical form by a rerun that added nothing ("updated …; 0 added"), which also voided
    an approval of the unchanged text."""
    settings = newsletter(tmp_path, max_candidates=40)
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, DAY, [(paper(f"2412.0700{i}", f"P {i}"), (), 1.0) for i in range(2)])
    path = services.draft(settings, DAY, runtime()).path
    laid_out = path.read_text(encoding="utf-8").replace("\n#\n", "\n#\n\n").replace("\n", "\r\n")
    path.write_bytes(laid_out.encode("utf-8"))
    messages: list[str] = []
    messages += present.lines(services.draft(settings, DAY, runtime()))
    assert path.read_bytes() == laid_out.encode("utf-8")
    assert messages[-1] == f"unchanged: {path} (2 entries; 0 added)"


def test_a_note_written_later_fills_a_kept_entry_without_commentary(tmp_path: Path) -> None:
    settings = newsletter(tmp_path, max_candidates=40)
    papers = {p.arxiv_id: p for p in sample_papers()}
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, DAY, [(papers["2412.03572"], ("robotics",), 1.0)])
    path = services.draft(settings, DAY, runtime()).path
    assert read_digest(path).entries[0].commentary == ()
    shutil.copy(FIXTURES / "notes" / "2412" / "241204 Navigation World Models.md",
                settings.paths.notes)
    messages: list[str] = []
    messages += present.lines(services.draft(settings, DAY, runtime()))
    entry = read_digest(path).entries[0]
    assert entry.notes_ko[0].startswith("구글에 더해")
    assert entry.tags == ("world-models", "robotics")
    assert messages[-1] == f"updated {path} (1 entry; 0 added, 1 filled from notes)"


def test_removing_the_draft_file_starts_afresh(tmp_path: Path) -> None:
    settings = newsletter(tmp_path, max_candidates=5)
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, DAY, [(paper(f"2412.0700{i}", f"P {i}"), (), 1.0) for i in range(3)])
    path = services.draft(settings, DAY, runtime()).path
    _edit(path, lambda entries: entries.clear())
    services.draft(settings, DAY, runtime())
    assert read_digest(path).entries == ()  # all deleted: they stay deleted
    path.unlink()
    services.draft(settings, DAY, runtime())
    assert len(read_digest(path).entries) == 3


def test_notes_of_earlier_days_join_once(tmp_path: Path) -> None:
    # 2412.01981 was collected on Dec 3 and its note written later: it joins the next draft,
    # and only that one; a paper collected more than a week before does not.
    settings = newsletter(tmp_path, REFERENCE_NOTES[:2])
    papers = {p.arxiv_id: p for p in sample_papers()}
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, date(2024, 12, 3), [(papers["2412.01981"], (), 1.0)])
        add_candidates(conn, DAY - timedelta(days=services.NOTE_LOOKBACK_DAYS + 1),
                       [(papers["2412.02674"], (), 1.0)])
        for day in (DAY, DAY + timedelta(days=1)):  # collected, no paper matched a tag
            add_candidates(conn, day, [])
    first = read_digest(services.draft(settings, DAY, runtime()).path)
    assert [e.arxiv_id for e in first.entries] == ["2412.01981"]
    later = read_digest(services.draft(settings, DAY + timedelta(days=1), runtime()).path)
    assert later.entries == ()


def test_a_broken_draft_is_reported_and_left_alone(tmp_path: Path) -> None:
    settings = newsletter(tmp_path)
    path = services.draft_path(settings, DAY)
    path.parent.mkdir(parents=True)
    path.write_text("2024년 12월 5일\nA title\nno authors line\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"2024-12-05.txt:3: expected the authors line"):
        services.draft(settings, DAY, runtime())
    assert path.read_text(encoding="utf-8").endswith("no authors line\n")
    path.write_text("2024년 12월 6일\n", encoding="utf-8")
    with pytest.raises(FormatError, match="the draft is dated 2024-12-06, expected 2024-12-05"):
        services.draft(settings, DAY, runtime())


def test_a_day_not_collected_or_without_announcement_gets_no_draft(tmp_path: Path) -> None:
    """Drafting a day before collecting it once wrote an empty draft, which then built into
    an issue of no papers, published in the archive and feeds."""
    settings = newsletter(tmp_path)
    path = services.draft_path(settings, DAY)
    with pytest.raises(InputError, match=r"nothing collected for 2024-12-05: run `digest "
                       r"collect --date 2024-12-05` first") as info:
        services.draft(settings, DAY, runtime())
    assert info.value.exit_code == 2 and not path.exists()
    with closing(store.connect(settings.db_path)) as conn, store.transaction(conn):
        store.save_day(conn, DAY, "empty", 0, 0)
    with pytest.raises(InputError, match=r"no announcement on 2024-12-05"):
        services.draft(settings, DAY, runtime())
    assert not path.exists()


def test_a_sent_issue_keeps_its_draft(tmp_path: Path) -> None:
    settings = newsletter(tmp_path)
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, DAY, [(paper("2412.07001", "P"), (), 1.0)])
        store.set_issue_state(conn, DAY, "sent")
    messages: list[str] = []
    report = services.draft(settings, DAY, runtime())
    messages += present.lines(report)
    path = report.path
    assert not path.exists() and "already sent" in messages[-1]


def test_update_draft_is_pure_and_keeps_hand_written_entries() -> None:
    mine = Entry("A paper the curator added by hand", ("X",), "", ("메모", "memo"), ("t",))
    existing = parse_digest("2024-12-05\n" + "\n".join([
        mine.title, "(X)", "메모", "memo", "#t"]) + "\n", "d.txt")
    offer = build_offer(
        [Candidate(paper("2412.07001", "A paper the curator added by hand!"), (), 1.0),
         Candidate(paper("2412.07002", "Another"), (), 0.5)],
        {}, {}, 10,
    )
    update = update_draft(DAY, existing, offer, set(), {})
    # The hand-written entry is the same paper by title: it is not offered twice.
    assert [e.title for e in update.digest.entries] == [mine.title, "Another"]
    assert update.digest.date_style == "iso" and update.added == ("Another",)


def test_the_real_notes_index_feeds_the_offer() -> None:
    notes = {k: n.entry for k, n in read_notes(FIXTURES / "notes").by_id().items()}
    papers = sample_papers()
    offer = build_offer([Candidate(p, (), 1.0) for p in papers], notes, {}, 0)
    assert len(offer) == 10 and all(e.commentary for e in offer)


def test_a_save_by_the_curator_while_drafting_is_never_written_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The draft is read, merged with the day's papers, then written: a save by the curator
    in between must survive (the run stops and says to run again)."""
    settings = newsletter(tmp_path, max_candidates=40)
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, DAY, [(paper("2412.07001", "P 1"), (), 1.0)])
    path = services.draft(settings, DAY, runtime()).path
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, DAY, [(paper("2412.07002", "P 2"), (), 1.0)])  # new: a write is due
    saved = path.read_text(encoding="utf-8").replace("#\n", "#curated\n")
    original = services.drafting.offers.update_draft

    def save_then_update(*args: object, **kwargs: object) -> object:
        path.write_text(saved, encoding="utf-8")  # the curator's editor saves now
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(services.drafting.offers, "update_draft", save_then_update)
    with pytest.raises(InputError, match="was saved while drafting; nothing was written"):
        services.draft(settings, DAY, runtime())
    assert path.read_text(encoding="utf-8") == saved
    monkeypatch.undo()
    services.draft(settings, DAY, runtime())  # run again: the save is kept, the new paper added
    entries = read_digest(path).entries
    assert [e.arxiv_id for e in entries] == ["2412.07001", "2412.07002"]
    assert entries[0].tags == ("curated",)


def test_what_the_notes_reader_repaired_is_a_warning_of_the_draft(tmp_path: Path) -> None:
    settings = newsletter(tmp_path)
    p1, p2 = paper("2412.09001", "First"), paper("2412.09002", "Second")
    (settings.paths.notes / "241205 First.md").write_text(
        "https://arxiv.org/abs/2412.09001\n\n한국어 코멘트\n\n<english>\nEnglish.\n\n"
        "#llm oops\n", encoding="utf-8")
    # a repaired note whose paper is not in this draft says nothing here
    (settings.paths.notes / "241201 Other.md").write_text(
        "https://arxiv.org/abs/2412.00001\n\n한국어\n\n#a b\n", encoding="utf-8")
    with closing(store.connect(settings.db_path)) as conn:
        add_candidates(conn, DAY, [(p1, (), 1.0), (p2, (), 1.0)])
    messages: list[str] = []
    report = services.draft(settings, DAY, runtime())
    messages += present.lines(report)
    drafted = read_digest(report.path)
    assert drafted.entries[0].commentary == ("한국어 코멘트", "English.")
    assert drafted.entries[0].tags == ("llm",)
    note = settings.paths.notes / "241205 First.md"
    assert [m for m in messages if m.startswith("warning:")] == [
        f"warning: {note}:5: <english> is never closed: the English ends at the #tags line 8",
        f"warning: {note}:8: 'oops' in the #tags line is not a tag: ignored (write #oops to "
        "make it one)",
    ]


def test_candidates_are_ordered_in_one_place_with_stable_ties_and_a_hook_for_a_model() -> None:
    from pipeline.curate.order import candidate_order

    papers = [paper(f"2412.0{n:04d}", f"Paper {n}") for n in range(6)]
    found = [Candidate(p, (), s) for p, s in zip(papers, (1.0, 3.0, 1.0, 2.0, 3.0, 0.5),
                                                    strict=True)]
    ids = [c.paper.arxiv_id for c in candidate_order(reversed(found))]
    assert ids == ["2412.00001", "2412.00004", "2412.00003", "2412.00000", "2412.00002",
                   "2412.00005"]  # best first; equal scores by id, whatever the input order
    learned = {"2412.00005": 9.0}  # a learned score replaces the tag rules' through `score`
    by_model = candidate_order(found, score=lambda c: learned.get(c.paper.arxiv_id, 0.0))
    assert by_model[0].paper.arxiv_id == "2412.00005"


def test_by_default_the_draft_holds_the_noted_papers_and_never_one_already_sent() -> None:
    from pipeline.core.config import DraftSettings

    noted, plain, sent = paper("2412.09001", "Noted"), paper("2412.09002", "Plain"), paper(
        "2412.09003", "Sent before")
    notes = {p.arxiv_id: Entry(p.title, (), "", ("한국어 논평.",), arxiv_id=p.arxiv_id)
             for p in (noted, sent)}
    candidates = [Candidate(p, (), 1.0) for p in (noted, plain, sent)]
    offer = build_offer(candidates, notes, {}, DraftSettings().max_candidates, (),
                                 {sent.arxiv_id})
    assert [e.arxiv_id for e in offer] == [noted.arxiv_id]
    offer = build_offer(candidates, notes, {}, 5, (), {sent.arxiv_id})
    assert [e.arxiv_id for e in offer] == [noted.arxiv_id, plain.arxiv_id]
