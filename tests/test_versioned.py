"""pipeline.publish.versioned: site/ as a symlink swapped onto complete versions (real disk)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.publish import versioned


def files_of(root: Path) -> dict[str, bytes]:
    out = {}
    for folder, _dirs, names in os.walk(root, followlinks=True):
        for name in names:
            path = Path(folder) / name
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


def test_first_publish_creates_a_symlinked_version(tmp_path: Path) -> None:
    root = tmp_path / "site"
    changed = versioned.publish(root, [("index.html", "a"), ("issues/1.html", "one")])
    assert changed == ["index.html", "issues/1.html"]
    assert root.is_symlink() and os.readlink(root) == "site.versions/000001"
    assert files_of(root) == {"index.html": b"a", "issues/1.html": b"one"}


def test_unchanged_files_are_hard_links_and_a_noop_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "site"
    versioned.publish(root, [("index.html", "a"), ("issues/1.html", "one")])
    first = (root / "issues/1.html").stat()
    assert versioned.publish(root, [("index.html", "a")]) == []
    assert os.readlink(root) == "site.versions/000001"  # no new version at all
    assert versioned.publish(root, [("index.html", "b"), ("issues/2.html", "two")]) == [
        "index.html", "issues/2.html"]
    kept = (root / "issues/1.html").stat()
    assert (kept.st_ino, kept.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    assert files_of(root) == {"index.html": b"b", "issues/1.html": b"one", "issues/2.html": b"two"}
    # the old version still holds the old bytes: a reader mid-download is not disturbed
    assert (tmp_path / "site.versions/000001/index.html").read_bytes() == b"a"


def test_none_deletes_and_old_versions_are_pruned(tmp_path: Path) -> None:
    root = tmp_path / "site"
    for k in range(6):
        versioned.publish(root, [("index.html", f"v{k}"), ("gone.html", None if k else "x")])
    assert "gone.html" not in files_of(root)
    numbers = sorted(p.name for p in (tmp_path / "site.versions").iterdir() if p.name.isdigit())
    assert numbers == ["000004", "000005", "000006"]  # the current one and KEEP=2 before it


def test_an_existing_real_site_folder_is_migrated_in_place(tmp_path: Path) -> None:
    root = tmp_path / "site"
    (root / "issues").mkdir(parents=True)
    (root / "issues/old.html").write_text("old", "utf-8")
    (root / "index.html").write_text("index", "utf-8")
    assert versioned.publish(root, [("index.html", "index")]) == []
    assert not root.is_symlink()  # nothing changed: no migration needed yet
    assert versioned.publish(root, [("index.html", "new index")]) == ["index.html"]
    assert root.is_symlink()
    assert files_of(root) == {"index.html": b"new index", "issues/old.html": b"old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site", "site.versions"]


def test_what_a_killed_publish_left_is_swept(tmp_path: Path) -> None:
    root = tmp_path / "site"
    versioned.publish(root, [("index.html", "a")])
    versions = tmp_path / "site.versions"
    (versions / ".staging-000009" / "x").mkdir(parents=True)  # killed while staging
    (versions / "000007").mkdir()  # killed between the rename and the swap
    os.symlink("site.versions/000007", tmp_path / ".site.swap-123")  # killed before the swap
    versioned.publish(root, [("index.html", "b")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site", "site.versions"]
    assert sorted(p.name for p in versions.iterdir()) == ["000001", "000002", "publish.lock"]
    assert files_of(root) == {"index.html": b"b"}


def test_a_missing_site_after_a_killed_fallback_migration_points_to_the_newest(
    tmp_path: Path,
) -> None:
    root = tmp_path / "site"
    versioned.publish(root, [("index.html", "a")])
    versioned.publish(root, [("index.html", "b")])
    root.unlink()  # the one moment of the two-rename fallback without `site`
    versioned.sweep(root)
    assert files_of(root) == {"index.html": b"b"}


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", ""])
def test_names_outside_the_root_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        versioned.publish(tmp_path / "site", [(name, "x")])
    assert not (tmp_path / "site").exists()
    assert list((tmp_path / "site.versions").iterdir()) == [tmp_path / "site.versions/publish.lock"]


def test_migration_without_renameat2_falls_back_to_two_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(versioned, "_exchange", lambda _a, _b: False)  # not Linux
    root = tmp_path / "site"
    root.mkdir()
    (root / "old.html").write_text("old", "utf-8")
    versioned.publish(root, [("index.html", "new")])
    assert root.is_symlink() and files_of(root) == {"index.html": b"new", "old.html": b"old"}
    versioned.publish(root, [("index.html", "newer")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site", "site.versions"]
