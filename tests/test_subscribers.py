"""Subscribers: the `digest subscribers` commands, CSV import/export, SQLite on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import services, store
from pipeline.core.config import Settings
from pipeline.core.models import Subscriber
from pipeline.interfaces.cli import main
from tests.deliver_support import SECRET, newsletter
from tests.support import newsletter_config


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return newsletter(tmp_path, transport="outbox")


def digest(settings: Settings, *args: str) -> int:
    """Run the CLI in-process; returns its exit code."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(settings.source), *args])
    code = exit_info.value.code
    assert isinstance(code, int)
    return code


def rows(settings: Settings) -> list[tuple[str, str, str, str, str, str]]:
    conn = services.open_store(settings)
    try:
        return [
            (r["email"], r["language"], r["tags"], r["status"], r["created_at"], r["updated_at"])
            for r in conn.execute("SELECT * FROM subscribers ORDER BY id")
        ]
    finally:
        conn.close()


def test_add_list_remove(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert digest(settings, "subscribers", "add", "Ann@Example.ORG", "--language", "ko",
                  "--tags", "#Reward_Model corpus") == 0
    assert digest(settings, "subscribers", "add", "bob@example.org") == 0
    assert capsys.readouterr().out == (
        "added: Ann@example.org (ko, tags reward-model corpus)\nadded: bob@example.org (all)\n"
    )
    assert digest(settings, "subscribers", "remove", "ann@example.org") == 0
    assert digest(settings, "subscribers", "remove", "ann@example.org") == 0
    assert digest(settings, "subscribers", "list") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["unsubscribed: ann@example.org", "already unsubscribed: ann@example.org"]
    assert out[2:] == ["Ann@example.org\tko\treward-model corpus\tunsubscribed",
                       "bob@example.org\tall\t\tactive"]
    assert digest(settings, "subscribers", "list", "--status", "active") == 0
    assert capsys.readouterr().out == "bob@example.org\tall\t\tactive\n"
    # `add` is the deliberate way back in
    assert digest(settings, "subscribers", "add", "ann@example.org", "--language", "en") == 0
    assert rows(settings)[0][:4] == ("Ann@example.org", "en", "", "active")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "not-an-email"], "bad email address 'not-an-email'"),
        (["add", "a@example.org", "--language", "fr"], "language must be one of ko, en, all"),
        (["add", "a@example.org", "--tags", "bad!tag"], "bad tag 'bad!tag'"),
        (["remove", "nobody@example.org"], "no subscriber 'nobody@example.org'"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    settings: Settings, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert digest(settings, "subscribers", *args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("digest: error: ") and message in err
    assert rows(settings) == []


CSV = """email,language,tags,status
ann@example.org,ko,reward-model,
bob@example.org,en,,active
not an email,ko,,
carl@example.org,de,,
dora@example.org,all,#vq #corpus,pending
erin@example.org,,,bogus
fay@example.org,all,,unsubscribed
"""


def test_import_reports_bad_rows_by_line_and_imports_the_rest(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "subs.csv"
    path.write_text(CSV, encoding="utf-8")
    assert digest(settings, "subscribers", "import", str(path)) == 2
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert err[0].startswith(f"{path}:4: bad email address 'not an email'")
    assert err[1].startswith(f"{path}:5: language must be one of ko, en, all, got 'de'")
    assert err[2].startswith(f"{path}:7: status must be one of pending, active")
    assert err[3] == (
        f"digest: error: {path}: 3 bad rows (listed above); the other rows were imported"
    )
    assert "added 4, updated 0, unchanged 0" in captured.out
    assert [r[:4] for r in rows(settings)] == [
        ("ann@example.org", "ko", "reward-model", "active"),
        ("bob@example.org", "en", "", "active"),
        ("dora@example.org", "all", "vq corpus", "pending"),
        ("fay@example.org", "all", "", "unsubscribed"),
    ]


def test_a_file_of_bad_rows_names_each_one(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "subs.csv"
    path.write_text("email,language\n" + "".join(f"u{i}@example.org,Korean\n" for i in range(300)),
                    encoding="utf-8")
    assert digest(settings, "subscribers", "import", str(path)) == 2
    err = capsys.readouterr().err.splitlines()
    # docs/delivery.md: "Import reports each bad row by its line number" (issue #22)
    assert len(err) == 300 + 1
    assert err[0].startswith(f"{path}:2: language must be one of ko, en, all, got 'Korean'")
    assert err[-2].startswith(f"{path}:301: ")
    assert err[-1] == f"digest: error: {path}: 300 bad rows (listed above); the other rows were imported"


def test_importing_the_same_file_twice_changes_nothing(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "subs.csv"
    path.write_text(CSV, encoding="utf-8")
    digest(settings, "subscribers", "import", str(path))
    before = rows(settings)
    capsys.readouterr()
    assert digest(settings, "subscribers", "import", str(path)) == 2
    assert "added 0, updated 0, unchanged 4, kept unsubscribed 0" in capsys.readouterr().out
    assert rows(settings) == before  # timestamps included


def test_import_never_resubscribes_an_unsubscribed_reader(
    settings: Settings, tmp_path: Path
) -> None:
    digest(settings, "subscribers", "add", "ann@example.org")
    digest(settings, "subscribers", "remove", "ann@example.org")
    path = tmp_path / "subs.csv"
    path.write_text("email,language,tags,status\nann@example.org,ko,,active\n", encoding="utf-8")
    assert digest(settings, "subscribers", "import", str(path)) == 0
    assert rows(settings)[0][3] == "unsubscribed"


def test_import_never_activates_a_reader_who_has_not_confirmed(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Anyone can type an address into the subscribe form: that makes an unsubscribed
    reader pending; re-importing an old list must not make them active without their click."""
    from pipeline.interfaces import serve as web

    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    digest(settings, "subscribers", "add", "ann@example.org")
    digest(settings, "subscribers", "remove", "ann@example.org")
    form = {"email": "ann@example.org", "language": "ko"}
    assert web.create_app(settings).test_client().post("/subscribe", data=form).status_code == 200
    assert rows(settings)[0][3] == "pending"
    path = tmp_path / "subs.csv"
    path.write_text("email,language,tags,status\nann@example.org,ko,,active\n", encoding="utf-8")
    capsys.readouterr()
    assert digest(settings, "subscribers", "import", str(path)) == 0
    assert rows(settings)[0][3] == "pending"
    assert "kept unconfirmed 1" in capsys.readouterr().out


def test_export_then_import_round_trips(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "subs.csv"
    path.write_text(CSV, encoding="utf-8")
    digest(settings, "subscribers", "import", str(path))
    out = tmp_path / "export.csv"
    assert digest(settings, "subscribers", "export", str(out)) == 0
    exported = out.read_text(encoding="utf-8")
    assert exported == (
        "email,language,tags,status\n"
        "ann@example.org,ko,reward-model,active\n"
        "bob@example.org,en,,active\n"
        "dora@example.org,all,vq corpus,pending\n"
        "fay@example.org,all,,unsubscribed\n"
    )
    other = newsletter(tmp_path / "other", transport="outbox")
    assert digest(other, "subscribers", "import", str(out)) == 0
    assert [r[:4] for r in rows(other)] == [r[:4] for r in rows(settings)]
    capsys.readouterr()
    assert digest(settings, "subscribers", "export", "-") == 0
    assert capsys.readouterr().out == exported


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mail,language\nx@example.org,ko\n", "expected the header email,language,tags,status"),
        ("email,language,colour\nx@example.org,ko,red\n", "unknown column 'colour'"),
        ("", "expected the header"),
    ],
)
def test_import_with_a_bad_header_imports_nothing(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
    message: str,
) -> None:
    path = tmp_path / "subs.csv"
    path.write_text(text, encoding="utf-8")
    assert digest(settings, "subscribers", "import", str(path)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"digest: error: {path}:1: ") and message in err
    assert rows(settings) == []


def test_import_refuses_a_second_row_for_an_address_and_a_row_with_extra_fields(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "subs.csv"
    path.write_text(
        "email,language\n"
        "ann@example.org,ko\n"
        "bob@example.org,en\n"
        "ANN@example.org,en\n"  # the same reader again, differently: which one is meant?
        "cat@example.org,ko,vq,active\n",  # fields beyond the header: a shifted row
        encoding="utf-8",
    )
    assert digest(settings, "subscribers", "import", str(path)) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{path}:4: ANN@example.org is already on line 2 (one row per address)"
    assert err[1] == f"{path}:5: expected at most 2 fields (email,language), got 4"
    assert [r[:2] for r in rows(settings)] == [("ann@example.org", "ko"), ("bob@example.org", "en")]


def test_an_excel_cp949_export_names_the_line_and_how_to_convert_it(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "subs.csv"
    path.write_bytes("email,language,tags\nann@example.org,ko,\nbob@example.org,ko,이미지\n"
                     .encode("cp949"))
    assert digest(settings, "subscribers", "import", str(path)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"digest: error: {path}:3: not UTF-8 text (it looks like EUC-KR/CP949")
    assert err.count("\n") == 1
    assert rows(settings) == []


def test_a_utf8_bom_is_no_part_of_the_header(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "subs.csv"
    path.write_bytes(b"\xef\xbb\xbfemail,language\r\nann@example.org,ko\r\n")  # Excel's CSV UTF-8
    assert digest(settings, "subscribers", "import", str(path)) == 0
    assert [r[:2] for r in rows(settings)] == [("ann@example.org", "ko")]


def test_missing_file_is_a_clear_error(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert digest(settings, "subscribers", "import", str(tmp_path / "nope.csv")) == 2
    assert capsys.readouterr().err == f"digest: error: {tmp_path / 'nope.csv'}: file not found\n"


def test_a_folder_is_bad_input_not_a_failed_run(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert digest(settings, "subscribers", "import", str(tmp_path)) == 2
    assert capsys.readouterr().err == (
        f"digest: error: {tmp_path}: is a directory, expected a CSV file\n"
    )


def test_add_without_a_language_takes_the_widest_variant_of_a_one_language_newsletter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = newsletter_config(tmp_path, newsletter={"from": "D <digest@example.org>",
                                                     "languages": ["ko"]})  # no 'all'
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(config), "subscribers", "add", "ann@example.org"])
    assert (exit_info.value.code, capsys.readouterr().out) == (0, "added: ann@example.org (ko)\n")


def test_iter_subscribers_streams_in_batches(settings: Settings) -> None:
    conn = services.open_store(settings)
    with store.transaction(conn):
        for i in range(7):
            store.save_subscriber(conn, Subscriber(f"r{i}@example.org", "ko"))
    assert [s.email for s in store.iter_subscribers(conn, batch=3)] == [
        f"r{i}@example.org" for i in range(7)
    ]
    conn.close()
