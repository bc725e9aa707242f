"""Atomic writes (pipeline.files): what a crash or a reader sees of a written file."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.files import write_atomic, write_if_changed


@pytest.fixture
def umask() -> Iterator[None]:
    """A typical server umask for the test (restored afterwards)."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


@pytest.mark.usefixtures("umask")
def test_written_files_get_the_umask_mode_so_a_web_server_can_read_site(tmp_path: Path) -> None:
    page = tmp_path / "site" / "index.html"
    write_atomic(page, "<p>hi</p>")
    assert stat.S_IMODE(page.stat().st_mode) == 0o644
    write_if_changed(page, "<p>changed</p>")  # a replaced file too
    assert stat.S_IMODE(page.stat().st_mode) == 0o644
    assert page.read_text() == "<p>changed</p>"
    assert [p.name for p in page.parent.iterdir()] == ["index.html"]  # no temp file left


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "draft.txt"
    target.write_text("old")

    with pytest.raises(TypeError):
        write_atomic(target, 42)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["draft.txt"]
