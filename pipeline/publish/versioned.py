"""A folder published atomically for its readers: a symlink swapped onto complete versions.

`site/` is a symlink to `site.versions/NNNNNN/`, a complete, never-modified copy of the site.
Publishing stages the next version beside it (every unchanged file hard-linked from the
current version: O(files) links, no bytes copied; every changed file written fresh, so an
old version's inode is never touched), renames the staging folder to its number, then
swaps the symlink with one `rename(2)`. A web server, `rsync site/` or a feed reader sees
the old tree or the new one, never a mix, and never a temporary file (those live under
`site.versions/`, which is not served). A publish killed at any point leaves `site/` as it
was (or, killed after the swap, as it should be after); the next publish sweeps what the
killed one left in `site.versions/`. The previous versions (`KEEP`) stay for readers who
are still downloading them.

The first publish into a `site/` that is still a real folder (an older install) moves it
aside with one atomic exchange (Linux `renameat2(RENAME_EXCHANGE)`); where that call is
missing it falls back to two renames, and a publish killed between them is completed by
the next one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
from collections.abc import Collection, Iterable
from pathlib import Path

from pipeline.core import locks
from pipeline.core.files import crash_point

KEEP = 2  # previous versions kept besides the current one
STAGING_PREFIX = ".staging-"
_DIGITS = 6


def versions_dir(root: Path) -> Path:
    """Where the versions of `root` live: `<root>.versions/` beside it."""
    return root.with_name(root.name + ".versions")


def _swap_prefix(root: Path) -> str:
    return f".{root.name}.swap-"


def current(root: Path) -> Path | None:
    """The folder `root` shows now: its symlink's target, `root` itself while it is a real
    folder (before the first versioned publish), or None when there is nothing yet."""
    if root.is_symlink():
        target = root.parent / os.readlink(root)
        return target if target.is_dir() else None
    return root if root.is_dir() else None


def _numbers(versions: Path) -> list[int]:
    try:
        names = os.listdir(versions)
    except FileNotFoundError:
        return []
    return sorted(int(n) for n in names if n.isdigit())


def publish(
    root: Path,
    files: Iterable[tuple[str, str | bytes | None]],
    *,
    base: Path | None = None,
    keep: int = KEEP,
    from_empty: bool = False,
) -> list[str]:
    """Make `root` show `base` (default: what `root` shows now; with `from_empty`: nothing)
    with `files` applied (None deletes a file), atomically for readers; returns the names
    that differ from `base`. When nothing differs and `root` already shows `base`, nothing
    is written at all."""
    versions = versions_dir(root)
    versions.mkdir(parents=True, exist_ok=True)
    with locks.hold_lock(versions / "publish.lock", "another publish of this folder"):
        sweep(root, keep=keep)
        shown = current(root)
        source = None if from_empty else base if base is not None else shown
        if source is not None and shown is not None and source.resolve() == shown.resolve() \
                and isinstance(files, Collection) and not _differs(source, files):
            return []  # nothing to do: not even O(files) links
        number = max([0, *_numbers(versions)]) + 1
        staging = versions / f"{STAGING_PREFIX}{number:0{_DIGITS}d}"
        try:
            changed = _stage(source, files, staging)
            if not changed and source is not None and shown is not None \
                    and source.resolve() == shown.resolve():
                shutil.rmtree(staging)
                return []
            final = versions / f"{number:0{_DIGITS}d}"
            _fsync_dir(staging)
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _fsync_dir(versions)
        crash_point()
        _point(root, final)
        sweep(root, keep=keep)
        return changed


def _differs(source: Path, files: Iterable[tuple[str, str | bytes | None]]) -> bool:
    """Whether applying `files` to `source` would change anything."""
    for name, data in files:
        old = source / _relative(name)
        if data is None:
            if old.is_file():
                return True
            continue
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if not old.is_file() or old.read_bytes() != raw:
            return True
    return False


def _stage(
    source: Path | None, files: Iterable[tuple[str, str | bytes | None]], staging: Path
) -> list[str]:
    """Fill `staging` with `source` plus `files`; returns the names that differ."""
    staging.mkdir()
    handled: set[str] = set()
    changed: list[str] = []
    for name, data in files:
        rel = _relative(name)
        if rel in handled:
            continue
        handled.add(rel)
        old = source / rel if source is not None else None
        old_exists = old is not None and old.is_file()
        if data is None:
            if old_exists:
                changed.append(rel)
            continue
        raw = data.encode("utf-8") if isinstance(data, str) else data
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if old is not None and old_exists and old.read_bytes() == raw:
            _link(old, target)  # unchanged: the same inode, bytes and mtime
            continue
        # A mode chosen by hand for the file (e.g. 0640) is kept; a new file gets the umask's.
        _write_new(target, raw, old.stat().st_mode & 0o7777 if old_exists and old else None)
        changed.append(rel)
    if source is not None:
        for folder, dirs, names in os.walk(source):
            dirs.sort()
            rel_folder = os.path.relpath(folder, source)
            for name in sorted(names):
                rel = name if rel_folder == "." else f"{rel_folder}/{name}"
                if rel in handled:
                    continue
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                _link(Path(folder) / name, target)
    return sorted(changed)


def _relative(name: str) -> str:
    """A file name under the root, refusing anything that would leave it."""
    parts = Path(name).parts
    if not parts or Path(name).is_absolute() or ".." in parts:
        raise ValueError(f"not a relative file name under the site: {name!r}")
    return "/".join(parts)


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError as exc:  # a file system without hard links: copy instead
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copy2(src, dst, follow_symlinks=False)


def _write_new(path: Path, raw: bytes, mode: int | None) -> None:
    """Write a new file (the staging folder is private: no temp name needed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, mode if mode is not None else 0o666 & ~_umask())
    with os.fdopen(fd, "wb") as fh:
        fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())
    crash_point()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _point(root: Path, final: Path) -> None:
    """Make `root` a symlink to `final` in one atomic step."""
    target = os.path.relpath(final, root.parent)
    swap = root.parent / f"{_swap_prefix(root)}{os.getpid()}"
    if swap.is_symlink() or swap.exists():
        _remove(swap)
    os.symlink(target, swap)
    if root.is_symlink() or not root.exists():
        os.replace(swap, root)  # rename(2) over a symlink: atomic
    elif _exchange(swap, root):
        # `root` is now the symlink and `swap` the old real folder, which no reader sees.
        crash_point()
        shutil.rmtree(swap)
    else:
        aside = versions_dir(root) / f"{0:0{_DIGITS}d}"
        _remove(aside)
        os.rename(root, aside)  # the one moment without `root`: the next publish repairs it
        crash_point()
        os.replace(swap, root)
    crash_point()


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where the call is unavailable."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name, use_errno=True)
    func = getattr(libc, "renameat2", None)
    if func is None:
        return False
    result = func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def sweep(root: Path, *, keep: int = KEEP) -> list[Path]:
    """Remove what a killed publish left (staging folders, a swap link, versions never
    shown) and the versions older than the `keep` before the current one; returns them.
    A `root` missing after a killed first publish points to the newest version again."""
    versions = versions_dir(root)
    removed: list[Path] = []
    for stale in root.parent.glob(_swap_prefix(root) + "*"):
        _remove(stale)
        removed.append(stale)
    if not versions.is_dir():
        return removed
    for staging in versions.glob(STAGING_PREFIX + "*"):
        _remove(staging)
        removed.append(staging)
    numbers = _numbers(versions)
    if not root.is_symlink() and not root.exists() and numbers:
        _point(root, versions / f"{numbers[-1]:0{_DIGITS}d}")
    shown = current(root)
    shown_number = int(shown.name) if shown is not None and shown.parent == versions \
        and shown.name.isdigit() else None
    if shown_number is None:
        # `root` is still a real folder: any version is one a killed first publish left.
        doomed = numbers if root.is_dir() and not root.is_symlink() else []
    else:
        older = [n for n in numbers if n < shown_number]
        doomed = older[: max(0, len(older) - keep)] + [n for n in numbers if n > shown_number]
    for n in doomed:
        path = versions / f"{n:0{_DIGITS}d}"
        _remove(path)
        removed.append(path)
    return removed
