"""Issue #22 item 9: a CSV import with an unbalanced quote spoils only its own row, and every
bad row is named by its line (the real CLI, SQLite on disk)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core.config import Settings
from tests.test_subscribers import digest, rows


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    from tests.deliver_support import newsletter

    return newsletter(tmp_path, transport="outbox")


def test_one_unbalanced_quote_spoils_one_row(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ["email,language,tags,status"]
    lines += [f"u{i}@example.org,ko,,active" for i in range(3)]
    lines.append('"broken@example.org,ko,,active')  # line 5: the quote never closes
    lines += [f"v{i}@example.org,en,,active" for i in range(996)]
    path = tmp_path / "subs.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert digest(settings, "subscribers", "import", str(path)) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f'{path}:5: an unbalanced double quote (expected a closing " before the ' \
                     "end of the line)"
    assert len(err) == 2  # that row, then the summary error
    emails = {r[0] for r in rows(settings)}
    assert len(emails) == 3 + 996 and "broken@example.org" not in emails


def test_five_hundred_bad_rows_are_each_named(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "subs.csv"
    path.write_text("email,language\n" + "".join(f"not-an-address-{i},ko\n" for i in range(500))
                    + "ok@example.org,ko\n", encoding="utf-8")
    assert digest(settings, "subscribers", "import", str(path)) == 2
    err = capsys.readouterr().err.splitlines()
    named = {int(line.split(":")[1]) for line in err if line.startswith(str(path) + ":")}
    assert named == set(range(2, 502))
    assert [r[0] for r in rows(settings)] == ["ok@example.org"]
